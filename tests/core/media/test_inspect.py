from fractions import Fraction

import pytest

from core.errors import FFmpegError
from core.media.encode import EncodeJob
from core.media.family import encode_family
from core.media.inspect import codecs_string, read_init, read_segment
from core.media.ladder import plan_audio, plan_ladder


@pytest.mark.parametrize(
    ("codec", "extradata", "expected"),
    [
        pytest.param("h264", bytes.fromhex("0164001fffe1"), "avc1.64001f", id="avc-high-3.1"),
        pytest.param("h264", bytes.fromhex("0142c01e"), "avc1.42c01e", id="avc-baseline"),
        # hvcC: version, space/tier/profile, 4 compat bytes, 6 constraint bytes, level.
        pytest.param("hevc", bytes.fromhex("01" "01" "60000000" "900000000000" "5d"), "hvc1.1.6.L93.90", id="hevc-main"),
        pytest.param("hevc", bytes.fromhex("01" "01" "60000000" "b00000000000" "5d"), "hvc1.1.6.L93.B0", id="hevc-b0"),
        pytest.param("hevc", bytes.fromhex("01" "22" "20000000" "000000000000" "99"), "hvc1.2.4.H153", id="hevc-main10-high"),
        pytest.param("hevc", bytes.fromhex("01" "41" "60000000" "900008000000" "5d"), "hvc1.A1.6.L93.90.0.8", id="hevc-space"),
        pytest.param("aac", bytes.fromhex("1190"), "mp4a.40.2", id="aac-lc"),
        pytest.param("aac", bytes.fromhex("2b92"), "mp4a.40.5", id="he-aac"),
        pytest.param("vp8", b"", "vp8", id="vp8"),
        # av1C: marker/version 0x81, profile(3)|level(5), tier|high_bitdepth|twelve_bit|mono|subsampling|position.
        # The first: what SVT-AV1 wrote for 640x360 (level index 1 = level 2.1), read from its init segment.
        pytest.param("libdav1d", bytes.fromhex("81010c000a0c0200000d2627fb3805f00080"), "av01.0.01M.08", id="av1-main-2.1"),
        pytest.param("av1", bytes.fromhex("81" "08" "0c" "00"), "av01.0.08M.08", id="av1-main-4.0"),
        pytest.param("av1", bytes.fromhex("81" "2d" "cc" "00"), "av01.1.13H.10", id="av1-high-10bit-tier-h"),
        pytest.param("av1", bytes.fromhex("81" "4d" "6c" "00"), "av01.2.13M.12", id="av1-professional-12bit"),
    ],
)
def test_codecs_string(codec, extradata, expected):
    assert codecs_string(codec, extradata) == expected


@pytest.mark.parametrize("extradata", [b"", bytes.fromhex("01010c00"), bytes.fromhex("8101")], ids=["empty", "not-av1c", "short"])
def test_av1_without_av1c_is_refused(extradata):
    with pytest.raises(FFmpegError, match="av1C"):
        codecs_string("libdav1d", extradata)


@pytest.fixture(scope="module")
def h264_encode(tmp_path_factory, ffmpeg):
    from tests.media_fixtures import make_clip

    root = tmp_path_factory.mktemp("inspect")
    source = make_clip(root / "src", duration=3.0, width=640, height=360)
    ladder = plan_ladder(
        codec="h264", display_width=640, display_height=360, frame_rate=Fraction(30),
        explicit=[{"height": 360, "bitrate": 600_000}, {"height": 240, "bitrate": 300_000}, {"height": 180, "bitrate": 150_000}],
    )  # fmt: skip
    job = EncodeJob(source, root / "out", ladder, plan_audio(2, 48000), 1.0, Fraction(30))
    tracks = encode_family(ffmpeg, job, duration=3.0, on_progress=None, on_segment=lambda *a: None)
    return job, tracks


def test_init_segments(h264_encode):
    job, _ = h264_encode
    codecs, timescale = read_init(job.out_dir / "init-0.m4s")
    assert codecs.startswith("avc1.64") and timescale == 15360
    assert read_init(job.out_dir / "init-3.m4s") == ("mp4a.40.2", 48000)


def test_segments_are_contiguous(h264_encode):
    job, _ = h264_encode
    init = job.out_dir / "init-0.m4s"
    segments = [read_segment(init, job.out_dir / f"seg-0-{n:05d}.m4s", n) for n in (1, 2, 3)]
    assert segments[0].start == 0
    for previous, following in zip(segments, segments[1:]):
        assert following.start == previous.start + previous.duration
    assert sum(s.duration for s in segments) == 3 * 15360
    assert all(s.size == (job.out_dir / f"seg-0-{s.number:05d}.m4s").stat().st_size for s in segments)


def test_boundaries_identical_across_rungs(h264_encode):
    _, tracks = h264_encode
    video = [t for t in tracks if not t.rendition.is_audio]
    assert [t.id for t in video] == ["h264-360p", "h264-240p", "h264-180p"]
    boundaries = {t.id: [(Fraction(s.start, t.timescale), Fraction(s.duration, t.timescale)) for s in t.segments] for t in video}
    assert boundaries["h264-360p"] == [(0, 1), (1, 1), (2, 1)]
    assert boundaries["h264-360p"] == boundaries["h264-240p"] == boundaries["h264-180p"]


def test_every_segment_starts_with_a_keyframe(h264_encode):
    import io

    import av

    job, tracks = h264_encode
    for rep in range(3):
        init = (job.out_dir / f"init-{rep}.m4s").read_bytes()
        for n in (1, 2, 3):
            data = init + (job.out_dir / f"seg-{rep}-{n:05d}.m4s").read_bytes()
            with av.open(io.BytesIO(data)) as container:
                first = next(p for p in container.demux(video=0) if p.size)
                assert first.is_keyframe, (rep, n)
