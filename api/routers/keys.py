"""The key endpoint of encrypted playback: `POST /play/{playback_id}/keys/clearkey` (a W3C ClearKey licence).

For an encrypted asset's playback id and an encrypted live stream's alike.

Only for `encrypted` playback ids, only with a valid playback token (the
same JWT rules as the manifests), answered `Cache-Control: private,
no-store` so neither a CDN nor the browser cache keeps it. The key is
unwrapped per request and never logged; this is the one response that
carries key material.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from api.origin import authorize, get_origin, resolve_playback
from api.schemas import error_responses
from core.errors import NotFound
from core.media.encryption import clearkey_license
from core.origin.paths import check_playback_id
from core.services.content_keys import key_master, load_content_key

router = APIRouter(tags=["playback"], responses=error_responses(400, 403, 404))
NO_STORE = {"Cache-Control": "private, no-store", "Pragma": "no-cache"}
MAX_LICENSE_REQUEST = 4096


_LICENCE_REQUEST = {"requestBody": {"required": True, "content": {"application/json": {"schema": {
    "type": "object", "properties": {"kids": {"type": "array", "items": {"type": "string"}},
                                     "type": {"type": "string"}}}}}}}


async def _authorized_key(request: Request, playback_id: str):
    """The asset's content key, once the playback id is encrypted and the token valid (403/404 otherwise)."""
    origin = get_origin(request)
    check_playback_id(playback_id)
    playback = await resolve_playback(origin, playback_id)
    if playback.policy != "encrypted":
        raise NotFound("this playback id has no keys")
    authorize(request.query_params.get("token"), playback, origin.keys)  # Forbidden without a valid token
    ctx = request.app.state.ctx
    # A live playback id's `asset_id` is its stream's id: the key made with the stream.
    return await run_in_threadpool(load_content_key, ctx.storage, key_master(ctx.settings), playback.asset_id)


@router.get("/play/{playback_id}/keys/identity", summary="Raw content key of an encrypted asset (HLS identity)",
            response_class=Response,
            responses={200: {"content": {"application/octet-stream": {}}, "description": "the 16-byte key"}})
async def identity(request: Request, playback_id: str) -> Response:
    """HLS `KEYFORMAT="identity"` (Shaka): the 16 key bytes themselves, same token rules as the licence."""
    key = await _authorized_key(request, playback_id)
    return Response(key.key, media_type="application/octet-stream", headers=NO_STORE)


@router.post("/play/{playback_id}/keys/clearkey", summary="ClearKey licence of an encrypted asset",
             openapi_extra=_LICENCE_REQUEST)
async def clearkey(request: Request, playback_id: str) -> JSONResponse:
    key = await _authorized_key(request, playback_id)
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_LICENSE_REQUEST:
            break
    return JSONResponse(clearkey_license(body[:MAX_LICENSE_REQUEST], key), headers=NO_STORE)
