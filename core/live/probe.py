"""What a live source carries: picture size, frame rate, audio — enough to plan a ladder.

Read from the reader ffmpeg's own input dump (core/live/reader.py), never
from a separate open of the source.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction

from core.media.probe import AudioInfo

FALLBACK_RATE = Fraction(30)


@dataclass(frozen=True)
class LiveSourceInfo:
    width: int
    height: int
    frame_rate: Fraction
    audio_channels: int  # 0: no audio
    audio_sample_rate: int
    # Every audio stream with its language tag (an MPEG-TS over SRT or HLS may carry several).
    # Left out of equality: the first audio stream's figures above are what most callers compare.
    audio_streams: tuple[AudioInfo, ...] = field(default=(), compare=False)

    @property
    def has_video(self) -> bool:
        return self.width > 0 and self.height > 0
