"""Assets: create from a probed upload, read, list, delete. Stateless; `session` first."""

from __future__ import annotations

import logging
from fractions import Fraction
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from sqlalchemy import or_, true
from sqlmodel import Session, func, select

from core import events, layout
from core.db.models import Asset, Job, PlaybackId, Rendition, utcnow
from core.errors import NotFound, Unprocessable
from core.media.audio_tracks import TrackLabel, plan_audio_tracks
from core.media.ladder import plan_ladder
from core.media.limits import HeaderFacts, MediaLimits, check_header  # MediaLimits: also imported from here
from core.media.plugins import PluginSettingsError, validate_chain
from core.media.model import Ladder
from core.media.pertitle import QualityMeasurements
from core.media.model import Rendition as PlannedRendition
from core.media.probe import MediaInfo
from core.storage import Storage

log = logging.getLogger(__name__)


class LadderRung(BaseModel):
    model_config = ConfigDict(extra="forbid")
    height: int = Field(ge=64, le=4320)
    bitrate: int = Field(ge=50_000, le=100_000_000)


NAME_MAX = 255


class AssetMeta(BaseModel):
    """People's own metadata of an asset: shown, searched (`title`, `external_id`), never interpreted."""

    model_config = ConfigDict(extra="forbid")
    title: str | None = Field(default=None, max_length=512)
    creator_id: str | None = Field(default=None, max_length=128)
    external_id: str | None = Field(default=None, max_length=128)


class FramePluginSpec(BaseModel):
    """One entry of `frame_plugins`: an installed plugin's name and its options (checked against its schema)."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=100)
    options: dict = Field(default_factory=dict)


def check_frame_plugins(specs: list[FramePluginSpec]) -> list[FramePluginSpec]:
    try:
        checked = validate_chain([s.model_dump() for s in specs])
    except PluginSettingsError as exc:
        raise ValueError(str(exc)) from exc
    return [FramePluginSpec(**s) for s in checked]


class AudioTrackLabel(BaseModel):
    """Overrides for one source audio stream's track (what the source's tags say otherwise)."""

    model_config = ConfigDict(extra="forbid")
    language: str | None = Field(default=None, pattern=r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*$")
    name: str | None = Field(default=None, min_length=1, max_length=100)
    role: Literal["main", "alternate", "dub", "commentary", "description"] | None = None


class AudioSettings(BaseModel):
    """`"audio": {"tracks": "all" | [0, 2], "default": 2, "labels": {"2": {"language": "fr"}}}`.

    Numbers are positions among the source's audio streams (0 = the first).
    """

    model_config = ConfigDict(extra="forbid")
    tracks: Literal["all"] | list[int] = Field(default="all")
    default: int | None = Field(default=None, ge=0, le=63)
    labels: dict[int, AudioTrackLabel] = Field(default_factory=dict, max_length=64)

    @field_validator("tracks")
    @classmethod
    def _tracks(cls, v):
        if isinstance(v, list):
            if not v or len(v) > 16 or len(set(v)) != len(v) or any(not 0 <= i <= 63 for i in v):
                raise ValueError("tracks must be 'all' or 1-16 distinct audio stream positions (0-63)")
        return v

    def plan(self, streams) -> list[PlannedRendition]:
        labels = {i: TrackLabel(**label.model_dump()) for i, label in self.labels.items()}
        try:
            return plan_audio_tracks(streams, tracks=self.tracks, default=self.default, labels=labels)
        except ValueError as exc:
            raise Unprocessable(f"audio: {exc}") from None


class AssetSettings(BaseModel):
    """The `settings` of POST /v1/assets (see API.md)."""

    model_config = ConfigDict(extra="forbid")
    codecs: list[Literal["h264", "h265", "vp8", "av1"]] = Field(default_factory=lambda: ["h264"], min_length=1, max_length=4)
    segment_duration: float = Field(default=4.0, ge=1.0, le=10.0)
    # A list: exactly these rungs. "auto": per-title, measured on samples of the source with VMAF
    # (core/media/analysis.py). "fixed": the bitrate table. None: "auto" where the source takes the
    # chunked path (ABR_AUTO_LADDER_CHUNKED, default on) or is longer than ABR_AUTO_LADDER_MIN_DURATION
    # when the operator sets it; "fixed" otherwise.
    ladder: list[LadderRung] | Literal["auto", "fixed"] | None = Field(default=None)
    # After publishing, measure every video rendition's VMAF over its whole length (costs about a decode
    # and a VMAF pass per rendition); without it only the per-title analysis' sample scores are shown.
    quality_report: bool = False
    # encrypted: signed, and the CMAF segments CENC-encrypted with the asset's key (DASH + ClearKey)
    playback_policy: Literal["public", "signed", "encrypted"] = "public"
    passthrough: str | None = Field(default=None, max_length=2000)
    mp4_support: bool = False  # also publish a progressive MP4 download (remuxed top H.264 rung + audio)
    name: str | None = Field(default=None, max_length=NAME_MAX)  # default: the uploaded file's name
    meta: AssetMeta | None = None
    audio: AudioSettings | None = None  # None: every source audio stream, the first one default
    # Python code on every decoded frame, in order (core/media/plugins); [] keeps the plain one-ffmpeg encode.
    frame_plugins: list[FramePluginSpec] = Field(default_factory=list, max_length=8)

    @field_validator("frame_plugins")
    @classmethod
    def _plugins(cls, v: list[FramePluginSpec]) -> list[FramePluginSpec]:
        return check_frame_plugins(v)

    @field_validator("ladder")
    @classmethod
    def _ladder_size(cls, v):
        if isinstance(v, list) and not 1 <= len(v) <= 8:
            raise ValueError("an explicit ladder has 1 to 8 rungs")
        return v

    def ladder_mode(self, duration: float | None, auto_min_duration: float | None,
                    chunked_auto: bool = False) -> Literal["explicit", "auto", "fixed"]:
        """How this asset's ladder is planned: explicit rungs, per-title, or the fixed table.

        `chunked_auto`: the source takes the chunked path and the worker makes per-title the default
        there (ABR_AUTO_LADDER_CHUNKED)."""
        if isinstance(self.ladder, list):
            return "explicit"
        if self.ladder is not None:
            return self.ladder
        if chunked_auto:
            return "auto"
        if auto_min_duration is None or duration is None:
            return "fixed"
        return "auto" if duration > auto_min_duration else "fixed"

    @field_validator("codecs")
    @classmethod
    def _unique(cls, v: list[str]) -> list[str]:
        if len(set(v)) != len(v):
            raise ValueError("codecs must not repeat")
        return v

    @model_validator(mode="after")
    def _encryptable(self) -> AssetSettings:
        if self.playback_policy == "encrypted":
            if "vp8" in self.codecs:
                raise ValueError("playback_policy encrypted needs CMAF codecs (h264, h265): VP8 is WebM")
            if self.mp4_support:
                raise ValueError("playback_policy encrypted cannot offer an MP4 download")
        return self


# Stored in their own columns, not in `settings` (which says how to encode).
DESCRIPTIVE = {"passthrough", "name", "meta"}


class AssetUpdate(BaseModel):
    """The body of PATCH /v1/assets/{id}: fields left out stay as they are, `null` clears one."""

    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(default=None, max_length=NAME_MAX)
    passthrough: str | None = Field(default=None, max_length=2000)
    meta: AssetMeta | None = None


def describe(asset: Asset, *, name: str | None = None, passthrough: str | None = None,
             meta: AssetMeta | None = None, fields: set[str] | None = None) -> None:
    """Set the descriptive fields named in `fields` (default: all three); within `meta`, only the keys given."""
    fields = {"name", "passthrough", "meta"} if fields is None else fields
    if "name" in fields:
        asset.name = clean_name(name)
    if "passthrough" in fields:
        asset.passthrough = passthrough
    if "meta" in fields:
        given = meta.model_fields_set if meta is not None else {"title", "creator_id", "external_id"}
        for key in given:
            setattr(asset, f"meta_{key}", getattr(meta, key) if meta is not None else None)


def clean_name(name: str | None) -> str | None:
    """A display name: control characters gone, whitespace trimmed, at most NAME_MAX characters."""
    if name is None:
        return None
    name = "".join(ch for ch in name if ch.isprintable()).strip()
    return name[:NAME_MAX] or None


def name_from_url(url: str) -> str | None:
    """The last path segment of an import URL (`…/talks/intro.mp4?sig=…` → `intro.mp4`)."""
    from urllib.parse import unquote, urlsplit

    return clean_name(unquote(urlsplit(url).path.rstrip("/").rpartition("/")[2]) or None)


def meta_of(asset: Asset) -> dict[str, str | None]:
    return {"title": asset.meta_title, "creator_id": asset.meta_creator_id, "external_id": asset.meta_external_id}


def check_limits(info: MediaInfo, limits: MediaLimits) -> None:
    """The probe's header check (`core.media.limits`), again on what the probe found (URL imports, old callers)."""
    v = info.video
    check_header(HeaderFacts(duration=info.duration, stream_count=info.stream_count,
                             width=v.width if v else None, height=v.height if v else None,
                             sample_aspect_ratio=v.sample_aspect_ratio if v else Fraction(1),
                             frame_rate=v.frame_rate if v else None), limits)


def plan_asset(info: MediaInfo, settings: AssetSettings, measurements: dict[str, QualityMeasurements] | None = None,
               keep_sizes: bool = False) -> tuple[list[Ladder], PlannedRendition | None]:
    """Every ladder (one per requested codec, in order) and the default audio rendition.

    `measurements` (codec -> the per-title analysis) make those codecs' ladders per-title;
    without them an "auto" ladder is planned from the fixed table (what the API records
    at upload, before a worker has analysed the source). `keep_sizes`: the fixed table's
    rungs, each at its measured capped CRF (the chunked path, `plan_ladder`).
    The other audio tracks, if any: `plan_audio_renditions`.
    """
    ladders = []
    if info.video is not None:
        explicit = [r.model_dump() for r in settings.ladder] if isinstance(settings.ladder, list) else None
        for codec in settings.codecs:
            ladders.append(plan_ladder(codec=codec, display_width=info.video.display_width,
                                       display_height=info.video.display_height,
                                       frame_rate=info.video.frame_rate, explicit=explicit,
                                       measurements=(measurements or {}).get(codec), keep_sizes=keep_sizes))
    audio_tracks = plan_audio_renditions(info, settings)
    audio = audio_tracks[0] if audio_tracks else None
    if not ladders and audio is None:
        raise Unprocessable("the source has neither a video nor an audio stream we can use")
    return ladders, audio


def plan_audio_renditions(info: MediaInfo, settings: AssetSettings) -> list[PlannedRendition]:
    """Every audio track of the asset, the default first (`audio`); [] for a silent source."""
    if info.audio is None:
        return []
    streams = info.audio_streams or (info.audio,)
    if settings.audio is None:
        return AudioSettings().plan(streams)
    return settings.audio.plan(streams)


def create_asset(session: Session, storage: Storage, *, source: Path, info: MediaInfo,
                 settings: AssetSettings, limits: MediaLimits | None = None, filename: str | None = None) -> Asset:
    """Record a probed upload as a queued asset and move the file into storage.

    The caller enqueues the transcode only after this has committed, so a
    worker never sees an asset that is not in the database yet.
    """
    check_limits(info, limits or MediaLimits())
    ladders, _ = plan_asset(info, settings)
    audio_tracks = plan_audio_renditions(info, settings)
    asset = Asset(status="queued", duration=info.duration, source=info.to_dict(),
                  settings=settings.model_dump(exclude=DESCRIPTIVE))
    describe(asset, name=settings.name or filename, passthrough=settings.passthrough, meta=settings.meta)
    asset.source_key = layout.source_key(asset.id)
    session.add(asset)
    for planned in [r for ladder in ladders for r in ladder.renditions] + audio_tracks:
        session.add(Rendition(asset_id=asset.id, name=planned.id, codec=planned.codec, width=planned.width,
                              height=planned.height, bitrate=planned.bitrate,
                              frame_rate=float(planned.frame_rate) if planned.frame_rate else None))
    session.add(PlaybackId(asset_id=asset.id, policy=settings.playback_policy))
    session.add(Job(asset_id=asset.id, kind="transcode"))
    # The original goes into storage before the rows commit: a crash in between
    # leaves an orphan file (harmless), never a row pointing at nothing.
    storage.put_file(asset.source_key, source, move=True)
    session.commit()
    session.refresh(asset)
    events.emit(session.get_bind(), events.ASSET_CREATED, asset_id=asset.id)
    return asset


def get_asset(session: Session, asset_id: str) -> Asset:
    asset = session.get(Asset, asset_id)
    if asset is None:
        raise NotFound(f"no asset {asset_id}")
    return asset


def list_assets(session: Session, *, limit: int, offset: int, q: str | None = None) -> tuple[list[Asset], int]:
    """Newest first; `q` keeps assets whose name, title or external id contains it (any case)."""
    where = search_filter(q)
    rows = session.exec(select(Asset).where(where).order_by(Asset.created_at.desc(), Asset.id)
                        .offset(offset).limit(limit)).all()
    count = session.exec(select(func.count()).select_from(Asset).where(where)).one()
    return list(rows), int(count)


def search_filter(q: str | None):
    """A case-insensitive substring match over the searchable columns; `%`, `_` and `\\` in `q` are literal."""
    if not q or not q.strip():
        return true()
    escaped = q.strip().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    pattern = f"%{escaped}%"
    return or_(*(column.ilike(pattern, escape="\\") for column in
                 (Asset.name, Asset.meta_title, Asset.meta_external_id)))


def update_asset(session: Session, asset_id: str, body: AssetUpdate) -> Asset:
    asset = get_asset(session, asset_id)
    describe(asset, name=body.name, passthrough=body.passthrough, meta=body.meta, fields=body.model_fields_set)
    touch(asset)
    session.add(asset)
    session.commit()
    session.refresh(asset)
    return asset


def renditions_of(session: Session, asset_id: str) -> list[Rendition]:
    return list(session.exec(select(Rendition).where(Rendition.asset_id == asset_id).order_by(Rendition.pk)).all())


def playback_ids_of(session: Session, asset_id: str) -> list[PlaybackId]:
    return list(session.exec(select(PlaybackId).where(PlaybackId.asset_id == asset_id)
                             .order_by(PlaybackId.created_at)).all())


def delete_asset(session: Session, storage: Storage, asset_id: str) -> None:
    """Remove the rows (a running job sees them gone and stops) and everything the asset owns in storage."""
    asset = get_asset(session, asset_id)
    session.delete(asset)  # renditions, jobs and playback ids go with it (ON DELETE CASCADE)
    session.commit()
    events.emit(session.get_bind(), events.ASSET_DELETED, data={"id": asset_id, "passthrough": asset.passthrough})
    for prefix in layout.asset_prefixes(asset_id):
        storage.delete_prefix(prefix)


def touch(asset: Asset) -> None:
    asset.updated_at = utcnow()
