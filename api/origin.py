"""The origin's request layer: what every `/play/{playback_id}/…` route does before and after its own work.

Routers never import each other; the origin's routes (`api.routers.playback`),
the media extras (`images`, `captions`) and the live side (`live_streams`, via
`api.live_origin`) all use this module for:

- the process's `OriginService` (its caches), the playback-id lookup (from
  memory, refreshed in the background, or the database) and the token check;
- answers shaped by `core.origin.answer`: a manifest (or any document
  rendered per request) with gzip, ETag, 304 and ranges; a stored object
  answered like a segment (local `pread`, `pathsend`, S3 stream or presigned
  redirect).

Segments on local storage are opened (symlinks refused, `core.origin.files`)
and read with `pread` in one worker-thread hop into one body message, never
through a Python chunk loop per request. On S3 they are streamed, or — with
`ABR_S3_PRESIGN` — answered by a 307 to a presigned URL (valid 1 h) whose
redirect is cacheable for 10 min. HEAD is never redirected: a presigned GET
URL does not sign HEAD.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from fastapi import Request, Response
from fastapi.responses import RedirectResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool

from api.errors import error_response
from api.flights import look_up_playback, refresh_playback, revalidate
from api.front_gate import link
from core.errors import NotFound
from core.layout import media_key
from core.media.manifests import ManifestFilter
from core.origin import policy
from core.origin.answer import Answer, plan_manifest, segment_answer
from core.origin.front_index import FrontIndex
from core.origin.files import LocalFile, open_local
from core.origin.paths import Kind, Target, check_playback_id
from core.origin.service import TEMPLATE_QUERY, TOKEN_PLACEHOLDER, LoadedPresentation, OriginService, RenderedManifest
from core.services.playback import PlaybackTarget, SigningKeys, verify_token

PATHSEND = "http.response.pathsend"  # ASGI extension: the server sends a file by path
INLINE_READ_BYTES = 64 * 1024  # smaller reads stay on the event loop


class _PathSendResponse(Response):
    """A whole local file handed to the server with the ASGI `http.response.pathsend` extension."""

    def __init__(self, path, answer: Answer) -> None:
        super().__init__(status_code=answer.status)
        self.raw_headers = answer.raw_headers()
        self.path = str(path)

    async def __call__(self, scope, receive, send) -> None:
        await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
        await send({"type": PATHSEND, "path": self.path})


# -- the playback id and its token ---------------------------------------------------------------


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
        media = ctx.storage.local_path("media") if s.front_index else None
        if media is not None:  # behind `abr api --front nginx` (local storage only)
            origin.front_index = FrontIndex(Path(s.front_index), media)
    return origin


def admit(origin: OriginService, playback: PlaybackTarget) -> PlaybackTarget:
    """Behind the nginx front, link a VOD id for nginx to send its segments (core/origin/front_index.py)."""
    if origin.front_index is not None:
        link(origin, playback)
    return playback


def playback_from_memory(origin: OriginService, playback_id: str) -> tuple[bool, PlaybackTarget | None]:
    """(known, target or None for an unknown id) from memory; a stale entry is looked up again now where
    that is cheap (an SQLite file, on the event loop), else refreshed in the background."""
    known = origin.playback_known(playback_id)
    if known is None:
        return False, None
    playback, stale = known
    if stale:
        refreshed, fresh = refresh_playback(origin, playback_id)
        if not refreshed:
            return True, playback  # not linked for nginx from a stale entry: a revoked id must stop within ~2 windows
        playback = fresh
    return True, playback if playback is None else admit(origin, playback)


async def resolve_playback(origin: OriginService, playback_id: str) -> PlaybackTarget:
    """The playback id's target: from memory (refreshed once stale) or the database.

    NotFound for an unknown id.
    """
    known, playback = playback_from_memory(origin, playback_id)
    if not known:
        playback = await look_up_playback(origin, playback_id, ("playback", playback_id))
        if playback is not None:
            admit(origin, playback)
    if playback is None:
        raise NotFound(f"no playback id {playback_id}")
    return playback


def authorize(token: str | None, playback: PlaybackTarget, keys: SigningKeys) -> tuple[int | None, str]:
    """(seconds the token stays valid, query to carry into manifest URIs); public ids: (None, "").

    Forbidden when a signed id's token does not open it.
    """
    if not playback.signed:
        return None, ""
    expires = verify_token(token, playback.playback_id, keys=keys)
    return max(0, expires - int(time.time())), f"token={token}"


@dataclass
class PlaybackRequest:
    """A `/play/{playback_id}/…` request after the origin's lookup and token check."""

    origin: OriginService
    playback: PlaybackTarget
    token_ttl: int | None  # None: public
    query: str  # carried into URLs we write (`token=…`), "" for public ids


async def open_playback(request: Request, playback_id: str) -> PlaybackRequest:
    origin = get_origin(request)
    check_playback_id(playback_id)
    playback = await resolve_playback(origin, playback_id)
    token_ttl, query = authorize(request.query_params.get("token"), playback, origin.keys)
    return PlaybackRequest(origin, playback, token_ttl, query)


async def load_presentation(pr: PlaybackRequest) -> LoadedPresentation:
    return await run_in_threadpool(pr.origin.presentation, pr.playback.asset_id)


def manifest_from_memory(origin: OriginService, asset_id: str, target: Target, selected: ManifestFilter,
                         query: str, playback_root: str = "", *, render: bool = False) -> RenderedManifest | None:
    """The rendered manifest without I/O, or None; a stale presentation starts a background re-read.

    `render`: render it from the presentation in memory if it is not cached (`OriginService.manifest_known`).
    """
    known = origin.manifest_known(asset_id, target, selected, query, playback_root, render=render)
    if known is None:
        return None
    rendered, stale = known
    if stale:
        revalidate(("presentation", asset_id), origin.presentation, asset_id)
    return rendered


# -- answers -------------------------------------------------------------------------------------


def manifest_response(request: Request, rendered: RenderedManifest, target: Target,
                      token_ttl: int | None, *, cache_control: str | None = None, template: bool = False) -> Response:
    cache = cache_control or policy.cache_control(target.kind, complete=rendered.complete, token_ttl=token_ttl)
    answer, body = plan_manifest(rendered, cache_control=cache, method=request.method,
                                 request_headers=request.headers)
    if answer.status == 416:
        return unsatisfiable(len(body))
    response = answer_response(answer, body[answer.start : answer.start + answer.length])
    for name, value in front_expires(get_origin(request), rendered, token_ttl, template):
        response.headers[name.decode()] = value.decode()
    return response


FRONT_MANIFEST_SECONDS = 5  # as long as nginx keeps an id's link (core/origin/front_index.py)
# The nginx front asks a signed id's manifest with this header when it keeps one copy for every
# token (core/origin/front.py, @manifest_signed): rendered with a placeholder for the token, which
# nginx replaces with each request's own (whose token AbrFront.pm has checked, as the API did here).
TOKEN_TEMPLATE_HEADER = "x-abr-token-template"


def front_template(origin: OriginService, query: str, asked: bool) -> str | None:
    """The query to render a signed manifest with for the front's copy: the placeholder's, or None.

    Only behind the front, only when it asks, and only for a query carrying a token this
    request has just been authorized with (a public id carries none).
    """
    return TEMPLATE_QUERY if asked and query and origin.front_index is not None else None


def front_expires(origin: OriginService, rendered: RenderedManifest, token_ttl: int | None,
                  template: bool = False) -> list[tuple[bytes, bytes]]:
    """Behind the nginx front: how long it may keep this manifest (headers nginx never sends on).

    `X-Accel-Expires`: a complete one `FRONT_MANIFEST_SECONDS` (its content is final; a text track
    added through the API shows within that time, as a revoked id stops opening files), one still
    publishing a second. A signed one's Cache-Control counts down its token, so nginx writes it
    per request (AbrFront.pm `manifest_cache_control`) from `X-Abr-Max-Age`, the policy's max-age
    before the token's cap. `template`: the manifest was rendered with the token's placeholder
    (`front_template`), which `X-Abr-Token-Placeholder` names for nginx's `sub_filter`.
    """
    if origin.front_index is None:
        return []
    headers = [(b"x-accel-expires", b"%d" % (FRONT_MANIFEST_SECONDS if rendered.complete else 1))]
    if token_ttl is not None:
        headers.append((b"x-abr-max-age", b"%d" % policy.manifest_max_age(complete=rendered.complete)))
    if template:
        headers.append((b"x-abr-token-placeholder", TOKEN_PLACEHOLDER.encode()))
    return headers


def answer_response(answer: Answer, body: bytes = b"") -> Response:
    """A Starlette response with exactly the answer's headers (Content-Length and -Type included)."""
    response = Response(status_code=answer.status)
    response.body = body
    response.raw_headers = answer.raw_headers()
    return response


def unsatisfiable(size: int) -> Response:
    return error_response(416, "range_not_satisfiable", f"the range starts past the end ({size} bytes)",
                          {"Content-Range": f"bytes */{size}", "Accept-Ranges": "bytes"})


async def segment_response(request: Request, origin: OriginService, playback: PlaybackTarget, target: Target,
                           token_ttl: int | None) -> Response:
    key = media_key(playback.asset_id, target.relative or "")
    path = origin.storage.local_path(key)
    if path is None and origin.presign and request.method == "GET":
        url = origin.storage.presigned_url(key, policy.presign_expires(token_ttl))
        if url:
            return RedirectResponse(url, status_code=307, headers={
                "Cache-Control": policy.redirect_cache_control(token_ttl=token_ttl)})
    local: LocalFile | None = open_local(path, key) if path is not None else None
    try:
        info = local.info if local is not None else await run_in_threadpool(origin.storage.stat, key)
        answer = segment_answer(info, target, token_ttl=token_ttl, method=request.method,
                                request_headers=request.headers)
        if answer.status == 416:
            return unsatisfiable(info.size)
        if not answer.length:
            return answer_response(answer)
        if local is None:
            end = answer.start + answer.length - 1
            chunks = await run_in_threadpool(origin.storage.open_range, key, answer.start, end)
            return StreamingResponse(chunks, status_code=answer.status, headers=dict(answer.headers))
        if answer.status == 200 and answer.length > INLINE_READ_BYTES \
                and PATHSEND in request.scope.get("extensions", {}):
            # The server sends the file itself (Granian: from Rust, no copy through Python).
            # The file was opened and checked (no symlinks) by open_local just above.
            return _PathSendResponse(path, answer)
        body = local.read(answer.start, answer.length) if answer.length <= INLINE_READ_BYTES \
            else await run_in_threadpool(local.read, answer.start, answer.length)
        return answer_response(answer, body)
    finally:
        if local is not None:
            local.close()


async def serve_stored(request: Request, pr: PlaybackRequest, relative: str, media_type: str, *,
                       final: bool = True, headers: dict[str, str] | None = None) -> Response:
    """Answer with the stored object `media/{asset}/{relative}` (`dir/file`) the way the origin answers segments.

    `final`: its bytes will never change under this URL (else cached like a publishing manifest).
    """
    directory, _, name = relative.partition("/")
    target = Target(Kind.SEGMENT, rendition=directory, file=name)
    response = await segment_response(request, pr.origin, pr.playback, target, pr.token_ttl)
    if response.status_code in (200, 206, 304):
        if response.status_code != 304:
            response.headers["content-type"] = media_type
        if not final:
            response.headers["cache-control"] = policy.cache_control(Kind.MASTER, complete=False,
                                                                     token_ttl=pr.token_ttl)
        response.headers.update(headers or {})
    return response


def serve_text(request: Request, pr: PlaybackRequest, body: str, content_type: str, loaded: LoadedPresentation,
               *, final: bool) -> Response:
    """A document rendered per request (it may carry the token): cached like a manifest, gzip, ETag, 304."""
    rendered = RenderedManifest(body.encode(), content_type, loaded.info.mtime, final)
    return manifest_response(request, rendered, Target(Kind.MPD), pr.token_ttl)


def playback_root(request: Request, playback_id: str) -> str:
    """The public URL of `/play/{playback_id}`: an encrypted MPD's licence URL is written under it.

    From ABR_PUBLIC_URL, else the request's own scheme and Host. A cache in front keys the MPD by
    URL: the nginx config's `$scheme$host$request_uri` holds the host, so each host gets its own;
    a CDN that rewrites Host needs ABR_PUBLIC_URL.
    """
    return f"{public_base_url(request, request.app.state.ctx)}/play/{playback_id}"


def public_base_url(request: Request, ctx) -> str:
    """The URL clients reach this API at: ABR_PUBLIC_URL, else the request's own base."""
    return (ctx.settings.public_url or str(request.base_url)).rstrip("/")
