"""The origin: `/play/{playback_id}/…` manifests and segments, CDN-cacheable.

Every request is classified (`core.origin.paths`), its playback id resolved
and, for signed ids, its token checked; then manifests are rendered from
`presentation.json` (cached, see `core.origin.service`) and segments are
streamed from storage. Cache headers per class: `core.origin.policy`.

Segments on local storage are opened (symlinks refused, `core.origin.files`)
and read with `pread` in one worker-thread hop into one body message, never
through a Python chunk loop per request. On S3
they are streamed, or — with `ABR_S3_PRESIGN` — answered by a 307 to a
presigned URL (valid 1 h) whose redirect is cacheable for 10 min. HEAD is
never redirected: a presigned GET URL does not sign HEAD.
"""

from __future__ import annotations

import asyncio
import time

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool

from api.errors import error_response
from api.schemas import error_responses
from core.layout import media_key
from core.media.manifests import ManifestFilter
from core.origin import policy
from core.origin.conditional import (
    Plan,
    choose_encoding,
    http_date,
    plan_response,
    strong_etag,
)
from core.origin.files import LocalFile, open_local
from core.origin.paths import (
    Kind,
    Target,
    check_playback_id,
    classify,
    segment_content_type,
)
from core.origin.service import OriginService, RenderedManifest
from core.services.playback import PlaybackTarget, SigningKeys, verify_token

router = APIRouter(tags=["playback"], responses=error_responses(400, 403, 404, 416))
_PATHSEND = "http.response.pathsend"  # ASGI extension: the server sends a file by path


class _PathSendResponse(Response):
    """A whole local file handed to the server with the ASGI `http.response.pathsend` extension."""

    def __init__(self, path, **kwargs) -> None:
        super().__init__(b"", **kwargs)
        self.path = str(path)

    async def __call__(self, scope, receive, send) -> None:
        await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
        await send({"type": _PATHSEND, "path": self.path})
INLINE_READ_BYTES = 64 * 1024  # smaller reads stay on the event loop


def get_origin(request: Request) -> OriginService:
    ctx = request.app.state.ctx
    origin = ctx.extra.get("origin")
    if origin is None:
        s = ctx.settings
        keys = SigningKeys.from_settings(s.signing_key, s.signing_keys_previous, s.signing_key_id)
        origin = ctx.extra["origin"] = OriginService(engine=ctx.engine, storage=ctx.storage, keys=keys,
                                                     presign=s.s3_presign)
    return origin


@router.head("/play/{playback_id}/master.m3u8", include_in_schema=False)
@router.get("/play/{playback_id}/master.m3u8", summary="HLS multivariant playlist")
async def master_playlist(request: Request, playback_id: str) -> Response:
    return await _serve(request, playback_id, "master.m3u8")


@router.head("/play/{playback_id}/manifest.mpd", include_in_schema=False)
@router.get("/play/{playback_id}/manifest.mpd", summary="MPEG-DASH MPD")
async def dash_manifest(request: Request, playback_id: str) -> Response:
    return await _serve(request, playback_id, "manifest.mpd")


@router.head("/play/{playback_id}/{path:path}", include_in_schema=False)
@router.get("/play/{playback_id}/{path:path}",
                  summary="Media playlists and segments referenced by the manifests")
async def playback_file(request: Request, playback_id: str, path: str) -> Response:
    return await _serve(request, playback_id, path)


_inflight: dict[tuple, asyncio.Future] = {}


async def _single_flight(key: tuple, fn, *args):
    """Run `fn(*args)` in the thread pool once for every concurrent caller with the same key.

    When a cached playback id or presentation expires, every request in flight
    misses at once; without this, 200 concurrent players meant 200 identical
    database queries queued on a 40-thread pool (a p99 of ~440 ms measured by
    bench/origin.py) instead of one.
    """
    waiting = _inflight.get(key)
    if waiting is not None:
        return await asyncio.shield(waiting)
    future = asyncio.get_running_loop().create_future()
    _inflight[key] = future
    try:
        result = await run_in_threadpool(fn, *args)
    except BaseException as exc:
        future.set_exception(exc)
        future.exception()  # retrieved here, so a future nobody awaited does not warn
        raise
    else:
        future.set_result(result)
        return result
    finally:
        del _inflight[key]


async def _serve(request: Request, playback_id: str, path: str) -> Response:
    origin = get_origin(request)
    check_playback_id(playback_id)
    target = classify(path)
    hit, playback = origin.playback_cached(playback_id)
    if not hit or playback is None:
        playback = await _single_flight(("playback", playback_id), origin.playback, playback_id)
    token_ttl, query = _authorize(request, playback, origin.keys)
    if target.kind is Kind.SEGMENT:
        return await _segment(request, origin, playback, target, token_ttl)
    return await _manifest(request, origin, playback, target, token_ttl, query)


def _authorize(request: Request, playback: PlaybackTarget, keys: SigningKeys) -> tuple[int | None, str]:
    """(seconds the token stays valid, query to carry into manifest URIs); public ids: (None, "")."""
    if not playback.signed:
        return None, ""
    token = request.query_params.get("token")
    expires = verify_token(token, playback.playback_id, keys=keys)
    return max(0, expires - int(time.time())), f"token={token}"


async def _manifest(request: Request, origin: OriginService, playback: PlaybackTarget, target: Target,
                    token_ttl: int | None, query: str) -> Response:
    selected = ManifestFilter.from_query(request.query_params) if target.kind in (Kind.MASTER, Kind.MPD) \
        else ManifestFilter()
    if playback.live:
        return await live_manifest(request, playback, target, selected, token_ttl, query)
    rendered = origin.manifest_cached(playback.asset_id, target, selected, query)
    if rendered is None:
        rendered = await _single_flight(("manifest", playback.asset_id, target, selected, query),
                                        origin.manifest, playback.asset_id, target, selected, query)
    return _manifest_response(request, rendered, target, token_ttl)


async def live_manifest(request: Request, playback: PlaybackTarget, target: Target, selected: ManifestFilter,
                        token_ttl: int | None, query: str) -> Response:
    """A live stream's manifest (core/live/origin.py), cached for about half a segment."""
    from api.routers.live_streams import live_manifests, time_url
    from core.live.origin import live_max_age

    body, content_type, live, info = await run_in_threadpool(
        live_manifests(request).render, playback.asset_id, target.kind.value, rendition=target.rendition,
        selected=selected, query=query, time_url=time_url(request))
    rendered = RenderedManifest(body, content_type, info.mtime, live.ended)
    cache = policy.live_cache_control(live_max_age(live.segment_duration), ended=live.ended, token_ttl=token_ttl)
    return _manifest_response(request, rendered, target, token_ttl, cache_control=cache)


def _manifest_response(request: Request, rendered: RenderedManifest, target: Target,
                       token_ttl: int | None, *, cache_control: str | None = None) -> Response:
    coding = choose_encoding(request.headers.get("accept-encoding"))
    body, etag, coding = rendered.encoded(coding)
    headers = {
        "Cache-Control": cache_control or policy.cache_control(target.kind, complete=rendered.complete,
                                                               token_ttl=token_ttl),
        "ETag": etag,
        "Last-Modified": http_date(rendered.last_modified),
        "Vary": "Accept-Encoding",
        "Accept-Ranges": "bytes",
    }
    if coding:
        headers["Content-Encoding"] = coding
    plan = plan_response(request.headers, size=len(body), etag=etag, last_modified=rendered.last_modified)
    if plan.status in (304, 416):
        return _no_body(plan, headers, len(body))
    if plan.range is not None:
        headers["Content-Range"] = plan.range.content_range(len(body))
        body = body[plan.range.start : plan.range.end + 1]
    if request.method == "HEAD":
        headers["Content-Length"] = str(len(body))
        body = b""
    return Response(body, status_code=plan.status, headers=headers, media_type=rendered.content_type)


def _no_body(plan: Plan, headers: dict[str, str], size: int) -> Response:
    if plan.status == 416:
        return error_response(416, "range_not_satisfiable", f"the range starts past the end ({size} bytes)",
                              {"Content-Range": f"bytes */{size}", "Accept-Ranges": "bytes"})
    return Response(status_code=304, headers=headers)


async def _segment(request: Request, origin: OriginService, playback: PlaybackTarget, target: Target,
                   token_ttl: int | None) -> Response:
    key = media_key(playback.asset_id, target.relative or "")
    cache_control = policy.cache_control(Kind.SEGMENT, complete=True, token_ttl=token_ttl)
    path = origin.storage.local_path(key)
    if path is None and origin.presign and request.method == "GET":
        url = origin.storage.presigned_url(key, policy.PRESIGN_EXPIRES)
        if url:
            return RedirectResponse(url, status_code=307, headers={
                "Cache-Control": policy.redirect_cache_control(token_ttl=token_ttl)})
    local: LocalFile | None = None
    if path is not None:
        local = open_local(path, key)
        info = local.info
    else:
        info = await run_in_threadpool(origin.storage.stat, key)
    etag = strong_etag(info.etag)
    headers = {"Cache-Control": cache_control, "ETag": etag, "Last-Modified": http_date(info.mtime),
               "Accept-Ranges": "bytes"}
    plan = plan_response(request.headers, size=info.size, etag=etag, last_modified=info.mtime)
    start, length = 0, info.size
    if plan.range is not None:
        start, length = plan.range.start, plan.range.length
        headers["Content-Range"] = plan.range.content_range(info.size)
    media_type = segment_content_type(target)
    if plan.status in (304, 416) or request.method == "HEAD":
        if local is not None:
            local.close()
        if plan.status in (304, 416):
            return _no_body(plan, headers, info.size)
        headers["Content-Length"] = str(length)
        return Response(b"", status_code=plan.status, headers=headers, media_type=media_type)
    if local is not None:
        if plan.range is None and length > INLINE_READ_BYTES and _PATHSEND in request.scope.get("extensions", {}):
            # The server sends the file itself (Granian: from Rust, no copy through Python).
            # The file was opened and checked (no symlinks) by open_local just above.
            local.close()
            headers["Content-Length"] = str(length)
            return _PathSendResponse(path, status_code=plan.status, headers=headers, media_type=media_type)
        try:
            body = local.read(start, length) if length <= INLINE_READ_BYTES \
                else await run_in_threadpool(local.read, start, length)
        finally:
            local.close()
        return Response(body, status_code=plan.status, headers=headers, media_type=media_type)
    end = start + length - 1 if length else None
    chunks = await run_in_threadpool(origin.storage.open_range, key, start, end)
    headers["Content-Length"] = str(length)
    return StreamingResponse(chunks, status_code=plan.status, headers=headers, media_type=media_type)
