"""Response schemas of the management API (the shapes API.md promises)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel

from core.db.models import Asset, PlaybackId, Rendition
from core.services.assets import AssetMeta, meta_of


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


# Times are stored in UTC, but SQLite hands them back naive: without this they would be
# serialised without an offset, which is not an RFC 3339 `date-time` as the schema promises.
UtcDateTime = Annotated[datetime, AfterValidator(_aware)]


class ErrorInfo(BaseModel):
    code: str
    message: str


class ErrorBody(BaseModel):
    """The one error body of the API: `{"error": {"code", "message"}}`."""

    error: ErrorInfo


def error_responses(*statuses: int) -> dict[int | str, dict]:
    """`responses=` for routes that can answer these statuses with the error body."""
    return {status: {"model": ErrorBody} for status in statuses}


class FullQuality(BaseModel):
    """VMAF over the whole published rendition (settings `quality_report: true`)."""

    vmaf_mean: float
    vmaf_p5: float
    frames: int  # how many frames were scored


class RenditionQuality(BaseModel):
    """A rendition's measured VMAF (0-100, against the source at display size, model vmaf_v0.6.1).

    `vmaf_mean`/`vmaf_p5` (mean and 5th percentile over the frames) come from the per-title
    analysis' samples (`samples` of them); `full` is the whole rendition, once measured.
    """

    vmaf_mean: float | None = None
    vmaf_p5: float | None = None
    samples: int = 0
    full: FullQuality | None = None


class RenditionPublic(BaseModel):
    id: str
    codec: str
    width: int
    height: int
    bitrate: int
    frame_rate: float | None
    status: str
    quality: RenditionQuality | None = None  # null: not measured (fixed or explicit ladder, audio)


class PlaybackIdPublic(BaseModel):
    id: str
    policy: str


class PlaybackUrls(BaseModel):
    hls: str
    dash: str
    player: str | None = None  # the embeddable player page (/player/{playback_id})


def playback_urls(base_url: str, playback_id: str) -> PlaybackUrls:
    root = f"{base_url}/play/{playback_id}"
    return PlaybackUrls(hls=f"{root}/master.m3u8", dash=f"{root}/manifest.mpd",
                        player=f"{base_url}/player/{playback_id}")


class AssetPublic(BaseModel):
    id: str
    name: str | None = None  # given, else the uploaded file's name (or the import URL's last segment)
    meta: AssetMeta = AssetMeta()
    status: str
    playable: bool
    progress: float
    progress_detail: dict[str, Any] | None = None
    duration: float | None
    source: dict[str, Any] | None
    settings: dict[str, Any]
    renditions: list[RenditionPublic]
    playback_ids: list[PlaybackIdPublic]
    playback: PlaybackUrls | None
    error: ErrorInfo | None
    passthrough: str | None
    created_at: UtcDateTime
    updated_at: UtcDateTime


class AssetsPublic(BaseModel):
    data: list[AssetPublic]
    count: int


def asset_public(asset: Asset, renditions: list[Rendition], playback_ids: list[PlaybackId], base_url: str) -> AssetPublic:
    playback = None
    if playback_ids:
        playback = playback_urls(base_url, playback_ids[0].id)
    return AssetPublic(
        id=asset.id, name=asset.name, meta=AssetMeta(**meta_of(asset)), status=asset.status, playable=asset.playable, progress=round(asset.progress, 1),
        progress_detail=asset.progress_detail, duration=asset.duration, source=asset.source,
        settings=asset.settings,
        renditions=[RenditionPublic(id=r.name, codec=r.codec, width=r.width, height=r.height, bitrate=r.bitrate,
                                    frame_rate=r.frame_rate, status=r.status,
                                    quality=RenditionQuality(**r.quality) if r.quality else None) for r in renditions],
        playback_ids=[PlaybackIdPublic(id=p.id, policy=p.policy) for p in playback_ids],
        playback=playback,
        error=ErrorInfo(code=asset.error_code, message=asset.error_message or "") if asset.error_code else None,
        passthrough=asset.passthrough, created_at=asset.created_at, updated_at=asset.updated_at,
    )
