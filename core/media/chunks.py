"""Plan a chunked encode: cut a long CFR source at segment boundaries so chunks encode in parallel.

Why the cuts are seamless (checked with FFmpeg 9.0.2, see tests/core/media/test_chunks.py
and tests/scale/): a chunk is read with an accurate input seek (`-ss START`
before `-i`), which for a constant-frame-rate source makes the chunk's first
frame the source frame at START; the forced keyframes
(`expr:gte(t,n_forced*D)`) count from the chunk's start, so with START a
multiple of D they fall exactly where a whole-file encode puts them; and
`-output_ts_offset START` with `movflags=+frag_discont` writes START into
each fragment's tfdt (not into an edit list), so every chunk's init segment
is byte-identical and its segments continue the asset's timeline.

Variable-frame-rate sources are never split: the `fps` filter that makes them
constant decides which source frame fills each output slot from the frames
around it, and its output grid starts at the first frame it sees. A chunk
starting at an arbitrary VFR frame puts that grid off the whole file's grid,
so frames are duplicated or dropped at the join and the keyframe misses the
segment boundary. The same holds for a CFR source whose chunk starts do not
fall on a frame (chunk_duration x rate not an integer, e.g. 29.97 fps with
2 s segments) and for a source converted to another output rate.

A shorter first segment (core/media/encode.py) is chunk 0's alone: its
keyframes fall at 0, F, D, 2D, ..., so the boundaries from D on, and with them
every chunk start, are where they are without it; chunk 0 holds one segment
more (F and D - F instead of D) and every later chunk's segment numbers move up
by one. Later chunks are encoded exactly as before.

Only fMP4 families (H.264, H.265) are chunked; VP8's WebM segments carry no
tfdt to offset. Audio is never chunked: one AAC encode for the whole source,
so no encoder priming at a join (a gap or click every chunk).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

CHUNKABLE_CODECS = ("h264", "h265")
_EPSILON = 1e-6


@dataclass(frozen=True)
class Chunk:
    """One piece of the source timeline, in seconds, with the global number of its first segment."""

    index: int
    start: float
    length: float | None  # None: to the end of the source (the last chunk)
    first_segment: int  # 1-based, the number the whole-file encode gives that segment

    def segment_number(self, local: int) -> int:
        """The asset-wide number of this chunk's `local`-th segment (1-based, as the dash muxer counts)."""
        return self.first_segment + local - 1


def chunk_length(chunk_duration: float, segment_duration: float) -> float:
    """`chunk_duration` rounded down to a whole number of segments (at least one)."""
    segments = max(1, math.floor(chunk_duration / segment_duration + _EPSILON))
    return segments * segment_duration


def plan_chunks(duration: float, segment_duration: float, chunk_duration: float,
                short_first: bool = False) -> list[Chunk]:
    """Chunks of `chunk_duration` seconds covering `duration`; the last one runs to the end.

    A remainder shorter than one segment joins the last chunk instead of
    becoming a chunk of its own (it may hold no frame at all when the audio
    outlasts the picture). `short_first`: chunk 0 starts with a shorter first
    segment, so it has one segment more (module doc).
    """
    if segment_duration <= 0 or chunk_duration <= 0 or duration <= 0:
        raise ValueError("durations must be positive")
    per_chunk = chunk_duration / segment_duration
    if abs(per_chunk - round(per_chunk)) > _EPSILON:
        raise ValueError(f"chunk_duration {chunk_duration} is not a multiple of segment_duration {segment_duration}")
    per_chunk = round(per_chunk)
    count = max(1, math.ceil(duration / chunk_duration - _EPSILON))
    if count > 1 and duration - (count - 1) * chunk_duration < segment_duration - _EPSILON:
        count -= 1
    return [
        Chunk(index=k, start=_clean(k * chunk_duration), length=None if k == count - 1 else _clean(chunk_duration),
              first_segment=k * per_chunk + 1 + (1 if short_first and k > 0 else 0))
        for k in range(count)
    ]


def chunkable(*, codecs: list[str], variable_frame_rate: bool, source_rate: Fraction | None,
              output_rate: Fraction | None, chunk_duration: float) -> str | None:
    """Why the source cannot be split (a sentence for the log), or None when it can."""
    if source_rate is None or output_rate is None:
        return "no video"
    if any(c not in CHUNKABLE_CODECS for c in codecs):
        return "a family other than H.264/H.265 (WebM segments carry no tfdt)"
    if variable_frame_rate:
        return "variable frame rate"
    if Fraction(source_rate) != Fraction(output_rate):
        return "the output frame rate differs from the source's"
    frames = Fraction(chunk_duration).limit_denominator(1000) * Fraction(output_rate)
    if frames.denominator != 1:
        return f"chunk starts would fall between frames ({float(frames):.3f} frames per chunk)"
    return None


def _clean(value: float) -> float:
    """Keep float noise out of argv (0.1 * 3 -> 0.3)."""
    return round(value, 6)
