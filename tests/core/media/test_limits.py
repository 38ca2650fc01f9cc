"""Source limits from the headers, before any decode (`core.media.limits`, `probe(path, limits)`)."""

from __future__ import annotations

import struct
import subprocess
from fractions import Fraction

import pytest

from core.errors import Unprocessable
from core.media import probe as probe_module
from core.media.ffmpeg import find_ffmpeg
from core.media.limits import HeaderFacts, MediaLimits, check_header
from core.media.probe import probe
from tests.media_fixtures import make_clip

LIMITS = MediaLimits()  # 12 h, 8192x4320 pixels, 240 fps, 32 streams


@pytest.mark.parametrize(
    ("facts", "message"),
    [
        pytest.param(HeaderFacts(duration=50_000, stream_count=2), "the source lasts 50000 s; the limit is 43200 s",
                     id="duration"),
        pytest.param(HeaderFacts(duration=5, stream_count=120), "the source has 120 streams; the limit is 32",
                     id="streams"),
        pytest.param(HeaderFacts(duration=5, stream_count=1, width=16384, height=16384),
                     "the source picture is 16384x16384; the limit is 35389440 pixels", id="coded-pixels"),
        pytest.param(HeaderFacts(duration=5, stream_count=1, width=7680, height=4320,
                                 sample_aspect_ratio=Fraction(4, 3)),
                     "the source picture is 7680x4320 with sample aspect ratio 4:3, displayed at 10240x4320; "
                     "the limit is 35389440 pixels", id="display-pixels-after-sar"),
        pytest.param(HeaderFacts(duration=5, stream_count=1, width=320, height=240,
                                 sample_aspect_ratio=Fraction(64)),
                     "the source's sample aspect ratio is 64:1, so its 320x240 picture displays at 20480x240 "
                     "(aspect ratio 85.3:1, after its sample aspect ratio); at most 8:1 is encoded", id="sar-64:1"),
        pytest.param(HeaderFacts(duration=5, stream_count=1, width=4000, height=240),
                     "the picture displays at 4000x240 (aspect ratio 16.7:1, after its sample aspect ratio); "
                     "at most 8:1 is encoded", id="wide-coded"),
        pytest.param(HeaderFacts(duration=5, stream_count=1, width=320, height=240, frame_rate=Fraction(1000)),
                     "the source runs at 1000.0 fps; the limit is 240", id="frame-rate"),
    ],
)  # fmt: skip
def test_check_header_refusals(facts, message):
    with pytest.raises(Unprocessable) as refused:
        check_header(facts, LIMITS)
    assert refused.value.message == message


@pytest.mark.parametrize(
    "facts",
    [
        pytest.param(HeaderFacts(duration=5, stream_count=2), id="audio-only"),
        pytest.param(HeaderFacts(duration=5, stream_count=2, width=720, height=576,
                                 sample_aspect_ratio=Fraction(16, 11), frame_rate=Fraction(25)), id="pal-anamorphic"),
        pytest.param(HeaderFacts(duration=43_200, stream_count=32, width=8192, height=4320,
                                 frame_rate=Fraction(240)), id="every-limit-exactly"),
    ],
)  # fmt: skip
def test_check_header_accepts(facts):
    check_header(facts, LIMITS)


@pytest.fixture
def no_decoding(monkeypatch):
    """Fail the test if the probe reaches its decode (`_scan_video`)."""

    def refuse(*_args, **_kwargs):
        raise AssertionError("the probe decoded a frame")

    monkeypatch.setattr(probe_module, "_scan_video", refuse)


def huge_avi(tmp_path, width: int = 9000, height: int = 9000):
    """A 1 s 64x48 rawvideo AVI whose headers (avih and the stream's BITMAPINFOHEADER) claim `width`x`height`."""
    small = tmp_path / "small.avi"
    subprocess.run([find_ffmpeg(), "-loglevel", "error", "-y", "-f", "lavfi", "-i",
                    "testsrc2=size=64x48:rate=10:duration=1", "-c:v", "rawvideo", "-pix_fmt", "yuv420p", str(small)],
                   check=True, timeout=60)
    data = bytearray(small.read_bytes())
    struct.pack_into("<II", data, data.find(b"avih") + 8 + 32, width, height)  # dwWidth, dwHeight
    struct.pack_into("<ii", data, data.find(b"strf") + 8 + 4, width, height)  # biWidth, biHeight
    out = tmp_path / "huge.avi"
    out.write_bytes(bytes(data))
    return out


def test_huge_dimension_header_is_refused_without_decoding(tmp_path, no_decoding):
    with pytest.raises(Unprocessable, match=r"9000x9000; the limit is 35389440 pixels"):
        probe(huge_avi(tmp_path), LIMITS)


def test_sar_64_is_refused_from_the_header(tmp_path, no_decoding):
    clip = make_clip(tmp_path / "sar", duration=1, width=320, height=240, sar="64:1", audio_channels=None)
    with pytest.raises(Unprocessable, match=r"sample aspect ratio is 64:1.*20480x240.*at most 8:1"):
        probe(clip, LIMITS)


def test_too_many_streams_refused_before_decoding(tmp_path, no_decoding):
    clip = make_clip(tmp_path / "two", duration=1)
    with pytest.raises(Unprocessable, match="2 streams"):
        probe(clip, MediaLimits(max_streams=1))


def test_within_limits_the_probe_still_decodes(tmp_path):
    info = probe(make_clip(tmp_path / "ok", duration=1, sar="4:3", audio_channels=None), LIMITS)
    assert (info.video.display_width, info.video.display_height) == (427, 240)


def test_a_header_far_beyond_the_limit_never_reaches_a_decoder(tmp_path, no_decoding):
    # 16384x16384 is over 4x the limit: the decoders libavformat opens refuse the size, so it reads as none.
    with pytest.raises(Unprocessable, match="missing or far above the limit of 35389440 pixels"):
        probe(huge_avi(tmp_path, 16384, 16384), LIMITS)
