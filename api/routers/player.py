"""The dashboard (`/`), the embeddable player page (`/player/{playback_id}`) and their files (`/static/…`).

Pages are small HTML shells (`player/web/*.html`) whose scripts and styles
are named by content-hashed URLs; `/static/…?v=<hash>` is therefore cached
for a year, while the pages themselves are revalidated on every load. The
player page may be framed by any site (it is the embed); the dashboard by
none. Static files carry CORS so that other sites can load the pinned hls.js
with its SRI hash (the plain-JS embed).
"""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import HTMLResponse
from starlette.concurrency import run_in_threadpool

from api.errors import error_response
from api.origin import get_origin
from core.errors import NotFound
from core.origin.conditional import choose_encoding, etag_list
from core.origin.paths import check_playback_id
from player.site import Site, StaticFile
from player.vendor import VendorError

log = logging.getLogger(__name__)
router = APIRouter(tags=["player"])

IMMUTABLE = "public, max-age=31536000, immutable"
_SECURITY = {"X-Content-Type-Options": "nosniff", "Referrer-Policy": "strict-origin-when-cross-origin"}
_PLAYER_CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
               "media-src 'self' blob: data:; connect-src 'self'; worker-src 'self' blob:; "
               "frame-ancestors *; base-uri 'none'; form-action 'none'")
_DASHBOARD_CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
                  "media-src 'self' blob:; connect-src 'self'; frame-src 'self'; frame-ancestors 'none'; "
                  "base-uri 'none'; form-action 'none'")


def get_site(request: Request) -> Site:
    extra = request.app.state.ctx.extra
    if "player_site" not in extra:
        extra["player_site"] = Site()
    return extra["player_site"]


SiteDep = Annotated[Site, Depends(get_site)]


def _page(html: str, status: int = 200, *, csp: str, framable: bool) -> HTMLResponse:
    headers = {"Cache-Control": "no-cache", "Content-Security-Policy": csp, **_SECURITY}
    if not framable:
        headers["X-Frame-Options"] = "DENY"
    return HTMLResponse(html, status_code=status, headers=headers)


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
def dashboard(site: SiteDep) -> HTMLResponse:
    return _page(site.render("dashboard.html", config={"engines": site.engines()}), csp=_DASHBOARD_CSP,
                 framable=False)


@router.get("/player/{playback_id}", response_class=HTMLResponse, tags=["playback"],
            summary="Embeddable player page (for an iframe)", responses={404: {"description": "unknown playback id"}})
async def player_page(playback_id: str, request: Request, site: SiteDep) -> HTMLResponse:
    """The player for one playback id; query: `engine`, `protocol`, `t`, `token`, `autoplay`, `muted`,
    `loop`, `controls=0`, `stats=1`, and the manifest filters `codecs`, `max_height`, `min_height`,
    `max_bitrate` (passed on to the manifest)."""
    try:
        check_playback_id(playback_id)
        playback = await run_in_threadpool(get_origin(request).playback, playback_id)
    except NotFound:
        html = site.render("not-found.html", message=f"There is no video with playback id “{playback_id[:40]}”.")
        return _page(html, 404, csp=_PLAYER_CSP, framable=True)
    config = {"playbackId": playback_id, "engines": site.engines()}
    if playback.policy == "encrypted":
        config["encrypted"] = True  # DASH with the ClearKey licence (no HLS for CENC yet)
    return _page(site.render("player.html", config=config), csp=_PLAYER_CSP, framable=True)


@router.api_route("/static/{name:path}", methods=["GET", "HEAD"], include_in_schema=False)
def static_file(name: str, request: Request, site: SiteDep) -> Response:
    try:
        file = site.get(name)
    except VendorError as exc:
        log.error("%s", exc)
        return error_response(500, "player_library_mismatch", str(exc))
    if file is None:
        return error_response(404, "not_found", f"no static file {name}")
    return _static_response(request, file)


def _static_response(request: Request, file: StaticFile) -> Response:
    versioned = request.query_params.get("v") == file.version
    coding = choose_encoding(request.headers.get("accept-encoding"), ("gzip",)) if len(file.data) > 1024 else None
    body, etag = file.encoded(coding)
    headers = {"Cache-Control": IMMUTABLE if versioned else "no-cache", "ETag": etag,
               "Access-Control-Allow-Origin": "*", "Vary": "Accept-Encoding", **_SECURITY}
    if etag in etag_list(request.headers.get("if-none-match", "")):
        return Response(status_code=304, headers=headers)
    if coding:
        headers["Content-Encoding"] = coding
    if request.method == "HEAD":
        headers["Content-Length"] = str(len(body))
        body = b""
    return Response(body, headers=headers, media_type=file.content_type)
