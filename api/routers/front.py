"""The nginx front's gate: which asset a playback id opens, for nginx to send its segments itself.

Only `abr api --front nginx` sets `ABR_FRONT_SECRET` for its API processes, and
nginx sends it with every gate request; without it (or with another value)
the gate is a 404 like any unknown path. The front also refuses `/_abr/`
from clients outright. nginx keeps each verdict `GATE_TTL` seconds
(`core/origin/front.py`), as the API keeps a playback id.

The verdict is always 200 (an `auth_request` treats anything else as an
error): `X-Abr-Asset` names the asset when nginx may send its segment files
from local storage, and `X-Abr-Signed` says `1` when they need a token, `0`
when not; both are empty when every request for this id must reach the API
(a live stream, objects on S3). `X-Abr-Unknown: 1`: no such playback id
(nginx then answers the API's 404 itself).
"""

from __future__ import annotations

import hmac

from fastapi import APIRouter, Request, Response

from api.errors import error_response
from api.origin import get_origin, resolve_playback
from core.errors import NotFound
from core.layout import media_prefix
from core.origin.front import GATE_PATH, GATE_TTL, SECRET_HEADER
from core.origin.paths import check_playback_id

router = APIRouter(include_in_schema=False)


@router.get(GATE_PATH + "/{playback_id}")
async def gate(request: Request, playback_id: str) -> Response:
    secret = request.app.state.ctx.settings.front_secret
    sent = request.headers.get(SECRET_HEADER, "")
    if not secret or not hmac.compare_digest(sent.encode(), secret.encode()):
        return error_response(404, "not_found", "not found")
    origin = get_origin(request)
    asset, signed, unknown = "", "", ""
    try:
        check_playback_id(playback_id)
        playback = await resolve_playback(origin, playback_id)
    except NotFound:
        playback, unknown = None, "1"
    if playback is not None and not playback.live \
            and origin.storage.local_path(media_prefix(playback.asset_id)) is not None:
        asset, signed = playback.asset_id, "1" if playback.signed else "0"
    return Response(status_code=200, headers={
        "X-Abr-Asset": asset, "X-Abr-Signed": signed, "X-Abr-Unknown": unknown,
        "Cache-Control": f"private, max-age={GATE_TTL}"})
