"""Liveness and readiness: /readyz checks every dependency and says which failed.

Which dependency failed, and how (hosts, ports, paths in the error text), is
for operators: the details go to loopback clients and admin API keys; anyone
else gets the overall status and the same 200/503.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text
from sqlmodel import Session

from api.deps import ContextDep
from core.media.ffmpeg import find_ffmpeg
from core.secrets_policy import is_loopback
from core.services.keys import authenticate

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz() -> dict:
    return {"status": "ok"}


def _timed(check: Callable[[], object]) -> dict:
    started = time.perf_counter()
    try:
        detail = check()
    except Exception as exc:  # every failure is reported, none is raised
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:500],
                "ms": round((time.perf_counter() - started) * 1000, 1)}
    out = {"ok": True, "ms": round((time.perf_counter() - started) * 1000, 1)}
    if detail:
        out["detail"] = detail
    return out


def may_see_details(request: Request, ctx) -> bool:
    """A loopback client (the machine's own checks) or an admin API key; never an error."""
    if request.client is not None and is_loopback(request.client.host):
        return True
    scheme, _, presented = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not presented.strip():
        return False
    try:
        with Session(ctx.engine) as session:
            return authenticate(session, presented.strip(), static_keys=ctx.settings.static_api_keys).allows("admin")
    except Exception:  # a wrong key, or the database is what is failing: no details
        return False


@router.get("/readyz", responses={503: {"description": "a dependency is failing"}})
def readyz(request: Request, ctx: ContextDep) -> JSONResponse:
    def database() -> None:
        with ctx.engine.connect() as conn:
            conn.execute(text("SELECT 1"))

    checks = {
        "database": _timed(database),
        "broker": _timed(ctx.queue.check),
        "storage": _timed(ctx.storage.check),
        "ffmpeg": _timed(lambda: find_ffmpeg(ctx.settings.ffmpeg)),
    }
    ok = all(c["ok"] for c in checks.values())
    body: dict = {"status": "ok" if ok else "failing"}
    if may_see_details(request, ctx):
        body["checks"] = checks
    return JSONResponse(body, status_code=200 if ok else 503, headers={"Cache-Control": "no-store"})
