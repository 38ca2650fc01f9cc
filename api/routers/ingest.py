"""Ingest callbacks: `on_publish` lets a publisher in (2xx) or refuses it (4xx) before media flows;
`on_update`, every few seconds while it publishes, disconnects it (4xx) once its stream is stopped.

Two callers: nginx-rtmp (`/v1/ingest/rtmp/…`) and the SRT listener
(`/v1/ingest/srt/…`, core/live/srt_ingest.py), which calls `publish` from
its handshake callback and gets the stream's SRT passphrase back.

Called by our own nginx only: the callback URL carries the ingest secret
(core/live/ingest.py); no API key. nginx posts form fields `call`, `app`,
`name` (the stream key) and `addr`.
"""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool

from api.deps import ContextDep, SessionDep
from core.errors import Forbidden
from core.live.ingest import check_ingest_secret, ingest_secret
from core.live.srt_ingest import INGEST_SECRET_HEADER
from core.queues import TASK_LIVE
from core.services import live_streams as service

log = logging.getLogger(__name__)
router = APIRouter(prefix="/v1/ingest/rtmp", tags=["ingest"], include_in_schema=False)
srt_router = APIRouter(prefix="/v1/ingest/srt", tags=["ingest"], include_in_schema=False)


async def _form(request: Request, ctx) -> dict[str, str]:
    s = ctx.settings
    # nginx can only put the secret in the callback URL; the SRT listener sends it as a header.
    given = request.headers.get(INGEST_SECRET_HEADER) or request.query_params.get("secret")
    if not check_ingest_secret(given, ingest_secret(s.signing_key, s.ingest_secret)):
        raise Forbidden("bad ingest secret")
    form = await request.form()
    return {k: str(v) for k, v in form.items()}


@router.post("/publish")
async def on_publish(request: Request, ctx: ContextDep, session: SessionDep) -> Response:
    form = await _form(request, ctx)
    stream, enqueue = await run_in_threadpool(service.on_publish, session, app=form.get("app", ""),
                                              stream_key=form.get("name", ""), addr=form.get("addr", ""))
    if enqueue:
        ctx.queue.send(TASK_LIVE, stream.id)
    return Response(status_code=204)


@router.post("/publish-done")
async def on_publish_done(request: Request, ctx: ContextDep, session: SessionDep) -> Response:
    form = await _form(request, ctx)
    await run_in_threadpool(service.on_publish_done, session, stream_key=form.get("name", ""),
                            addr=form.get("addr", ""))
    return Response(status_code=204)


@router.post("/update")
async def on_update(request: Request, ctx: ContextDep, session: SessionDep) -> Response:
    form = await _form(request, ctx)
    if form.get("call") != "update_publish":
        return Response(status_code=204)  # players (the live workers' pulls) end with the stream anyway
    if not await run_in_threadpool(service.publisher_may_continue, session, stream_key=form.get("name", "")):
        log.info("rtmp publisher from %s disconnected: its stream was stopped or deleted", form.get("addr", ""))
        raise Forbidden("this live stream was stopped")
    return Response(status_code=204)


@srt_router.post("/check")
async def on_srt_check(request: Request, ctx: ContextDep, session: SessionDep) -> dict:
    """The SRT listener's handshake check (changes nothing): 200 with the passphrase the caller must use
    (null: none), or 4xx. `publish` follows once the connection (and its encryption) is established."""
    form = await _form(request, ctx)
    stream = await run_in_threadpool(service.check_publish, session, app="live", stream_key=form.get("name", ""))
    return {"passphrase": stream.settings.get("srt_passphrase")}


@srt_router.post("/publish")
async def on_srt_publish(request: Request, ctx: ContextDep, session: SessionDep) -> dict:
    """The SRT publisher is connected: like nginx's on_publish (a worker is enqueued when none runs), or 4xx."""
    form = await _form(request, ctx)
    stream, enqueue = await run_in_threadpool(service.on_publish, session, app="live",
                                              stream_key=form.get("name", ""), addr=form.get("addr", ""),
                                              protocol="srt")
    if enqueue:
        ctx.queue.send(TASK_LIVE, stream.id)
    return {"passphrase": stream.settings.get("srt_passphrase")}


@srt_router.post("/publish-done")
async def on_srt_publish_done(request: Request, ctx: ContextDep, session: SessionDep) -> Response:
    return await on_publish_done(request, ctx, session)


@srt_router.post("/update")
async def on_srt_update(request: Request, ctx: ContextDep, session: SessionDep) -> Response:
    form = await _form(request, ctx)
    if not await run_in_threadpool(service.publisher_may_continue, session, stream_key=form.get("name", "")):
        raise Forbidden("this live stream was stopped")
    return Response(status_code=204)
