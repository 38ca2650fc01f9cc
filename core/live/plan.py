"""The live ladder: planned once per stream from the first probe (never above the source), kept across reconnects."""

from __future__ import annotations

import dataclasses
from dataclasses import asdict, dataclass
from fractions import Fraction

from core.errors import Unprocessable
from core.live.probe import LiveSourceInfo
from core.media.audio_tracks import plan_audio_tracks
from core.media.ladder import output_frame_rate, plan_audio, plan_ladder
from core.media.model import Ladder, Rendition

LIVE_MAX_RUNGS = 3  # a live encode runs in real time on every rung, forever: fewer rungs than VOD


@dataclass(frozen=True)
class LivePlan:
    ladder: Ladder | None
    audio: Rendition | None
    frame_rate: Fraction | None
    more_audio: tuple[Rendition, ...] = ()  # further audio tracks of a source that carries several

    @property
    def renditions(self) -> list[Rendition]:
        return [*(self.ladder.renditions if self.ladder else ()), *([self.audio] if self.audio else []),
                *self.more_audio]

    def to_dict(self) -> dict:
        def plain(r: Rendition) -> dict:
            d = asdict(r)
            d["frame_rate"] = str(r.frame_rate) if r.frame_rate else None
            return d

        return {"renditions": [plain(r) for r in self.renditions],
                "frame_rate": str(self.frame_rate) if self.frame_rate else None}


def plan_live(info: LiveSourceInfo, settings: dict) -> LivePlan:
    """One ladder (live streams encode a single codec family: the first of `codecs`) and the audio."""
    codec = (settings.get("codecs") or ["h264"])[0]
    ladder = None
    rate = None
    if info.has_video:
        rate = output_frame_rate(info.frame_rate)
        ladder = plan_ladder(codec=codec, display_width=info.width, display_height=info.height, frame_rate=rate,
                             explicit=settings.get("ladder"), max_rungs=LIVE_MAX_RUNGS)
    audio = plan_audio(info.audio_channels, info.audio_sample_rate) if info.audio_channels else None
    more_audio: tuple[Rendition, ...] = ()
    if len(info.audio_streams) > 1:  # every language the source carries, the first the default
        audio, *rest = plan_audio_tracks(info.audio_streams)
        more_audio = tuple(rest)
    if ladder is None and audio is None:
        raise Unprocessable("the live source has neither video nor audio")
    return LivePlan(ladder=ladder, audio=audio, frame_rate=rate, more_audio=more_audio)


def plan_from_dict(data: dict) -> LivePlan:
    """The plan a run stored in the row (`to_dict`), for the run that takes the stream over: same renditions,
    same ids, so its segments continue the dead run's tracks whatever the source looks like now."""
    fields = {f.name for f in dataclasses.fields(Rendition)}

    def rendition(d: dict) -> Rendition:
        d = {k: v for k, v in d.items() if k in fields}
        d["frame_rate"] = Fraction(d["frame_rate"]) if d.get("frame_rate") else None
        return Rendition(**d)

    renditions = [rendition(d) for d in data["renditions"]]
    video = tuple(r for r in renditions if not r.is_audio)
    audio = [r for r in renditions if r.is_audio]
    return LivePlan(ladder=Ladder(codec=video[0].codec, renditions=video) if video else None,
                    audio=audio[0] if audio else None,
                    frame_rate=Fraction(data["frame_rate"]) if data.get("frame_rate") else None,
                    more_audio=tuple(audio[1:]))
