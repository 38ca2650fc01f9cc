"""Probe an upload with PyAV: what it is, and whether it is media we can use.

There is no ffprobe in the imageio-ffmpeg wheel; PyAV links the same
libavformat. Probing demuxes only the first ~60 video packets and decodes one
frame (to read the display matrix and prove the stream decodes), so it is
cheap enough to run before anything is queued. Given `limits`, the sizes,
stream count, duration and frame rate the headers declare are checked
(`core.media.limits.check_header`) before that frame is decoded, and the
decoders libavformat opens while reading the headers refuse pictures above
the pixel limit: a header claiming 16384x16384 costs nothing.

Everything unusable raises `InvalidMedia` with a message for the uploader;
no PyAV exception escapes.
"""

from __future__ import annotations

import logging
import os
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path

import av

from core.errors import InvalidMedia, Unprocessable
from core.media.limits import HeaderFacts, MediaLimits, check_header

log = logging.getLogger(__name__)

# Demuxers that read one still picture (png_pipe, jpeg_pipe, image2...) and
# the text-art ones: none of these is a video, whatever the extension says.
_STILL_OR_TEXT_FORMATS = {"image2", "image2pipe", "tty", "lavfi", "gif_pipe"}
# Playlists point at other files or URLs: an upload must be the media itself.
_REFERENCE_FORMATS = {"hls", "concat", "dash", "ffmetadata"}
_VFR_PACKETS = 60
_FALLBACK_RATE = Fraction(30)
DECODER_PIXEL_MARGIN = 4


@dataclass(frozen=True)
class VideoInfo:
    codec: str
    width: int  # coded
    height: int
    display_width: int  # after sample aspect ratio and rotation, not rounded to even
    display_height: int
    rotation: int  # clockwise degrees to turn the picture for display: 0/90/180/270
    sample_aspect_ratio: Fraction
    frame_rate: Fraction  # average
    variable_frame_rate: bool
    pix_fmt: str | None
    bit_rate: int | None


@dataclass(frozen=True)
class AudioInfo:
    codec: str
    channels: int
    channel_layout: str | None
    sample_rate: int
    bit_rate: int | None
    language: str | None = None  # the stream's `language` tag (ISO 639-2, e.g. eng), if any
    title: str | None = None  # its `title` (Matroska) or `name` (MP4 udta) tag, if any
    position: int = 0  # among the source's audio streams: what `-map 0:a:N` selects


@dataclass(frozen=True)
class MediaInfo:
    format_name: str
    duration: float  # seconds
    size: int  # bytes
    bit_rate: int | None
    video: VideoInfo | None
    audio: AudioInfo | None
    stream_count: int = 0  # every stream in the container (limits refuse files with hundreds)
    # Every usable audio stream, in the source's order (`audio` is the first); index i is `-map 0:a:i`.
    audio_streams: tuple[AudioInfo, ...] = ()

    def to_dict(self) -> dict:
        def plain(value):
            if isinstance(value, Fraction):
                return str(value)
            if isinstance(value, dict):
                return {k: plain(v) for k, v in value.items()}
            return value

        return plain(asdict(self))


def probe(path: str | os.PathLike, limits: MediaLimits | None = None) -> MediaInfo:
    """Describe the media at `path`, or raise `InvalidMedia` saying why it cannot be used.

    With `limits`, a source beyond them is refused (`Unprocessable`) from its headers, before any decode.
    """
    path = Path(path)
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise InvalidMedia(f"the file cannot be read: {exc.strerror}") from exc
    if size == 0:
        raise InvalidMedia("the file is empty")
    try:
        # Only the file itself: a crafted playlist must not make the API open URLs or other files.
        # `options` reach the decoders avformat_find_stream_info opens (it decodes a few H.264/HEVC frames):
        # none allocates a picture far above the limit. The margin keeps sizes just above the limit
        # readable, so `check_header` can name them; beyond it the size reads as 0x0.
        options = {"max_pixels": str(limits.max_pixels * DECODER_PIXEL_MARGIN)} if limits is not None else None
        with av.open(str(path), metadata_errors="ignore", container_options={"protocol_whitelist": "file"},
                     options=options) as container:
            return _describe(container, size, limits)
    except (InvalidMedia, Unprocessable):
        raise
    except (av.FFmpegError, OSError, ValueError, UnicodeDecodeError) as exc:
        log.info("probe of %s failed: %s", path, exc)
        raise InvalidMedia("the file is not a video or audio file we can read, or it is truncated or damaged") from exc


def _describe(container, size: int, limits: MediaLimits | None) -> MediaInfo:
    format_name = container.format.name
    if format_name in _STILL_OR_TEXT_FORMATS or format_name.endswith("_pipe"):
        raise InvalidMedia(f"the file is a still image or text ({format_name}), not a video")
    if format_name in _REFERENCE_FORMATS:
        raise InvalidMedia(f"the file is a playlist ({format_name}); upload the media file itself")
    video_stream = next((s for s in container.streams.video if not _is_cover_art(s)), None)
    audio_stream = next((s for s in container.streams.audio if s.codec_context is not None), None)
    if video_stream is None and audio_stream is None:
        raise InvalidMedia("the file has no video or audio stream")
    duration = _duration(container, video_stream or audio_stream)
    if duration <= 0:
        raise InvalidMedia("the file has no duration (empty, or not a recording)")
    if limits is not None:
        check_header(header_facts(container, video_stream, duration), limits)
    if limits is not None and video_stream is not None and video_stream.codec_context is not None \
            and not (video_stream.codec_context.width and video_stream.codec_context.height):
        raise Unprocessable(f"the video's picture size is missing or far above the limit of {limits.max_pixels} "
                            "pixels")
    video = _video_info(container, video_stream) if video_stream is not None else None
    audio = _audio_info(audio_stream, list(container.streams.audio).index(audio_stream)) \
        if audio_stream is not None else None
    audio_streams = _usable_audio(container) if audio is not None else ()
    return MediaInfo(
        format_name=format_name,
        duration=duration,
        size=size,
        bit_rate=container.bit_rate or None,
        video=video,
        audio=audio,
        stream_count=len(container.streams),
        audio_streams=audio_streams,
    )


def header_facts(container, video_stream, duration: float) -> HeaderFacts:
    """What the headers declare (nothing decoded by us yet)."""
    if video_stream is None or video_stream.codec_context is None:
        return HeaderFacts(duration=duration, stream_count=len(container.streams))
    ctx = video_stream.codec_context
    return HeaderFacts(duration=duration, stream_count=len(container.streams), width=ctx.width or None,
                       height=ctx.height or None, sample_aspect_ratio=_sample_aspect_ratio(video_stream),
                       frame_rate=_frame_rate(video_stream))


def _sample_aspect_ratio(stream) -> Fraction:
    sar = stream.sample_aspect_ratio or stream.codec_context.sample_aspect_ratio
    return Fraction(sar) if sar and sar > 0 else Fraction(1)


def _is_cover_art(stream) -> bool:
    # An MP3/M4A's album cover is a one-picture "video" stream; it is not video.
    return bool(stream.disposition & av.stream.Disposition.attached_pic)


def _duration(container, stream) -> float:
    if container.duration and container.duration > 0:
        return container.duration / av.time_base
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    return 0.0


def _video_info(container, stream) -> VideoInfo:
    ctx = stream.codec_context
    if ctx is None or not ctx.width or not ctx.height:
        raise InvalidMedia("the video stream cannot be decoded (unknown codec or no picture size)")
    pts, rotation = _scan_video(container, stream)
    if container.format.name == "gif" and len(pts) < 2:
        # An animated GIF is a (silent) video; a one-frame GIF is a still image.
        raise InvalidMedia("the file is a still image (gif), not a video")
    sar = _sample_aspect_ratio(stream)
    # Non-square pixels stretch the width (ffmpeg's convention), then rotation swaps.
    display_width, display_height = round(ctx.width * sar), ctx.height
    if rotation in (90, 270):
        display_width, display_height = display_height, display_width
    return VideoInfo(
        codec=ctx.name,
        width=ctx.width,
        height=ctx.height,
        display_width=display_width,
        display_height=display_height,
        rotation=rotation,
        sample_aspect_ratio=sar,
        frame_rate=_frame_rate(stream),
        variable_frame_rate=_is_variable(pts),
        pix_fmt=ctx.pix_fmt,
        bit_rate=ctx.bit_rate or None,
    )


def _scan_video(container, stream) -> tuple[list[int], int]:
    """Timestamps of the first packets, and the display rotation of the first frame.

    PyAV 18 exposes no stream side data, but the decoder copies the display
    matrix onto each frame (`frame.rotation`, counter-clockwise degrees).
    A truncated file yields what could be read; the encode reports the rest.
    """
    pts: list[int] = []
    rotation = None
    try:
        for packet in container.demux(stream):
            if packet.pts is not None:
                pts.append(packet.pts)
            if rotation is None:
                for frame in packet.decode():
                    rotation = round(-frame.rotation / 90) * 90 % 360
                    break
            if len(pts) >= _VFR_PACKETS and rotation is not None:
                break
    except (av.FFmpegError, ValueError) as exc:
        log.info("probe: video stops early: %s", exc)
    if not pts:
        raise InvalidMedia("the video stream holds no pictures")
    return pts, rotation or 0


def _frame_rate(stream) -> Fraction:
    for rate in (stream.average_rate, stream.guessed_rate, stream.base_rate):
        # Timestamps-per-second (1000, 90000) sometimes pose as a frame rate.
        if rate and 0 < rate <= 300:
            return Fraction(rate)
    return _FALLBACK_RATE


def _is_variable(pts: list[int]) -> bool:
    deltas = [b - a for a, b in zip(sorted(pts), sorted(pts)[1:]) if b > a]
    if len(deltas) < 2:
        return False
    low, high = min(deltas), max(deltas)
    # A tick of slack: 1/1000 timebases alternate 33 and 34 ms at 30 fps.
    return high - low > max(1, low // 10)


def _usable_audio(container) -> tuple[AudioInfo, ...]:
    """Every audio stream that decodes; a broken extra stream is left out, not a reason to refuse the file."""
    usable = []
    for position, stream in enumerate(container.streams.audio):
        if stream.codec_context is None:
            continue
        try:
            usable.append(_audio_info(stream, position))
        except InvalidMedia:
            log.info("probe: audio stream %d left out (cannot be decoded)", position)
    return tuple(usable)


def _audio_info(stream, position: int = 0) -> AudioInfo:
    ctx = stream.codec_context
    if not ctx.sample_rate or not ctx.channels:
        raise InvalidMedia("the audio stream cannot be decoded (unknown codec or no sample rate)")
    layout = ctx.layout.name if ctx.layout is not None else None
    return AudioInfo(
        codec=ctx.name,
        channels=ctx.channels,
        channel_layout=layout,
        sample_rate=ctx.sample_rate,
        bit_rate=ctx.bit_rate or None,
        language=_tag(stream, "language"),
        # Matroska writes `title`; the MP4 demuxer reads a track's udta name as `name`.
        title=_tag(stream, "title") or _tag(stream, "name"),
        position=position,
    )


def _tag(stream, name: str) -> str | None:
    value = (stream.metadata or {}).get(name, "").strip()
    return value if value and value.lower() != "und" else None
