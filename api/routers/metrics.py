"""`GET /metrics`: Prometheus text format (see core/metrics.py for what is measured where).

Unauthenticated like /health: expose it only on the internal network (the
compose file does not publish it through the nginx cache).
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool

from core import metrics
from core.queues import ALL_QUEUES

router = APIRouter(tags=["metrics"])


@router.get("/metrics", include_in_schema=False)
async def prometheus_metrics(request: Request) -> Response:
    ctx = request.app.state.ctx
    state = ctx.extra.get("metrics_state")
    if state is None:
        state = ctx.extra["metrics_state"] = metrics.StateCollector(ctx.settings.resolved_broker_url, ctx.engine,
                                                                    ALL_QUEUES)
    body, content_type = await run_in_threadpool(metrics.render, state)
    return Response(body, media_type=content_type, headers={"Cache-Control": "no-store"})


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
