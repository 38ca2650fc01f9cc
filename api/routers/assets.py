"""`/v1/assets`: upload (multipart) or import (JSON `input_url`), read, list, delete, events."""

from __future__ import annotations

import asyncio
import json
import logging
from contextlib import asynccontextmanager
from typing import Annotated

from fastapi import APIRouter, FastAPI, Query, Request, Response
from pydantic import ValidationError
from sse_starlette import EventSourceResponse
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool

from api import asset_events as protocol
from api.deps import ContextDep, SessionDep, require
from api.schemas import AssetPublic, AssetsPublic, asset_public
from api.upload import new_tmp_dir, receive_multipart, sweep_stale_uploads
from core.db.models import Asset
from core.errors import BadRequest, Unprocessable
from core.media.probe import probe
from core.queues import TASK_TRANSCODE
from core.services import assets as service
from core.services.overlays import check_references
from core.services.url_import import ImportRequest, create_import

log = logging.getLogger(__name__)


@asynccontextmanager
async def _lifespan(app: FastAPI):
    # An API process killed mid-upload leaves a partial temp file: remove it at the next start.
    ctx = getattr(app.state, "ctx", None)
    if ctx is not None:
        await run_in_threadpool(sweep_stale_uploads, ctx.settings.data_dir)
    yield


router = APIRouter(prefix="/v1/assets", tags=["assets"], lifespan=_lifespan)

_REQUEST_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {"schema": {"type": "object", "required": ["file"], "properties": {
                "file": {"type": "string", "format": "binary"},
                "settings": {"type": "string", "description": "JSON object of asset settings"}}}},
            "application/json": {"schema": {"type": "object", "required": ["input_url"], "properties": {
                "input_url": {"type": "string", "format": "uri"},
                "codecs": {"type": "array", "items": {"type": "string", "enum": ["h264", "h265", "vp8", "av1"]}},
                "segment_duration": {"type": "number"}, "playback_policy": {"type": "string"},
                "passthrough": {"type": "string"}, "ladder": {"oneOf": [{"type": "array"}, {"type": "string", "enum": ["auto", "fixed"]}]},
                "quality_report": {"type": "boolean"},
                "name": {"type": "string", "maxLength": 255},
                "meta": {"$ref": "#/components/schemas/AssetMeta"}}}},
        },
    }
}


def base_url(request: Request, ctx) -> str:
    return (ctx.settings.public_url or str(request.base_url)).rstrip("/")


def _public(session: Session, asset: Asset, url: str) -> AssetPublic:
    return asset_public(asset, service.renditions_of(session, asset.id), service.playback_ids_of(session, asset.id), url)


def _parse_settings(raw: str | dict | None, storage=None) -> service.AssetSettings:
    try:
        data = json.loads(raw) if isinstance(raw, str) else (raw or {})
    except json.JSONDecodeError as exc:
        raise BadRequest(f"settings is not valid JSON: {exc.msg}") from exc
    if not isinstance(data, dict):
        raise BadRequest("settings must be a JSON object")
    try:
        settings = service.AssetSettings.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(p) for p in first["loc"])
        raise Unprocessable(f"settings.{loc}: {first['msg']}" if loc else first["msg"]) from exc
    if storage is not None:
        check_references(storage, settings.frame_plugins)
    return settings


@router.post("", status_code=201, response_model=AssetPublic, openapi_extra=_REQUEST_BODY,
             dependencies=[require("write")],
             responses={400: {}, 401: {}, 413: {}, 415: {"description": "not media"}, 422: {}})
async def create_asset(request: Request, ctx: ContextDep, session: SessionDep) -> AssetPublic:
    if request.headers.get("content-type", "").startswith("application/json"):
        try:
            body = await request.json()
        except ValueError as exc:
            raise BadRequest("body is not valid JSON") from exc
        if not isinstance(body, dict) or not isinstance(body.get("input_url"), str):
            raise Unprocessable("a JSON body needs 'input_url' (or upload the file as multipart 'file')")
        url = body.pop("input_url")
        settings = _parse_settings(body, ctx.storage)
        asset = await run_in_threadpool(create_import, session, ImportRequest(url=url, settings=settings))
    else:
        form = await receive_multipart(request, tmp_dir=new_tmp_dir(ctx.settings.data_dir),
                                       max_bytes=ctx.settings.max_upload_bytes)
        try:
            if form.file_path is None:
                raise Unprocessable("the multipart body has no 'file' part")
            if form.file_size == 0:
                raise Unprocessable("the uploaded file is empty")
            settings = _parse_settings(form.fields.get("settings"), ctx.storage)
            limits = service.MediaLimits.from_settings(ctx.settings)
            info = await run_in_threadpool(probe, form.file_path, limits)  # limits from headers, before decoding
            asset = await run_in_threadpool(service.create_asset, session, ctx.storage, source=form.file_path,
                                            info=info, settings=settings, limits=limits, filename=form.filename)
        finally:
            form.discard()  # no-op once storage has moved it
    try:
        ctx.queue.send(TASK_TRANSCODE, asset.id)
    except Exception:
        # The asset and its job are committed: the broker being away must not turn a stored
        # upload into a 500. The workers' reconciler sends queued jobs again (ABR_JOB_RESEND_AFTER).
        log.warning("asset %s created, but the broker is unreachable; its job will be sent again later",
                    asset.id, exc_info=True)
    log.info("asset %s created", asset.id, extra={"asset_id": asset.id})
    return _public(session, asset, base_url(request, ctx))


@router.get("", response_model=AssetsPublic, dependencies=[require("read")])
def list_assets(request: Request, ctx: ContextDep, session: SessionDep,
                limit: Annotated[int, Query(ge=1, le=100)] = 25,
                offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
                q: Annotated[str | None, Query(max_length=200, description="only assets whose name, meta.title or "
                                               "meta.external_id contains this (any case)")] = None) -> AssetsPublic:
    rows, count = service.list_assets(session, limit=limit, offset=offset, q=q)
    url = base_url(request, ctx)
    return AssetsPublic(data=[_public(session, a, url) for a in rows], count=count)


@router.get("/{asset_id}", response_model=AssetPublic, dependencies=[require("read")], responses={404: {}})
def get_asset(asset_id: str, request: Request, ctx: ContextDep, session: SessionDep) -> AssetPublic:
    return _public(session, service.get_asset(session, asset_id), base_url(request, ctx))


@router.patch("/{asset_id}", response_model=AssetPublic, dependencies=[require("write")], responses={404: {}})
def update_asset(asset_id: str, body: service.AssetUpdate, request: Request, ctx: ContextDep,
                 session: SessionDep) -> AssetPublic:
    """Change `name`, `passthrough` or `meta` (title, creator_id, external_id); fields left out stay as they are."""
    return _public(session, service.update_asset(session, asset_id, body), base_url(request, ctx))


@router.delete("/{asset_id}", status_code=204, dependencies=[require("write")], responses={404: {}})
def delete_asset(asset_id: str, ctx: ContextDep, session: SessionDep) -> Response:
    service.delete_asset(session, ctx.storage, asset_id)
    return Response(status_code=204)


@router.get("/{asset_id}/events", dependencies=[require("read")], responses={404: {}},
            response_class=EventSourceResponse)
async def asset_events(asset_id: str, request: Request, ctx: ContextDep, session: SessionDep) -> EventSourceResponse:
    """Server-sent events: `asset` with the full asset on every change, then `end` once it is ready,
    errored or deleted (api/asset_events.py). Send `Last-Event-ID` to resume after a dropped connection.

    Polls the database (the record every worker writes to), so it works with
    any number of API and worker processes and no extra pub/sub service.
    """
    await run_in_threadpool(service.get_asset, session, asset_id)  # 404 before the stream starts
    session.close()  # the stream may last minutes: hold no pooled connection meanwhile
    url = base_url(request, ctx)
    last_id = request.headers.get("last-event-id") or None

    def snapshot() -> dict | None:
        with Session(ctx.engine) as s:
            asset = s.get(Asset, asset_id)
            return None if asset is None else _public(s, asset, url).model_dump(mode="json")

    async def stream():
        # Never `request.is_disconnected()` in here. It probes with a receive() it cancels at
        # once; under Granian (2.8, ASGI spec 2.3) the response's own disconnect listener then
        # got `http.disconnect` while the client was still there (7 of 10 concurrent streams),
        # and the stream was cancelled before its final chunk: "incomplete chunked read".
        # sse-starlette is the one receiver of disconnects and ends the stream when the client goes.
        nonlocal last_id
        yield protocol.opening()
        while True:
            events, last_id, done = protocol.step(asset_id, last_id, await run_in_threadpool(snapshot))
            for event in events:
                yield event
            if done:
                return
            await asyncio.sleep(protocol.POLL_S)

    return protocol.response(stream())
