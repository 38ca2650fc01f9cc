"""A quick look at a live source (PyAV, in process): picture size, frame rate, audio — enough to plan a ladder."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from fractions import Fraction

import av

from core.errors import InvalidMedia
from core.redact import redact
from core.live.encode import READ_TIMEOUT_US, input_args

log = logging.getLogger(__name__)
FALLBACK_RATE = Fraction(30)


@dataclass(frozen=True)
class LiveSourceInfo:
    width: int
    height: int
    frame_rate: Fraction
    audio_channels: int  # 0: no audio
    audio_sample_rate: int

    @property
    def has_video(self) -> bool:
        return self.width > 0 and self.height > 0


def probe_live(url: str, *, timeout: float = 8.0) -> LiveSourceInfo:
    """Open `url` like the encoder will and read its stream parameters; InvalidMedia if it cannot."""
    args = input_args(url)
    options = {args[i].lstrip("-"): args[i + 1] for i in range(0, len(args) - 2, 2)}
    options.pop("flags", None)
    options.setdefault("rw_timeout", str(READ_TIMEOUT_US))
    try:
        with av.open(url, options=options, timeout=timeout) as container:
            video = next((s for s in container.streams.video), None)
            audio = next((s for s in container.streams.audio), None)
            if video is None and audio is None:
                raise InvalidMedia("the live source has neither video nor audio")
            width = height = 0
            rate = FALLBACK_RATE
            if video is not None:
                ctx = video.codec_context
                width, height = ctx.width, ctx.height
                if not width or not height:  # parameters arrive with the first frame
                    frame = next(container.decode(video=0))
                    width, height = frame.width, frame.height
                sar = ctx.sample_aspect_ratio
                if sar and sar > 0 and sar != 1:
                    width = round(width * sar)
                rate = _rate(video)
            channels = audio.codec_context.channels if audio is not None else 0
            sample_rate = audio.codec_context.sample_rate if audio is not None else 0
    except av.FFmpegError as exc:
        # PyAV names the URL, credentials included: the message is logged and stored on the stream.
        raise InvalidMedia(f"the live source cannot be read: {redact(str(exc))}") from exc
    except StopIteration:
        raise InvalidMedia("the live source sent no picture") from None
    return LiveSourceInfo(width, height, rate, channels, sample_rate)


def _rate(stream) -> Fraction:
    for candidate in (stream.average_rate, stream.guessed_rate, stream.base_rate):
        if candidate and 1 <= candidate <= 240:
            return Fraction(candidate).limit_denominator(1001)
    return FALLBACK_RATE
