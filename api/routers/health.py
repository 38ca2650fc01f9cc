"""Liveness and readiness: /readyz checks every dependency and says which failed."""

from __future__ import annotations

import time
from collections.abc import Callable

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import text

from api.deps import ContextDep
from core.media.ffmpeg import find_ffmpeg

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


@router.get("/readyz", responses={503: {"description": "a dependency is failing"}})
def readyz(ctx: ContextDep) -> JSONResponse:
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
    return JSONResponse({"status": "ok" if ok else "failing", "checks": checks}, status_code=200 if ok else 503,
                        headers={"Cache-Control": "no-store"})
