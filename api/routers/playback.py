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

import time

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool

from api.errors import error_response
from api.flights import revalidate, single_flight
from api.schemas import error_responses
from core.errors import NotFound
from core.layout import media_key
from core.media.manifests import ManifestFilter
from core.origin import policy
from core.origin.answer import Answer, plan_manifest, segment_answer
from core.origin.files import LocalFile, open_local
from core.origin.paths import (
    Kind,
    Target,
    check_playback_id,
    classify,
)
from core.origin.service import OriginService, RenderedManifest
from core.services.playback import PlaybackTarget, SigningKeys, verify_token

router = APIRouter(tags=["playback"], responses=error_responses(400, 403, 404, 416))
_PATHSEND = "http.response.pathsend"  # ASGI extension: the server sends a file by path


class _PathSendResponse(Response):
    """A whole local file handed to the server with the ASGI `http.response.pathsend` extension."""

    def __init__(self, path, answer: Answer) -> None:
        super().__init__(status_code=answer.status)
        self.raw_headers = answer.raw_headers()
        self.path = str(path)

    async def __call__(self, scope, receive, send) -> None:
        await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
        await send({"type": _PATHSEND, "path": self.path})


INLINE_READ_BYTES = 64 * 1024  # smaller reads stay on the event loop


def get_origin(request: Request) -> OriginService:
    return origin_service(request.app.state.ctx)


def origin_service(ctx) -> OriginService:
    """The process's `OriginService` (its caches), made on first use."""
    origin = ctx.extra.get("origin")
    if origin is None:
        s = ctx.settings
        keys = SigningKeys.from_settings(s.signing_key, s.signing_keys_previous, s.signing_key_id)
        origin = ctx.extra["origin"] = OriginService(engine=ctx.engine, storage=ctx.storage, keys=keys,
                                                     presign=s.s3_presign,
                                                     hot_bytes=s.origin_memory_cache_mb * 1024 * 1024)
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


async def _serve(request: Request, playback_id: str, path: str) -> Response:
    origin = get_origin(request)
    check_playback_id(playback_id)
    target = classify(path)
    playback = await resolve_playback(origin, playback_id)
    token_ttl, query = authorize(request.query_params.get("token"), playback, origin.keys)
    if target.kind is Kind.SEGMENT:
        return await _segment(request, origin, playback, target, token_ttl)
    return await _manifest(request, origin, playback, target, token_ttl, query)


def playback_from_memory(origin: OriginService, playback_id: str) -> tuple[bool, PlaybackTarget | None]:
    """(known, target or None for an unknown id) without I/O; a stale entry starts a background refresh."""
    known = origin.playback_known(playback_id)
    if known is None:
        return False, None
    playback, stale = known
    if stale:
        revalidate(("playback", playback_id), origin.load_playback, playback_id)
    return True, playback


async def resolve_playback(origin: OriginService, playback_id: str) -> PlaybackTarget:
    """The playback id's target: from memory (refreshed in the background once stale) or the database.

    NotFound for an unknown id.
    """
    known, playback = playback_from_memory(origin, playback_id)
    if not known:
        return await single_flight(("playback", playback_id), origin.playback, playback_id)
    if playback is None:
        raise NotFound(f"no playback id {playback_id}")
    return playback


def manifest_from_memory(origin: OriginService, asset_id: str, target: Target, selected: ManifestFilter,
                         query: str) -> RenderedManifest | None:
    """The rendered manifest without I/O, or None; a stale presentation starts a background re-read."""
    known = origin.manifest_known(asset_id, target, selected, query)
    if known is None:
        return None
    rendered, stale = known
    if stale:
        revalidate(("presentation", asset_id), origin.presentation, asset_id)
    return rendered


def authorize(token: str | None, playback: PlaybackTarget, keys: SigningKeys) -> tuple[int | None, str]:
    """(seconds the token stays valid, query to carry into manifest URIs); public ids: (None, "").

    Forbidden when a signed id's token does not open it.
    """
    if not playback.signed:
        return None, ""
    expires = verify_token(token, playback.playback_id, keys=keys)
    return max(0, expires - int(time.time())), f"token={token}"


async def _manifest(request: Request, origin: OriginService, playback: PlaybackTarget, target: Target,
                    token_ttl: int | None, query: str) -> Response:
    selected = ManifestFilter.from_query(request.query_params) if target.kind in (Kind.MASTER, Kind.MPD) \
        else ManifestFilter()
    if playback.live:
        return await live_manifest(request, playback, target, selected, token_ttl, query)
    rendered = manifest_from_memory(origin, playback.asset_id, target, selected, query)
    if rendered is None:
        rendered = await single_flight(("manifest", playback.asset_id, target, selected, query),
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
    cache = cache_control or policy.cache_control(target.kind, complete=rendered.complete, token_ttl=token_ttl)
    answer, body = plan_manifest(rendered, cache_control=cache, method=request.method,
                                 request_headers=request.headers)
    if answer.status == 416:
        return _unsatisfiable(len(body))
    return _response(answer, body[answer.start : answer.start + answer.length])


def _response(answer: Answer, body: bytes = b"") -> Response:
    """A Starlette response with exactly the answer's headers (Content-Length and -Type included)."""
    response = Response(status_code=answer.status)
    response.body = body
    response.raw_headers = answer.raw_headers()
    return response


def _unsatisfiable(size: int) -> Response:
    return error_response(416, "range_not_satisfiable", f"the range starts past the end ({size} bytes)",
                          {"Content-Range": f"bytes */{size}", "Accept-Ranges": "bytes"})


async def _segment(request: Request, origin: OriginService, playback: PlaybackTarget, target: Target,
                   token_ttl: int | None) -> Response:
    key = media_key(playback.asset_id, target.relative or "")
    path = origin.storage.local_path(key)
    if path is None and origin.presign and request.method == "GET":
        url = origin.storage.presigned_url(key, policy.PRESIGN_EXPIRES)
        if url:
            return RedirectResponse(url, status_code=307, headers={
                "Cache-Control": policy.redirect_cache_control(token_ttl=token_ttl)})
    local: LocalFile | None = open_local(path, key) if path is not None else None
    try:
        info = local.info if local is not None else await run_in_threadpool(origin.storage.stat, key)
        answer = segment_answer(info, target, token_ttl=token_ttl, method=request.method,
                                request_headers=request.headers)
        if answer.status == 416:
            return _unsatisfiable(info.size)
        if not answer.length:
            return _response(answer)
        if local is None:
            end = answer.start + answer.length - 1
            chunks = await run_in_threadpool(origin.storage.open_range, key, answer.start, end)
            return StreamingResponse(chunks, status_code=answer.status, headers=dict(answer.headers))
        if answer.status == 200 and answer.length > INLINE_READ_BYTES \
                and _PATHSEND in request.scope.get("extensions", {}):
            # The server sends the file itself (Granian: from Rust, no copy through Python).
            # The file was opened and checked (no symlinks) by open_local just above.
            return _PathSendResponse(path, answer)
        body = local.read(answer.start, answer.length) if answer.length <= INLINE_READ_BYTES \
            else await run_in_threadpool(local.read, answer.start, answer.length)
        return _response(answer, body)
    finally:
        if local is not None:
            local.close()
