"""The media vocabulary shared by planner, encoder, packager and manifest writers.

Names follow the specs: a `Ladder` of `Rendition`s is planned; what ffmpeg
produced for one rendition is a `Track` (init segment + media `Segment`s);
all tracks of an asset form the `Presentation` (DASH's word for the whole
thing) from which both the HLS playlists and the DASH MPD are written.

The `Presentation` serialises to JSON (`presentation.json` beside the media)
so that the origin can render manifests per request (tokens, filters)
without touching the database.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from typing import Literal

VideoCodec = Literal["h264", "h265", "vp8", "av1"]
VIDEO_CODECS: tuple[str, ...] = ("h264", "h265", "vp8", "av1")
AUDIO_RENDITION_ID = "audio"  # the first audio track; later ones are `audio-2`, `audio-3`, …
# DASH Role values (ISO/IEC 23009-1 §5.8.5.5) an audio track may carry; `description` is
# audio description for the blind (HLS: CHARACTERISTICS="public.accessibility.describes-video").
AUDIO_ROLES: tuple[str, ...] = ("main", "alternate", "dub", "commentary", "description")


def audio_rendition_id(position: int) -> str:
    """The id (and directory) of the audio track at 0-based `position` in the asset's audio list."""
    return AUDIO_RENDITION_ID if position == 0 else f"{AUDIO_RENDITION_ID}-{position + 1}"


def is_audio_rendition_id(rid: str) -> bool:
    return rid == AUDIO_RENDITION_ID or re.fullmatch(rf"{AUDIO_RENDITION_ID}-[0-9]+", rid) is not None


@dataclass(frozen=True)
class Rendition:
    """One rung of a ladder (or the single shared audio rendition).

    `id` is also the rendition's directory name under the asset prefix,
    e.g. ``h264-720p`` or ``audio``.
    """

    id: str
    codec: str  # h264 | h265 | vp8 | av1 | aac
    width: int = 0
    height: int = 0
    bitrate: int = 0  # target average, bits/s
    max_bitrate: int = 0  # VBV maxrate, bits/s
    buffer_size: int = 0  # VBV bufsize, bits
    frame_rate: Fraction | None = None
    channels: int = 0  # audio only
    sample_rate: int = 0  # audio only
    # Audio tracks of a multi-language asset (all empty/False/0 for the classic single track):
    language: str = ""  # BCP 47 (`en`, `pt-BR`); "" = undetermined
    name: str = ""  # what a player's audio menu shows
    role: str = ""  # one of AUDIO_ROLES; "" = main for the default track, alternate otherwise
    default: bool = False  # the track a player starts with
    source_stream: int = 0  # which audio stream of the input it is encoded from (`-map 0:a:N`)
    # Capped CRF (a per-title H.264 or AV1 rung, core/media/pertitle.py): x264 / SVT-AV1 holds this constant
    # rate factor under the `max_bitrate`/`buffer_size` cap, and `bitrate` is the average the analysis expects.
    # None: average-bitrate rate control at `bitrate` (the fixed table, explicit ladders, other codecs).
    crf: float | None = None

    @property
    def is_audio(self) -> bool:
        return self.codec == "aac"


_RENDITION_DEFAULTS = {"language": "", "name": "", "role": "", "default": False, "source_stream": 0, "crf": None}


@dataclass(frozen=True)
class RungQuality:
    """A rung's VMAF as the per-title analysis measured it on the source's samples (0-100, display size)."""

    vmaf_mean: float
    vmaf_p5: float  # 5th percentile over the scored frames: the worst moments
    samples: int  # how many samples of the source it was measured on


@dataclass(frozen=True)
class Ladder:
    """The renditions one ffmpeg process encodes for one codec family."""

    codec: str
    renditions: tuple[Rendition, ...]
    # rendition id -> measured quality; only a per-title ("auto") ladder has it.
    quality: dict[str, RungQuality] = field(default_factory=dict, compare=False, hash=False)
    # The whole ladder when this one holds only some of its rungs (a per-title trial of some sizes,
    # core/media/analysis.py; a per-title ladder that dropped some of the fixed table's): each rung's x264 preset
    # and slice threads are planned as in the whole ladder (`rungs.plan_rungs`), so a trial measures a rung as the
    # final encode encodes it, and the final encode encodes it as it was measured.
    within: tuple[Rendition, ...] = field(default=(), compare=False, hash=False)


@dataclass(frozen=True)
class Segment:
    """One media segment as produced. Times are in the track's timescale."""

    number: int  # 1-based, the $Number$ of the DASH template
    start: int
    duration: int
    size: int  # bytes


@dataclass
class Track:
    """A rendition as produced: what the manifests are written from."""

    rendition: Rendition
    codecs: str  # RFC 6381 string read from the init segment, e.g. avc1.64001f
    container: Literal["mp4", "webm"]
    timescale: int
    segments: list[Segment] = field(default_factory=list)
    complete: bool = False  # True once the last segment is in

    @property
    def id(self) -> str:
        return self.rendition.id

    @property
    def extension(self) -> str:
        return "m4s" if self.container == "mp4" else "webm"

    @property
    def init_uri(self) -> str:
        """Relative to the asset root (the playback root)."""
        return f"{self.id}/init.{'mp4' if self.container == 'mp4' else 'webm'}"

    def segment_uri(self, number: int) -> str:
        return f"{self.id}/{number:05d}.{self.extension}"

    @property
    def mime_type(self) -> str:
        kind = "audio" if self.rendition.is_audio else "video"
        return f"{kind}/{self.container}"

    @property
    def duration_seconds(self) -> float:
        return sum(s.duration for s in self.segments) / self.timescale

    @property
    def peak_bandwidth(self) -> int:
        """Highest bitrate of any single segment, bits/s (what HLS BANDWIDTH must cover)."""
        peaks = [s.size * 8 * self.timescale / s.duration for s in self.segments if s.duration > 0]
        return math.ceil(max(peaks)) if peaks else self.rendition.max_bitrate or self.rendition.bitrate

    @property
    def average_bandwidth(self) -> int:
        total = sum(s.duration for s in self.segments)
        if total <= 0:
            return self.rendition.bitrate
        return math.ceil(sum(s.size for s in self.segments) * 8 * self.timescale / total)


@dataclass(frozen=True)
class TextTrack:
    """A WebVTT subtitle/caption track (uploaded, not encoded): one file for the whole duration."""

    id: str
    language: str  # BCP 47, e.g. en, pt-BR
    name: str
    default: bool = False

    @property
    def uri(self) -> str:
        """The WebVTT file, relative to the playback root."""
        return f"text/{self.id}.vtt"

    @property
    def playlist_uri(self) -> str:
        """Its HLS media playlist (one segment: the whole file)."""
        return f"text/{self.id}/index.m3u8"


@dataclass(frozen=True)
class Protection:
    """How the CMAF segments are encrypted: CENC (AES-CTR) under one key, named here by its id only.

    The key itself is never in the presentation (which the origin reads on every
    manifest request); `key_systems` are the licence services the manifests name.
    """

    default_kid: str  # UUID form, as `cenc:default_KID`
    scheme: str = "cenc"
    key_systems: tuple[str, ...] = ("clearkey",)


@dataclass
class Presentation:
    """Every track of one asset; `complete` once no more tracks or segments will come."""

    segment_duration: float
    tracks: list[Track] = field(default_factory=list)
    complete: bool = False
    text_tracks: list[TextTrack] = field(default_factory=list)
    protection: Protection | None = None

    @property
    def audio_tracks(self) -> list[Track]:
        """Every audio track, the default one first (then in the order they were added)."""
        audio = [t for t in self.tracks if t.rendition.is_audio]
        return sorted(audio, key=lambda t: not t.rendition.default)

    @property
    def audio(self) -> Track | None:
        """The default audio track (the only one of a single-audio asset)."""
        return next(iter(self.audio_tracks), None)

    @property
    def video_tracks(self) -> list[Track]:
        return [t for t in self.tracks if not t.rendition.is_audio]

    @property
    def duration(self) -> float:
        done = [t.duration_seconds for t in self.tracks if t.segments]
        return max(done) if done else 0.0

    def to_dict(self) -> dict:
        def track(t: Track) -> dict:
            r = asdict(t.rendition)
            # Audio-track fields left at their defaults stay out: older files stay byte-identical.
            for name, empty in _RENDITION_DEFAULTS.items():
                if r.get(name) == empty:
                    del r[name]
            r["frame_rate"] = str(t.rendition.frame_rate) if t.rendition.frame_rate else None
            return {
                "rendition": r,
                "codecs": t.codecs,
                "container": t.container,
                "timescale": t.timescale,
                "complete": t.complete,
                # compact: [number, start, duration, size]
                "segments": [[s.number, s.start, s.duration, s.size] for s in t.segments],
            }

        data = {
            "segment_duration": self.segment_duration,
            "complete": self.complete,
            "tracks": [track(t) for t in self.tracks],
        }
        if self.text_tracks:  # absent when empty: older readers and files stay byte-identical
            data["text_tracks"] = [asdict(t) for t in self.text_tracks]
        if self.protection is not None:
            p = self.protection
            data["protection"] = {"default_kid": p.default_kid, "scheme": p.scheme, "key_systems": list(p.key_systems)}
        return data

    @classmethod
    def from_dict(cls, data: dict) -> Presentation:
        tracks = []
        for t in data["tracks"]:
            r = dict(t["rendition"])
            r["frame_rate"] = Fraction(r["frame_rate"]) if r.get("frame_rate") else None
            tracks.append(
                Track(
                    rendition=Rendition(**r),
                    codecs=t["codecs"],
                    container=t["container"],
                    timescale=t["timescale"],
                    complete=t["complete"],
                    segments=[Segment(*s) for s in t["segments"]],
                )
            )
        text_tracks = [TextTrack(**t) for t in data.get("text_tracks", ())]
        protection = None
        if p := data.get("protection"):
            protection = Protection(default_kid=p["default_kid"], scheme=p.get("scheme", "cenc"),
                                    key_systems=tuple(p.get("key_systems", ("clearkey",))))
        return cls(segment_duration=data["segment_duration"], complete=data["complete"], tracks=tracks,
                   text_tracks=text_tracks, protection=protection)
