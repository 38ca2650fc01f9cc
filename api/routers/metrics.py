"""`GET /metrics`: Prometheus text format (see core/metrics.py for what is measured where).

With `ABR_METRICS_TOKEN` set it needs `Authorization: Bearer <token>`
(Prometheus: `authorization.credentials_file`); without it, it is open like
/healthz: expose it only on the internal network (the nginx cache answers
/metrics with 404).
"""

from __future__ import annotations

import hmac

from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool

from core import metrics
from core.errors import Unauthorized
from core.queues import ALL_QUEUES

router = APIRouter(tags=["metrics"])


@router.get("/metrics", include_in_schema=False)
async def prometheus_metrics(request: Request) -> Response:
    ctx = request.app.state.ctx
    _check_token(request, ctx.settings.metrics_token)
    state = ctx.extra.get("metrics_state")
    if state is None:
        state = ctx.extra["metrics_state"] = metrics.StateCollector(ctx.settings.resolved_broker_url, ctx.engine,
                                                                    ALL_QUEUES)
    body, content_type = await run_in_threadpool(metrics.render, state)
    return Response(body, media_type=content_type, headers={"Cache-Control": "no-store"})


def _check_token(request: Request, token: str | None) -> None:
    if not token:
        return
    scheme, _, presented = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(presented.strip().encode(), token.encode()):
        raise Unauthorized("GET /metrics needs 'Authorization: Bearer <ABR_METRICS_TOKEN>'")


class OriginMetricsMiddleware:
    """Counts every /play request by class (manifest, segment, image, text) and status; pure ASGI, no buffering."""

    def __init__(self, app, prefix: str = "/play/") -> None:
        self.app, self.prefix = app, prefix

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or not scope["path"].startswith(self.prefix):
            return await self.app(scope, receive, send)
        path = scope["path"]

        async def observe(message):
            if message["type"] == "http.response.start":
                metrics.observe_origin(path, message["status"])
            await send(message)

        await self.app(scope, receive, observe)
