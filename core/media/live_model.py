"""The live presentation: what `live.json` holds and every live manifest is rendered from.

A `Presentation` (the VOD model, `core.media.model`) whose tracks carry only
the segments inside the DVR window, plus what live adds. It sits in
`core/media` beside the VOD model because the live manifest renderer
(`core.media.manifests.live`) reads it, and media never imports `core/live`;
the live session (`core.live.publisher`) writes it.

- `periods`: one per source connection. A reconnect starts a new period
  (HLS: EXT-X-DISCONTINUITY; DASH: a new Period). The media timeline is
  continuous across periods (the live encoder keeps it so), so a period is just a
  media time where it starts and the wall-clock time that media time was
  live: `wall(t) = period.wall + (t - period.start)` gives every segment's
  EXT-X-PROGRAM-DATE-TIME and the MPD's availability times.
- `ended`: no more segments will come (ENDLIST, static MPD).
- `published_at`: when this version was written (the MPD's publishTime).
- `part_target` / `parts` (low-latency streams only): the part target
  duration (s) and, per rendition, the partial segments (CMAF fragments) of
  the last few segments and of the one still being written, which LL-HLS
  lists as EXT-X-PART and LL-DASH announces through availabilityTimeOffset.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from core.media.model import Presentation, Segment, Track

LIVE_PRESENTATION = "live.json"
RECORDING_PRESENTATION = "recording.json"
THUMBNAIL = "thumbnail.jpg"


@dataclass(frozen=True)
class Period:
    id: str  # "p0", "p1", …
    start: float  # media time (s) of the period's first frame
    wall: float  # Unix time (s) at which `start` was live


@dataclass(frozen=True)
class Part:
    """One partial segment: a CMAF fragment of segment `segment`, published as its own object."""

    segment: int  # the segment's number
    index: int  # 0-based within the segment
    duration: int  # in the track's timescale
    independent: bool  # starts with a keyframe

    def uri(self, track: Track) -> str:
        return part_uri(track, self.segment, self.index)


def part_uri(track: Track, segment: int, index: int) -> str:
    """Relative to the playback root, beside the segment: `720p/00042.3.m4s`."""
    return f"{track.id}/{segment:05d}.{index}.{track.extension}"


@dataclass
class LivePresentation:
    presentation: Presentation
    periods: list[Period] = field(default_factory=list)
    dvr_window: float = 120.0
    ended: bool = False
    published_at: float = 0.0
    part_target: float | None = None  # None: a standard-latency stream
    parts: dict[str, list[Part]] = field(default_factory=dict)

    @property
    def low_latency(self) -> bool:
        return self.part_target is not None

    @property
    def segment_duration(self) -> float:
        return self.presentation.segment_duration

    @property
    def availability_start(self) -> float:
        """Unix time of media time 0 in the first period (the MPD's availabilityStartTime)."""
        first = self.periods[0]
        return first.wall - first.start

    def period_index(self, track: Track, segment: Segment) -> int:
        """The period a segment belongs to (AAC priming may start it a frame before the period)."""
        t = segment.start / track.timescale + self.segment_duration / 2
        index = 0
        for i, period in enumerate(self.periods):
            if period.start <= t:
                index = i
        return index

    def wall_clock(self, track: Track, segment: Segment) -> float:
        period = self.periods[self.period_index(track, segment)]
        return period.wall + (segment.start / track.timescale - period.start)

    def to_dict(self) -> dict:
        extra = {}
        if self.part_target is not None:
            extra = {"part_target": self.part_target,
                     "parts": {rid: [[p.segment, p.index, p.duration, int(p.independent)] for p in parts]
                               for rid, parts in self.parts.items()}}
        return {
            **extra,
            "live": True,
            "ended": self.ended,
            "dvr_window": self.dvr_window,
            "published_at": self.published_at,
            "periods": [dataclasses.asdict(p) for p in self.periods],
            "presentation": self.presentation.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: dict) -> LivePresentation:
        return cls(
            presentation=Presentation.from_dict(data["presentation"]),
            periods=[Period(**p) for p in data["periods"]],
            dvr_window=data["dvr_window"],
            ended=data["ended"],
            published_at=data["published_at"],
            part_target=data.get("part_target"),
            parts={rid: [Part(s, i, d, bool(k)) for s, i, d, k in parts]
                   for rid, parts in data.get("parts", {}).items()},
        )


def window(track: Track, seconds: float) -> list[Segment]:
    """The segments of `track` whose start lies within `seconds` of its live edge (at least one)."""
    if not track.segments:
        return []
    last = track.segments[-1]
    edge = (last.start + last.duration) / track.timescale
    kept = [s for s in track.segments if s.start / track.timescale >= edge - seconds]
    return kept or [last]
