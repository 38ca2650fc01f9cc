"""End to end: tiny clips through encode_family, then every rendition decoded on its own."""

from __future__ import annotations

import dataclasses
import io
import time
from fractions import Fraction
from pathlib import Path

import av
import pytest

from core.errors import Cancelled, FFmpegError, InvalidMedia
from core.media.encode import EncodeJob
from core.media.family import encode_family
from core.media.ladder import plan_audio, plan_ladder
from core.media.probe import probe
from tests.media_fixtures import make_clip, truncate


class Recorder:
    """on_segment callback: keeps each track's init and segment paths, in call order."""

    def __init__(self) -> None:
        self.files: dict[str, list[Path]] = {}
        self.calls: list[tuple[str, bool, str]] = []

    def __call__(self, track, init, segment) -> None:
        assert (init is None) == (track.id in self.files), "init is reported exactly once, first"
        self.files.setdefault(track.id, [init]).append(segment)
        self.calls.append((track.id, init is not None, segment.name))


def plan(source: Path, codec: str, *, audio: bool = True, segment: float = 1.0, max_rungs: int = 2, out: Path):
    info = probe(source)
    ladder = None
    if info.video is not None:
        v = info.video
        ladder = plan_ladder(
            codec=codec, display_width=v.display_width, display_height=v.display_height,
            frame_rate=v.frame_rate, max_rungs=max_rungs,
        )  # fmt: skip
    rendition = plan_audio(info.audio.channels, info.audio.sample_rate) if audio and info.audio else None
    rate = ladder.renditions[0].frame_rate if ladder else None
    return EncodeJob(source, out, ladder, rendition, segment, rate), info


def decode(files: list[Path]) -> list[av.VideoFrame | av.AudioFrame]:
    """Decode init + every segment as one stream, as a player's MediaSource would."""
    data = b"".join(path.read_bytes() for path in files)
    frames = []
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams[0]
        for frame in container.decode(stream):  # raises on any corrupt packet
            frames.append(frame)
    return frames


def encode(ffmpeg, job, info, **kwargs):
    recorder = Recorder()
    tracks = encode_family(ffmpeg, job, duration=info.duration, on_progress=None, on_segment=recorder, **kwargs)
    return tracks, recorder


@pytest.mark.parametrize(
    ("codec", "codecs_prefix", "container"),
    [
        pytest.param("h264", "avc1.64", "mp4", id="h264"),
        pytest.param("h265", "hvc1.1.6.L", "mp4", id="h265"),
        pytest.param("vp8", "vp8", "webm", id="vp8"),
        pytest.param("av1", "av01.0.", "mp4", id="av1"),  # main profile, 8 bit
    ],
)
def test_codec_family_end_to_end(ffmpeg, clip, tmp_path, codec, codecs_prefix, container):
    source = clip("e2e", duration=2.0, width=480, height=360)
    job, info = plan(source, codec, audio=codec == "h264", out=tmp_path / codec)
    tracks, recorder = encode(ffmpeg, job, info)

    video_ids = [f"{codec}-360p", f"{codec}-240p"]
    assert [t.id for t in tracks] == video_ids + (["audio"] if codec == "h264" else [])
    for track in tracks:
        assert track.complete
        assert [s.number for s in track.segments] == list(range(1, len(track.segments) + 1))
        reported = [path.name.rsplit("-", 1)[1] for path in recorder.files[track.id][1:]]
        assert reported == [f"{s.number:05d}.{track.extension}" for s in track.segments]  # in order, once each
    for track in tracks[:2]:
        assert track.codecs.startswith(codecs_prefix) and track.container == container
        assert [(s.start, s.duration) for s in track.segments] == [(0, track.timescale), (track.timescale, track.timescale)]
        frames = decode(recorder.files[track.id])
        assert len(frames) == 60
        assert {(f.width, f.height) for f in frames} == {(track.rendition.width, track.rendition.height)}
    if codec == "h265":
        init = recorder.files["h265-360p"][0].read_bytes()
        assert b"hvc1" in init and b"hev1" not in init  # the sample entry Apple requires
    if codec == "h264":
        audio = decode(recorder.files["audio"])
        assert audio[0].sample_rate == 48000 and len(audio[0].layout.channels) == 2
        assert tracks[2].codecs == "mp4a.40.2"
        assert tracks[2].duration_seconds == pytest.approx(2.0, abs=0.03)


def test_av1_retry_writes_the_same_bytes_with_keyframes_where_h264_has_them(ffmpeg, clip, tmp_path):
    """A retried AV1 encode overwrites immutable, CDN-cached segment URLs: it must write the same bytes.

    SVT-AV1's VBR is repeatable only at one level of parallelism (encode.py); at
    its default every run differs. Keyframes (segment starts) are at the same
    times as in the H.264 family, so a player can switch family at a boundary.
    """
    source = clip("retry", duration=2.0, width=480, height=360)
    runs = []
    for attempt in ("first", "retry"):
        job, info = plan(source, "av1", audio=False, out=tmp_path / attempt)
        tracks, recorder = encode(ffmpeg, job, info)
        runs.append({t.id: [p.read_bytes() for p in recorder.files[t.id]] for t in tracks})
    assert list(runs[0]) == ["av1-360p", "av1-240p"]
    assert runs[0] == runs[1]
    h264_job, info = plan(source, "h264", audio=False, out=tmp_path / "h264")
    h264_tracks, _ = encode(ffmpeg, h264_job, info)
    h264_starts = [s.start / h264_tracks[0].timescale for s in h264_tracks[0].segments]
    for track in tracks:
        assert [s.start / track.timescale for s in track.segments] == h264_starts == [0, 1]
        init, *segments = runs[0][track.id]
        for data in segments:
            with av.open(io.BytesIO(init + data)) as container:
                first = next(p for p in container.demux(video=0) if p.size)
                assert first.is_keyframe, track.id


def test_surround_is_downmixed_to_stereo(ffmpeg, clip, tmp_path):
    job, info = plan(clip("51", audio_channels=6), "h264", out=tmp_path)
    job = EncodeJob(job.source, job.out_dir, None, job.audio, 1.0, None)  # audio only
    tracks, recorder = encode(ffmpeg, job, info)
    assert [t.id for t in tracks] == ["audio"] and tracks[0].rendition.channels == 2
    frames = decode(recorder.files["audio"])
    assert {len(f.layout.channels) for f in frames} == {2}


def test_source_without_audio(ffmpeg, clip, tmp_path):
    job, info = plan(clip("silent", audio_channels=None), "h264", out=tmp_path)
    assert job.audio is None
    tracks, _ = encode(ffmpeg, job, info)
    assert [t.id for t in tracks] == ["h264-240p"]


def test_audio_only_source(ffmpeg, clip, tmp_path):
    job, info = plan(clip("audio", video=False, container="m4a"), "h264", out=tmp_path)
    assert job.ladder is None
    tracks, recorder = encode(ffmpeg, job, info)
    assert [t.id for t in tracks] == ["audio"]
    assert len(decode(recorder.files["audio"])) > 0


def test_asking_for_missing_audio_fails_with_a_reason(ffmpeg, clip, tmp_path):
    source = clip("silent", audio_channels=None)
    job = EncodeJob(source, tmp_path, None, plan_audio(2, 48000), 1.0, None)
    with pytest.raises(FFmpegError, match="no audio stream"):
        encode_family(ffmpeg, job, duration=2.0, on_progress=None, on_segment=lambda *a: None)


@pytest.mark.parametrize(
    ("kwargs", "size"),
    [
        pytest.param({"sar": "4:3"}, (426, 240), id="non-square-pixels"),
        pytest.param({"rotate": 90}, (240, 320), id="rotation-90"),
        pytest.param({"width": 321, "height": 241}, (320, 240), id="odd-321x241"),
    ],
)
def test_display_geometry_is_honoured(ffmpeg, clip, tmp_path, kwargs, size):
    job, info = plan(clip("geo-" + "-".join(f"{k}{v}" for k, v in kwargs.items()), audio_channels=None, **kwargs), "h264", out=tmp_path)
    tracks, recorder = encode(ffmpeg, job, info)
    assert (tracks[0].rendition.width, tracks[0].rendition.height) == size
    frames = decode(recorder.files[tracks[0].id])
    assert {(f.width, f.height) for f in frames} == {size}
    with av.open(io.BytesIO(b"".join(p.read_bytes() for p in recorder.files[tracks[0].id][:2]))) as out:
        assert out.streams.video[0].sample_aspect_ratio in (None, 1)  # square pixels
    assert len(frames) == 60


def test_variable_frame_rate_becomes_constant(ffmpeg, clip, tmp_path):
    job, info = plan(clip("vfr", vfr=True, audio_channels=None), "h264", out=tmp_path)
    assert info.video.variable_frame_rate
    tracks, recorder = encode(ffmpeg, job, info)
    frames = decode(recorder.files[tracks[0].id])
    steps = {b.pts - a.pts for a, b in zip(frames, frames[1:])}
    assert len(steps) == 1  # evenly spaced
    assert tracks[0].duration_seconds == pytest.approx(2.0, abs=0.1)


def test_truncated_source_never_hangs(ffmpeg, tmp_path):
    source = truncate(make_clip(tmp_path / "cut", duration=3.0, container="mkv"), 0.5)
    started = time.monotonic()
    try:
        job, info = plan(source, "h264", out=tmp_path / "out")
        tracks, _ = encode(ffmpeg, job, info, timeout=30)
        assert tracks[0].duration_seconds < 3.0  # short output
    except (InvalidMedia, FFmpegError):
        pass  # refused clearly is fine too
    assert time.monotonic() - started < 20


def test_first_segments_are_reported_while_encoding(slow_ffmpeg, clip, tmp_path):
    """Progressive publishing: a rung's first segment arrives long before ffmpeg ends."""
    job, info = plan(clip("long", duration=3.0), "h264", out=tmp_path, segment=0.5)
    first_seen: dict[str, float] = {}
    started = time.monotonic()

    def on_segment(track, init, segment):
        first_seen.setdefault(track.id, time.monotonic() - started)

    encode_family(slow_ffmpeg, job, duration=info.duration, on_progress=None, on_segment=on_segment)
    total = time.monotonic() - started
    assert set(first_seen) == {"h264-240p", "audio"}
    assert total > 2.0  # -readrate 1: about real time
    assert max(first_seen.values()) < total - 1.0


def test_cancel_kills_ffmpeg_promptly(slow_ffmpeg, clip, tmp_path):
    job, info = plan(clip("long", duration=3.0), "h264", out=tmp_path)
    started = time.monotonic()
    progress = []
    with pytest.raises(Cancelled):
        encode_family(
            slow_ffmpeg, job, duration=info.duration, on_progress=progress.append,
            on_segment=lambda *a: None, cancel=lambda: time.monotonic() - started > 0.6,
        )  # fmt: skip
    assert time.monotonic() - started < 2.0  # well before the 3 s real-time encode would end


def test_timeout_stops_ffmpeg(slow_ffmpeg, clip, tmp_path):
    job, info = plan(clip("long", duration=3.0), "h264", out=tmp_path)
    started = time.monotonic()
    with pytest.raises(FFmpegError, match="longer than"):
        encode_family(slow_ffmpeg, job, duration=info.duration, on_progress=None, on_segment=lambda *a: None, timeout=0.5)
    assert time.monotonic() - started < 2.0


def test_frame_rate_of_rungs(clip, tmp_path):
    job, _ = plan(clip("e2e", duration=2.0, width=480, height=360), "h264", out=tmp_path)
    assert job.frame_rate == Fraction(30)


def test_short_first_segment_real_encode_aligned_and_repeatable(ffmpeg, clip, tmp_path):
    """ABR_FIRST_SEGMENT_DURATION: a 1 s first segment, then the normal 2 s ones, on the same frames in every rung;
    a retry writes the same bytes (segment URLs are immutable and CDN-cached)."""
    source = clip("short-first", duration=5.0, width=480, height=360)
    job, info = plan(source, "h264", segment=2.0, out=tmp_path / "a")
    job = dataclasses.replace(job, first_segment_duration=1.0)
    tracks, recorder = encode(ffmpeg, job, info)
    video, audio = tracks[:2], tracks[2]
    # Keyframes at 0, 1, 2, 4: segments of 1, 1, 2 and 1 s (the second is D - F; the grid stays on 2 s).
    for track in video:
        assert [Fraction(s.duration, track.timescale) for s in track.segments] == [1, 1, 2, 1]
        assert len(decode(recorder.files[track.id])) == 150
    assert len({tuple((s.start, s.duration) for s in t.segments) for t in video}) == 1  # aligned across rungs
    # The muxer cuts the audio in the same process where it cuts the video: its first segment is as short, so
    # `playable` (which needs the audio's first segment too) does not wait for 2 s of audio.
    assert [round(s.duration / audio.timescale) for s in audio.segments] == [1, 1, 2, 1]

    again, _ = encode(ffmpeg, dataclasses.replace(job, out_dir=tmp_path / "b"), info)
    for name in sorted(p.name for p in (tmp_path / "a").iterdir() if p.suffix == ".m4s"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name


def test_short_first_segment_h265_aligned(ffmpeg, clip, tmp_path):
    """x265 takes the same forced keyframes (its own scene cuts are off): 1 s, then the normal segments."""
    source = clip("short-first-h265", duration=3.0, width=320, height=240)
    job, info = plan(source, "h265", audio=False, segment=2.0, out=tmp_path / "h265")
    tracks, _ = encode(ffmpeg, dataclasses.replace(job, first_segment_duration=1.0), info)
    for track in tracks:
        assert [Fraction(s.duration, track.timescale) for s in track.segments] == [1, 1, 1]
