"""`/v1/live-streams` (management) and the live side of the origin (`/play/…` for live playback ids)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel
from sqlmodel import Session

from api.deps import ContextDep, SessionDep, require
from api.live_origin import live_image
from api.origin import open_playback, public_base_url
from api.schemas import (
    ErrorInfo,
    PlaybackIdPublic,
    PlaybackUrls,
    UtcDateTime,
    error_responses,
    playback_urls,
)
from core.db.models_live import LiveStream
from core.errors import NotFound, Unprocessable
from core.live.ingest import RtmpStatusProbe
from core.live.pull_guard import PullPolicy
from core.live.srt_ingest import SrtStatusProbe
from core.live.srt_ingest import ingest_url as srt_ingest_url
from core.queues import TASK_LIVE
from core.services.content_keys import ensure_content_key, key_master
from core.services.overlays import check_references
from core.services import live_streams as service

router = APIRouter(prefix="/v1/live-streams", tags=["live streams"])
play_router = APIRouter(tags=["playback"], responses=error_responses(403, 404))


class IngestStatusPublic(BaseModel):
    available: bool  # something accepts pushes where this API's live workers read them
    reason: str | None = None  # why not, and what to do (e.g. the apt line that installs what is missing)


class IngestUrls(BaseModel):
    rtmp: str | None
    srt: str | None = None  # srt://host:8890?streamid=#!::r=<key>,m=publish (core/live/srt_ingest.py)
    rtmp_status: IngestStatusPublic | None = None  # push streams: whether `rtmp` has a listener now
    srt_status: IngestStatusPublic | None = None  # push streams: whether `srt` has a listener now


def srt_status(ctx) -> IngestStatusPublic:
    probe = ctx.extra.get("srt_status")
    if probe is None:
        s = ctx.settings
        probe = ctx.extra["srt_status"] = SrtStatusProbe(
            srt_port=s.srt_port, pull_url=s.srt_pull_url or f"http://127.0.0.1:{s.srt_relay_port}")
    found = probe.status()
    return IngestStatusPublic(available=found.available, reason=found.reason)


def rtmp_status(ctx) -> IngestStatusPublic:
    probe = ctx.extra.get("rtmp_status")
    if probe is None:
        s = ctx.settings
        probe = ctx.extra["rtmp_status"] = RtmpStatusProbe(pull_url=s.rtmp_pull_url, rtmp_port=s.rtmp_port,
                                                           nginx=s.nginx, module=s.rtmp_module)
    found = probe.status()
    return IngestStatusPublic(available=found.available, reason=found.reason)


class LiveStreamPublic(BaseModel):
    id: str
    stream_key: str
    status: str
    source_url: str | None
    ingest: IngestUrls
    settings: dict[str, Any]
    plan: dict[str, Any] | None
    playback_ids: list[PlaybackIdPublic]
    playback: PlaybackUrls | None
    recording_asset_id: str | None
    reconnects: int
    error: ErrorInfo | None
    passthrough: str | None
    connected_at: UtcDateTime | None
    ended_at: UtcDateTime | None
    created_at: UtcDateTime
    updated_at: UtcDateTime


class LiveStreamsPublic(BaseModel):
    data: list[LiveStreamPublic]
    count: int


def _public(session: Session, stream: LiveStream, request: Request, ctx) -> LiveStreamPublic:
    base = public_base_url(request, ctx)
    s = ctx.settings
    host = s.rtmp_host or urlsplit(base).hostname or s.host
    pids = service.playback_ids_of(session, stream)
    playback = None
    if pids:
        playback = playback_urls(base, pids[0].id)
    return LiveStreamPublic(
        id=stream.id, stream_key=stream.stream_key, status=stream.status, source_url=stream.source_url,
        ingest=IngestUrls(rtmp=None, rtmp_status=None) if stream.source_url else IngestUrls(
            rtmp=f"rtmp://{host}:{s.rtmp_port}/live/{stream.stream_key}", rtmp_status=rtmp_status(ctx),
            srt=srt_ingest_url(host, s.srt_port, stream.stream_key) if s.srt_port else None,
            srt_status=srt_status(ctx)),
        settings=stream.settings, plan=stream.plan,
        playback_ids=[PlaybackIdPublic(id=p.id, policy=p.policy) for p in pids], playback=playback,
        recording_asset_id=stream.recording_asset_id, reconnects=stream.reconnects,
        error=ErrorInfo(code=stream.error_code, message=stream.error_message or "") if stream.error_code else None,
        passthrough=stream.passthrough, connected_at=stream.connected_at, ended_at=stream.ended_at,
        created_at=stream.created_at, updated_at=stream.updated_at,
    )


def _make_key(ctx, stream_id: str) -> None:
    """An encrypted stream's content key, made and stored wrapped (422 when no key master is configured)."""
    try:
        master = key_master(ctx.settings)
    except ValueError as exc:
        raise Unprocessable(str(exc)) from None
    ensure_content_key(ctx.storage, master, stream_id)


@router.post("", status_code=201, response_model=LiveStreamPublic, dependencies=[require("write")],
             responses={401: {}, 422: {}})
def create_live_stream(body: service.LiveStreamCreate, request: Request, ctx: ContextDep,
                       session: SessionDep) -> LiveStreamPublic:
    check_references(ctx.storage, body.frame_plugins)
    policy = PullPolicy.from_setting(ctx.settings.live_pull_allow_networks)
    stream = service.create_live_stream(session, body, default_dvr_window=ctx.settings.live_dvr_window,
                                        pull_policy=policy, make_key=lambda sid: _make_key(ctx, sid))
    if stream.source_url:
        ctx.queue.send(TASK_LIVE, stream.id)  # after commit: the worker finds the row
    return _public(session, stream, request, ctx)


@router.get("", response_model=LiveStreamsPublic, dependencies=[require("read")])
def list_live_streams(request: Request, ctx: ContextDep, session: SessionDep,
                      limit: Annotated[int, Query(ge=1, le=100)] = 25,
                      offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0) -> LiveStreamsPublic:
    rows, count = service.list_live_streams(session, limit=limit, offset=offset)
    return LiveStreamsPublic(data=[_public(session, r, request, ctx) for r in rows], count=count)


@router.get("/{stream_id}", response_model=LiveStreamPublic, dependencies=[require("read")], responses={404: {}})
def get_live_stream(stream_id: str, request: Request, ctx: ContextDep, session: SessionDep) -> LiveStreamPublic:
    return _public(session, service.get_live_stream(session, stream_id), request, ctx)


@router.post("/{stream_id}/stop", response_model=LiveStreamPublic, dependencies=[require("write")],
             responses={404: {}})
def stop_live_stream(stream_id: str, request: Request, ctx: ContextDep, session: SessionDep) -> LiveStreamPublic:
    """Ends the stream; a running one finishes its last segment, publishes ENDLIST and records (status follows)."""
    return _public(session, service.stop_live_stream(session, stream_id), request, ctx)


@router.delete("/{stream_id}", status_code=204, dependencies=[require("write")], responses={404: {}})
def delete_live_stream(stream_id: str, ctx: ContextDep, session: SessionDep) -> Response:
    service.delete_live_stream(session, ctx.storage, stream_id)
    return Response(status_code=204)


# -- the live side of the origin ------------------------------------------------------------------


@play_router.get("/play/time", response_class=PlainTextResponse, summary="The origin's clock (DASH UTCTiming, urn:mpeg:dash:utc:http-iso:2014)")
def clock() -> Response:
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    return Response(now, media_type="text/plain", headers={"Cache-Control": "no-store"})


@play_router.get("/play/{playback_id}/preview.mjpeg", responses={429: {"description": "too many previews open"}},
                 summary="Live preview as motion JPEG (camera dashboards); ends when its token expires")
async def live_preview(request: Request, playback_id: str) -> Response:
    pr = await open_playback(request, playback_id)
    if not pr.playback.live:
        raise NotFound("preview.mjpeg is for live streams")
    return await live_image(request, pr.playback.asset_id, "preview.mjpeg", "no-store", preview_of=playback_id,
                            token_ttl=pr.token_ttl)
