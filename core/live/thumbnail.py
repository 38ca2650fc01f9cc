"""A JPEG of a segment's first frame (the live thumbnail), decoded and encoded with PyAV in process."""

from __future__ import annotations

import io
from fractions import Fraction

import av

from core.errors import FFmpegError

JPEG_QSCALE = 4  # mjpeg quantiser, 2 (best) … 31; 4 is a clean picture at a few tens of kB for 720p


def jpeg_from_segment(init: bytes, segment: bytes, *, max_width: int = 1280, key: bytes | None = None) -> bytes:
    """`key`: an encrypted stream's content key; the mov demuxer decrypts (CENC) in this process,
    so the key is in no command line and no log."""
    options = {"decryption_key": key.hex()} if key is not None else {}
    try:
        with av.open(io.BytesIO(init + segment), metadata_errors="ignore", options=options) as container:
            frame = next(container.decode(video=0))
    except (av.FFmpegError, StopIteration) as exc:
        raise FFmpegError(f"no picture to make a thumbnail from: {exc}") from exc
    width, height = frame.width, frame.height
    if width > max_width:
        width, height = max_width, round(height * max_width / width / 2) * 2
    encoder = av.CodecContext.create("mjpeg", "w")
    encoder.width, encoder.height = width, height
    encoder.pix_fmt = "yuvj420p"
    encoder.time_base = Fraction(1, 25)
    encoder.options = {"qscale": str(JPEG_QSCALE)}
    encoder.flags |= 2  # AV_CODEC_FLAG_QSCALE: fixed quality, not a bitrate
    encoder.global_quality = JPEG_QSCALE * 118  # FF_QP2LAMBDA
    picture = frame.reformat(width=width, height=height, format="yuvj420p")
    packets = list(encoder.encode(picture)) + list(encoder.encode(None))
    return b"".join(bytes(p) for p in packets)
