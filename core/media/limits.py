"""What a source may be (settings `ABR_MAX_*`), checked from the container's headers before any decode.

A decoder allocates what the header claims: a 16384x16384 SPS asks for a
gigabyte per frame before a single pixel is known to be real. So the probe
reads the sizes, the stream count, the duration and the frame rate from the
headers, runs `check_header`, and only then decodes a frame (for the display
rotation). `check_header` is pure; the pixel limit applies to both the coded
picture (what the decoder allocates) and the display picture after the
sample aspect ratio (what the encoder will be asked to make).
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

from core.errors import Unprocessable
from core.media.ladder import check_aspect


@dataclass(frozen=True)
class MediaLimits:
    max_duration: float = 12 * 3600
    max_pixels: int = 8192 * 4320
    max_frame_rate: float = 240
    max_streams: int = 32

    @classmethod
    def from_settings(cls, settings) -> MediaLimits:
        return cls(max_duration=settings.max_duration, max_pixels=settings.max_pixels,
                   max_frame_rate=settings.max_frame_rate, max_streams=settings.max_streams)


@dataclass(frozen=True)
class HeaderFacts:
    """What the container's headers say, before anything is decoded (video fields None: no video)."""

    duration: float
    stream_count: int
    width: int | None = None  # coded
    height: int | None = None
    sample_aspect_ratio: Fraction = Fraction(1)
    frame_rate: Fraction | None = None

    @property
    def display_size(self) -> tuple[int, int] | None:
        """Width stretched by the sample aspect ratio (ffmpeg's convention); rotation keeps the product."""
        if not self.width or not self.height:
            return None
        return max(1, round(self.width * self.sample_aspect_ratio)), self.height


def check_header(facts: HeaderFacts, limits: MediaLimits) -> None:
    """Raise `Unprocessable` (422) saying which limit the source breaks; checked in this order."""
    if facts.duration > limits.max_duration:
        raise Unprocessable(f"the source lasts {facts.duration:.0f} s; the limit is {limits.max_duration:.0f} s")
    if facts.stream_count > limits.max_streams:
        raise Unprocessable(f"the source has {facts.stream_count} streams; the limit is {limits.max_streams}")
    display = facts.display_size
    if display is None:
        return
    coded_pixels = facts.width * facts.height
    if coded_pixels > limits.max_pixels:
        raise Unprocessable(f"the source picture is {facts.width}x{facts.height}; "
                            f"the limit is {limits.max_pixels} pixels")
    if display[0] * display[1] > limits.max_pixels:
        raise Unprocessable(f"the source picture is {facts.width}x{facts.height} with sample aspect ratio "
                            f"{facts.sample_aspect_ratio.numerator}:{facts.sample_aspect_ratio.denominator}, "
                            f"displayed at {display[0]}x{display[1]}; the limit is {limits.max_pixels} pixels")
    if facts.sample_aspect_ratio != 1:
        try:
            check_aspect(*display)
        except Unprocessable as exc:
            sar = facts.sample_aspect_ratio
            raise Unprocessable(f"the source's sample aspect ratio is {sar.numerator}:{sar.denominator}, so its "
                                f"{facts.width}x{facts.height} picture {exc.message.removeprefix('the picture ')}"
                                ) from None
    else:
        check_aspect(*display)
    if facts.frame_rate is not None and float(facts.frame_rate) > limits.max_frame_rate:
        raise Unprocessable(f"the source runs at {float(facts.frame_rate):.1f} fps; "
                            f"the limit is {limits.max_frame_rate:g}")
