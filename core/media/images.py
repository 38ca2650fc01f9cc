"""Still thumbnails, animated previews and storyboards: parameter parsing, planners, ffmpeg argv (pure).

Images are cut from the produced renditions, not from the original upload:
an init segment plus the one media segment holding the wanted time is a few
megabytes at most, on local storage or S3 alike, its picture is already
upright with square pixels, and every segment starts with a keyframe, so a
seek (`-ss` before `-i`) decodes at most one segment's worth of frames.
Thumbnails come from the largest complete rung (H.264 preferred: the fastest
to decode), storyboards from the smallest (they are 160 px wide tiles).

Every request is snapped to the grid of `core.media.image_sizes` (sizes to a
documented set, times to whole seconds, defaults filled in) and the result is
named by that normalised plan: the same plan, the same key, so a repeated
request is a storage hit and never runs ffmpeg again, and the URLs of one
asset map to a bounded set of files.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Literal

from core.errors import BadRequest, NotFound
from core.media.image_sizes import ANIMATED_FRAME_RATES, ANIMATED_WIDTHS, IMAGE_SIZES, snap_time, snap_up
from core.media.model import VIDEO_CODECS, Presentation, Rendition, Segment, Track

MAX_DIMENSION = 1920
FIT_MODES = ("preserve", "stretch", "crop", "pad", "smartcrop")
IMAGES_DIR = "images"  # below the asset's media prefix
STORYBOARD_TILE_WIDTH = 160
STORYBOARD_MAX_TILES = 100
STORYBOARD_COLUMNS = 10
ANIMATED_DEFAULT_SECONDS = 5.0
ANIMATED_MAX_SECONDS = 10.0
ANIMATED_DEFAULT_WIDTH, ANIMATED_MAX_WIDTH = 320, 640
ANIMATED_DEFAULT_FPS, ANIMATED_MAX_FPS = 10, 30
_INPUT = ["-hide_banner", "-nostdin", "-loglevel", "error", "-y", "-protocol_whitelist", "file,pipe"]
ImageFormat = Literal["jpg", "webp"]


# -- parameters -----------------------------------------------------------------------------------


def _number(query: Mapping[str, str], key: str, *, upper: float) -> float | None:
    raw = (query.get(key) or "").strip()
    if not raw:
        return None
    try:
        value = float(raw)
    except ValueError:
        raise BadRequest(f"{key} must be a number of seconds, got {raw[:40]!r}") from None
    if not math.isfinite(value) or value < 0 or value > upper:
        raise BadRequest(f"{key} must be between 0 and {upper:g}, got {raw[:40]!r}")
    return value


def _size(query: Mapping[str, str], key: str, upper: int = MAX_DIMENSION) -> int | None:
    raw = (query.get(key) or "").strip()
    if not raw:
        return None
    if not raw.isascii() or not raw.isdigit() or not 1 <= int(raw) <= upper:
        raise BadRequest(f"{key} must be a whole number of pixels from 1 to {upper}, got {raw[:40]!r}")
    return int(raw)


@dataclass(frozen=True)
class ThumbnailRequest:
    """`?time=&width=&height=&fit_mode=` as sent (None: not given)."""

    time: float | None = None
    width: int | None = None
    height: int | None = None
    fit_mode: str = "preserve"

    @classmethod
    def from_query(cls, query: Mapping[str, str]) -> ThumbnailRequest:
        fit = (query.get("fit_mode") or "preserve").strip().lower()
        if fit not in FIT_MODES:
            raise BadRequest(f"fit_mode must be one of {', '.join(FIT_MODES)}, got {fit[:40]!r}")
        return cls(time=_number(query, "time", upper=1e7), width=_size(query, "width"),
                   height=_size(query, "height"), fit_mode="crop" if fit == "smartcrop" else fit)


@dataclass(frozen=True)
class AnimatedRequest:
    """`?start=&end=&width=&fps=` as sent."""

    start: float | None = None
    end: float | None = None
    width: int | None = None
    fps: int | None = None

    @classmethod
    def from_query(cls, query: Mapping[str, str]) -> AnimatedRequest:
        made = cls(start=_number(query, "start", upper=1e7), end=_number(query, "end", upper=1e7),
                   width=_size(query, "width", ANIMATED_MAX_WIDTH), fps=_size(query, "fps", ANIMATED_MAX_FPS))
        if made.start is not None and made.end is not None and made.end <= made.start:
            raise BadRequest("end must be after start")
        return made


# -- choosing what to decode ----------------------------------------------------------------------


def codec_rank(codec: str) -> int:
    """The order images prefer a family's rungs in: H.264 first (the fastest to decode), then VIDEO_CODECS'."""
    return VIDEO_CODECS.index(codec) if codec in VIDEO_CODECS else len(VIDEO_CODECS)


def _codec_rank(track: Track) -> int:
    return codec_rank(track.rendition.codec)


def source_track(presentation: Presentation, *, largest: bool = True) -> Track:
    """The complete video rung images are cut from: H.264 first, then the largest (or smallest)."""
    done = [t for t in presentation.video_tracks if t.complete and t.segments and t.rendition.width]
    if not done and not presentation.video_tracks and (
            presentation.complete or any(t.complete for t in presentation.tracks if t.rendition.is_audio)):
        # The audio is encoded with the first family, which holds the video if there is any:
        # finished audio and no video track at all means there never will be a picture.
        raise NotFound("this asset has no video (audio only), so it has no thumbnails, storyboards "
                       "or animated images", code="no_video")
    if not done:
        raise NotFound("images are not ready yet: no video rendition is complete")
    sign = -1 if largest else 1
    return min(done, key=lambda t: (_codec_rank(t), sign * t.rendition.height, t.id))


def segments_between(track: Track, start: float, end: float) -> list[Segment]:
    """The segments overlapping [start, end] seconds (at least one), in order."""
    ordered = sorted(track.segments, key=lambda s: s.number)
    picked = [s for s in ordered if s.start / track.timescale <= end and (s.start + s.duration) / track.timescale > start]
    return picked or [ordered[-1]]


def _clamp_time(t: float, track: Track) -> float:
    """Into [0, last frame]: a seek past the last frame would give no picture."""
    rate = track.rendition.frame_rate or Fraction(30)
    last = max(0.0, track.duration_seconds - 1.5 / float(rate))
    return round(min(max(0.0, t), last), 2)


@dataclass(frozen=True)
class DecodePlan:
    """Which files of which rung ffmpeg reads (concatenated: init + segments) and where to seek in them."""

    track: Track
    segments: tuple[Segment, ...]
    seek: float  # seconds from the start of the first segment
    # The segments are CENC-encrypted (an `encrypted` asset): the caller decrypts them with the
    # asset's key before ffmpeg reads them (core/services/images.py), so no key is in this argv.
    encrypted: bool = False

    @property
    def files(self) -> list[str]:
        """Relative to the asset root: the init segment, then the media segments."""
        return [self.track.init_uri] + [self.track.segment_uri(s.number) for s in self.segments]


def _decode_plan(track: Track, start: float, end: float, encrypted: bool = False) -> DecodePlan:
    segments = segments_between(track, start, end)
    first = segments[0].start / track.timescale
    return DecodePlan(track, tuple(segments), round(max(0.0, start - first), 3), encrypted)


# -- thumbnails -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ThumbnailPlan:
    decode: DecodePlan
    time: float
    width: int
    height: int
    fit_mode: str
    format: ImageFormat

    @property
    def name(self) -> str:
        """The file name under `images/`: every normalised parameter is in it."""
        return (f"thumb-{self.decode.track.id}-t{round(self.time * 100)}-{self.width}x{self.height}"
                f"-{self.fit_mode}.{self.format}")

    @property
    def filters(self) -> str:
        return fit_filter(self.decode.track.rendition.width, self.decode.track.rendition.height,
                          self.width, self.height, self.fit_mode)


def output_size(src_w: int, src_h: int, width: int | None, height: int | None, fit_mode: str) -> tuple[int, int]:
    """The picture's size: `preserve` fits inside the box, the other modes fill it exactly."""
    if width is None and height is None:
        return src_w, src_h
    if height is None:
        return width, max(1, round(width * src_h / src_w))
    if width is None:
        return max(1, round(height * src_w / src_h)), height
    if fit_mode == "preserve":
        scale = min(width / src_w, height / src_h)
        return max(1, round(src_w * scale)), max(1, round(src_h * scale))
    return width, height


def fit_filter(src_w: int, src_h: int, width: int, height: int, fit_mode: str) -> str:
    """The `-vf` chain turning a `src_w`×`src_h` picture into exactly `width`×`height`."""
    if fit_mode == "crop":
        scale = max(width / src_w, height / src_h)
        sw, sh = max(width, math.ceil(src_w * scale)), max(height, math.ceil(src_h * scale))
        return f"scale={sw}:{sh}:flags=bicubic,crop={width}:{height},setsar=1"
    if fit_mode == "pad":
        scale = min(width / src_w, height / src_h)
        sw, sh = max(1, round(src_w * scale)), max(1, round(src_h * scale))
        return (f"scale={sw}:{sh}:flags=bicubic,pad={width}:{height}:(ow-iw)/2:(oh-ih)/2:color=black,"
                "setsar=1")
    return f"scale={width}:{height}:flags=bicubic,setsar=1"


def plan_thumbnail(presentation: Presentation, request: ThumbnailRequest, fmt: ImageFormat) -> ThumbnailPlan:
    track = source_track(presentation)
    r = track.rendition
    wanted = request.time if request.time is not None else track.duration_seconds / 2
    t = _clamp_time(snap_time(wanted), track)
    box_w, box_h = snap_up(request.width, IMAGE_SIZES), snap_up(request.height, IMAGE_SIZES)
    width, height = output_size(r.width, r.height, box_w, box_h, request.fit_mode)
    both = request.width is not None and request.height is not None
    return ThumbnailPlan(_decode_plan(track, t, t, presentation.protection is not None), t, width, height, request.fit_mode if both else "preserve", fmt)


def _encoder(fmt: ImageFormat) -> list[str]:
    if fmt == "jpg":
        return ["-c:v", "mjpeg", "-q:v", "3", "-pix_fmt", "yuvj420p", "-f", "image2"]
    return ["-c:v", "libwebp", "-quality", "80", "-compression_level", "4", "-f", "webp"]


def build_thumbnail_argv(ffmpeg: str, plan: ThumbnailPlan, source: Path, out: Path) -> list[str]:
    """One frame at `plan.time`: input seek to the segment offset (fast, then exact by decoding)."""
    return [ffmpeg, *_INPUT, "-ss", _seconds(plan.decode.seek), "-i", str(source),
            "-map", "0:v:0", "-an", "-sn", "-map_metadata", "-1", "-frames:v", "1", "-vf", plan.filters,
            *_encoder(plan.format), "-update", "1", str(out)]  # fmt: skip


# -- animated previews ----------------------------------------------------------------------------


@dataclass(frozen=True)
class AnimatedPlan:
    decode: DecodePlan
    start: float
    end: float
    width: int
    height: int
    fps: int

    @property
    def name(self) -> str:
        return (f"anim-{self.decode.track.id}-s{round(self.start * 100)}-e{round(self.end * 100)}"
                f"-w{self.width}-f{self.fps}.webp")


def plan_animated(presentation: Presentation, request: AnimatedRequest) -> AnimatedPlan:
    track = source_track(presentation)
    r = track.rendition
    start = _clamp_time(snap_time(request.start or 0.0), track)
    end = snap_time(request.end) if request.end is not None else start + ANIMATED_DEFAULT_SECONDS
    end = round(min(end, start + ANIMATED_MAX_SECONDS, track.duration_seconds), 2)
    if end <= start:
        end = round(min(track.duration_seconds, start + 0.5), 2)
    width = snap_up(request.width, ANIMATED_WIDTHS) or min(ANIMATED_DEFAULT_WIDTH, r.width)
    height = max(2, round(width * r.height / r.width / 2) * 2)
    fps = snap_up(request.fps, ANIMATED_FRAME_RATES) or ANIMATED_DEFAULT_FPS
    return AnimatedPlan(_decode_plan(track, start, end, presentation.protection is not None), start, end, width, height, fps)


def build_animated_argv(ffmpeg: str, plan: AnimatedPlan, source: Path, out: Path) -> list[str]:
    return [ffmpeg, *_INPUT, "-ss", _seconds(plan.decode.seek), "-t", _seconds(plan.end - plan.start),
            "-i", str(source), "-map", "0:v:0", "-an", "-sn", "-map_metadata", "-1",
            "-vf", f"fps={plan.fps},scale={plan.width}:{plan.height}:flags=bicubic,setsar=1",
            "-c:v", "libwebp_anim", "-quality", "60", "-compression_level", "3", "-loop", "0",
            "-f", "webp", str(out)]  # fmt: skip


# -- storyboards ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class StoryboardTile:
    start: float
    end: float
    x: int
    y: int


@dataclass(frozen=True)
class StoryboardPlan:
    decode: DecodePlan
    duration: float
    interval: float  # seconds between tiles
    keyframes_only: bool  # every tile falls on a segment boundary: decode keyframes only
    tile_width: int
    tile_height: int
    columns: int
    rows: int
    count: int

    @property
    def name(self) -> str:
        return _storyboard_name(self.decode.track.id, self.interval, self.tile_width, self.tile_height,
                                self.columns, self.rows)

    @property
    def sheet_size(self) -> tuple[int, int]:
        return self.columns * self.tile_width, self.rows * self.tile_height

    @property
    def tiles(self) -> list[StoryboardTile]:
        """One per `interval`, the last one ending at the duration: contiguous, no gaps."""
        out = []
        for i in range(self.count):
            start = round(i * self.interval, 3)
            end = self.duration if i == self.count - 1 else round((i + 1) * self.interval, 3)
            row, col = divmod(i, self.columns)
            out.append(StoryboardTile(start, end, col * self.tile_width, row * self.tile_height))
        return out


def storyboard_interval(duration: float, segment_duration: float) -> tuple[float, bool]:
    """(seconds between tiles, keyframes only): at most 100 tiles; whole segments once that is coarse enough."""
    raw = max(1.0, duration / STORYBOARD_MAX_TILES)
    if raw <= segment_duration / 2 or segment_duration <= 0:
        return float(math.ceil(raw)), False
    # Long videos: a multiple of the segment duration, so every tile is a keyframe.
    return math.ceil(raw / segment_duration) * segment_duration, True


def _storyboard_layout(rendition: Rendition, duration: float, segment_duration: float) -> dict:
    """The sheet's geometry for a rung of this size and a track this long (StoryboardPlan's fields)."""
    interval, keyframes_only = storyboard_interval(duration, segment_duration)
    count = max(1, math.ceil(duration / interval - 1e-9))
    columns = min(STORYBOARD_COLUMNS, count)
    tile_height = max(2, round(STORYBOARD_TILE_WIDTH * rendition.height / rendition.width / 2) * 2)
    return {"duration": duration, "interval": interval, "keyframes_only": keyframes_only,
            "tile_width": STORYBOARD_TILE_WIDTH, "tile_height": tile_height, "columns": columns,
            "rows": math.ceil(count / columns), "count": count}


def _storyboard_name(track_id: str, interval: float, tile_width: int, tile_height: int, columns: int,
                     rows: int) -> str:
    return f"storyboard-{track_id}-i{round(interval * 1000)}-{tile_width}x{tile_height}-{columns}x{rows}.jpg"


def _storyboard_graph(interval: float, tile_width: int, tile_height: int, columns: int, rows: int) -> str:
    """Every `interval` s a frame, scaled to a tile, all tiled into one sheet."""
    return (f"fps=1/{_seconds(interval)},scale={tile_width}:{tile_height}:flags=bicubic,setsar=1,"
            f"tile={columns}x{rows}")


def plan_storyboard(presentation: Presentation) -> StoryboardPlan:
    track = source_track(presentation, largest=False)
    decode = DecodePlan(track, tuple(sorted(track.segments, key=lambda s: s.number)), 0.0,
                        presentation.protection is not None)
    return StoryboardPlan(decode, **_storyboard_layout(track.rendition, round(track.duration_seconds, 3),
                                                       presentation.segment_duration))


def build_storyboard_argv(ffmpeg: str, plan: StoryboardPlan, source: Path, out: Path) -> list[str]:
    """The sheet cut from a finished rung (`source`: its segments joined)."""
    skip = ["-skip_frame", "nokey"] if plan.keyframes_only else []
    graph = _storyboard_graph(plan.interval, plan.tile_width, plan.tile_height, plan.columns, plan.rows)
    return [ffmpeg, *_INPUT, *skip, "-i", str(source), "-map", "0:v:0", "-an", "-sn", "-map_metadata", "-1",
            "-vf", graph, *sheet_output(out)]  # fmt: skip


def sheet_output(out: Path) -> list[str]:
    """The output options of one storyboard sheet (a JPEG written once), at `out`."""
    return ["-frames:v", "1", *_encoder("jpg"), "-update", "1", str(out)]


@dataclass(frozen=True)
class StoryboardTap:
    """The storyboard sheet cut by a ladder's own ffmpeg, from a rung's picture on its way to the encoder.

    The transcode's sheet was cut after the encode from the smallest rung's
    segments: a second decode of the whole rung (0.4 s of a 30 s 1080p
    ladder's ~19 s on 2 cores; a 3-minute video's ~2.5 s) after every other
    step, on the way to `ready`. Cut inside the encode, the picture is the one
    the rung's encoder gets (the same frames, not their encoded copy) and
    costs almost nothing beside the ladder. `name` is `StoryboardPlan.name`
    as planned from the probed duration: when the tapped family's encode
    ends, the transcode stores the sheet only if the presentation then plans
    the same name (a track whose length plans another interval or grid than
    the probe did gets its sheet cut the former way; a tile more or fewer in
    the same grid is the same sheet), before the family is recorded complete.
    """

    rung: int  # index in the ladder of the rung whose picture is tiled
    name: str  # the sheet's file name, `StoryboardPlan.name`
    graph: str  # the filter chain from the rung's picture to the sheet

    @classmethod
    def plan(cls, renditions: tuple[Rendition, ...] | list[Rendition], duration: float,
             segment_duration: float) -> StoryboardTap | None:
        """The sheet `plan_storyboard` will ask for once this ladder is encoded (its smallest rung, as
        `source_track` picks within one codec), from the source's probed `duration`; None without video."""
        video = [(i, r) for i, r in enumerate(renditions) if r.width and r.height]
        if not video or duration <= 0:
            return None
        i, r = min(video, key=lambda x: (x[1].height, x[1].id))
        g = _storyboard_layout(r, round(duration, 3), segment_duration)
        geometry = (g["interval"], g["tile_width"], g["tile_height"], g["columns"], g["rows"])
        return cls(i, _storyboard_name(r.id, *geometry), _storyboard_graph(*geometry))


def _vtt_time(seconds: float) -> str:
    millis = round(seconds * 1000)
    h, rest = divmod(millis, 3_600_000)
    m, rest = divmod(rest, 60_000)
    s, ms = divmod(rest, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}.{ms:03d}"


def render_storyboard_vtt(plan: StoryboardPlan, sheet_uri: str) -> str:
    """The WebVTT index thumbnail plugins read: one cue per tile, `sheet#xywh=x,y,w,h`."""
    lines = ["WEBVTT", ""]
    for tile in plan.tiles:
        lines += [f"{_vtt_time(tile.start)} --> {_vtt_time(tile.end)}",
                  f"{sheet_uri}#xywh={tile.x},{tile.y},{plan.tile_width},{plan.tile_height}", ""]
    return "\n".join(lines)


def _seconds(value: float) -> str:
    text = f"{value:.3f}".rstrip("0").rstrip(".")
    return text or "0"
