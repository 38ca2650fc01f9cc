"""A hand-built presentation: two H.264 rungs, one H.265, one VP8 (WebM) and shared AAC audio.

Every number is chosen so the expected manifests can be worked out by hand:
3 segments of 4 s, 4 s and 2.5 s (10.5 s in all), in each track's own timescale.
"""

from __future__ import annotations

from fractions import Fraction

import pytest

from core.media.model import Presentation, Rendition, Segment, Track


def segments(timescale: int, sizes: list[int], seconds=(4, 4, 2.5)) -> list[Segment]:
    out, start = [], 0
    for number, (size, secs) in enumerate(zip(sizes, seconds, strict=True), start=1):
        duration = int(secs * timescale)
        out.append(Segment(number=number, start=start, duration=duration, size=size))
        start += duration
    return out


def video(rid, codec, codecs, width, height, fps, bitrate, timescale, sizes, container="mp4"):
    rendition = Rendition(rid, codec, width=width, height=height, bitrate=bitrate, frame_rate=fps)
    return Track(rendition, codecs, container, timescale, segments(timescale, sizes), complete=True)


def build_presentation() -> Presentation:
    audio = Track(
        Rendition("audio", "aac", bitrate=128_000, channels=2, sample_rate=48_000),
        "mp4a.40.2",
        "mp4",
        48_000,
        # 128 kb/s in every segment: 64 000 B per 4 s, 40 000 B per 2.5 s
        segments(48_000, [64_000, 64_000, 40_000]),
        complete=True,
    )
    return Presentation(
        segment_duration=4.0,
        complete=True,
        tracks=[
            # peak 4 000 000 (segment 2), average 36e6 bits / 10.5 s = 3 428 572 (ceil)
            video("h264-720p", "h264", "avc1.64001f", 1280, 720, Fraction(30), 3_000_000, 90_000,
                  [1_500_000, 2_000_000, 1_000_000]),
            # peak 1 000 000, average 9.2e6 / 10.5 = 876 191
            video("h264-360p", "h264", "avc1.64001e", 640, 360, Fraction(30), 800_000, 90_000,
                  [400_000, 500_000, 250_000]),
            # peak 2 500 000, average 22.8e6 / 10.5 = 2 171 429; NTSC frame rate
            video("h265-720p", "h265", "hvc1.1.6.L93.B0", 1280, 720, Fraction(30000, 1001), 2_000_000,
                  30_000, [1_000_000, 1_250_000, 600_000]),
            # peak 1 200 000, WebM with a millisecond timescale
            video("vp8-360p", "vp8", "vp8", 640, 360, Fraction(30), 1_000_000, 1_000,
                  [500_000, 600_000, 300_000], container="webm"),
            audio,
        ],
    )


@pytest.fixture
def presentation() -> Presentation:
    return build_presentation()
