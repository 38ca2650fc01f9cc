"""The nginx front's gate as a route where the origin's fast path is off, and its start-up (api/front_gate.py)."""

from __future__ import annotations

from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI, Request, Response

from api import front_gate
from api.errors import error_response
from api.origin import get_origin, origin_service
from core.origin.front_index import ADMIT_PATH


@asynccontextmanager
async def _lifespan(app: FastAPI):
    # Behind the front, the newest ids are linked before the first request (api/front_gate.py prewarm).
    ctx = getattr(app.state, "ctx", None)
    if ctx is not None and ctx.settings.front_index:
        await front_gate.prewarm(origin_service(ctx), ctx.settings.front_prewarm)
    yield


router = APIRouter(include_in_schema=False, lifespan=_lifespan)


@router.head(ADMIT_PATH + "/{rest:path}")
@router.get(ADMIT_PATH + "/{rest:path}")
async def admit(request: Request, rest: str) -> Response:
    origin = get_origin(request)
    if origin.front_index is None:
        return error_response(404, "not_found", "not found")
    target = await front_gate.answer(origin, front_gate.PREFIX + rest, request.url.query)
    # Nothing but the redirect: nginx keeps some of the gate's headers (Cache-Control, Set-Cookie,
    # Last-Modified…) on the answer it then gives, which must be the segment's alone.
    return Response(headers={"X-Accel-Redirect": target})
