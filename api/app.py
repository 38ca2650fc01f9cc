"""The FastAPI application factory: builds the context and includes the routers."""

from __future__ import annotations

import logging
import time
import uuid

from fastapi import FastAPI, Request

from api.context import AppContext
from api.errors import install_error_handlers
from api.queue import TaskQueue
from api.routers import assets, health
from core.config import Settings
from core.db.engine import make_engine
from core.logging import request_id_var
from core.storage import open_storage

log = logging.getLogger("abr.access")


def create_app(settings: Settings, *, queue: TaskQueue | None = None) -> FastAPI:
    ctx = AppContext(
        settings=settings,
        engine=make_engine(settings.resolved_database_url),
        storage=open_storage(settings.resolved_storage_url, s3_endpoint_url=settings.s3_endpoint_url,
                             presign=settings.s3_presign),
        queue=queue or TaskQueue(settings.resolved_broker_url),
    )
    app = FastAPI(title="abr-origin", version="0.1.0",
                  description="Self-hostable video platform: assets, uploads, live streams and an HLS/DASH origin.")
    app.state.ctx = ctx
    install_error_handlers(app)

    @app.middleware("http")
    async def request_id(request: Request, call_next):
        rid = request.headers.get("x-request-id") or uuid.uuid4().hex[:16]
        token = request_id_var.set(rid)
        started = time.perf_counter()
        try:
            response = await call_next(request)
        finally:
            request_id_var.reset(token)
        response.headers["X-Request-Id"] = rid
        log.debug("%s %s %s", request.method, request.url.path, response.status_code,
                  extra={"method": request.method, "path": request.url.path, "status": response.status_code,
                         "duration_ms": round((time.perf_counter() - started) * 1000, 2)})
        return response

    app.include_router(health.router)
    app.include_router(assets.router)
    return app
