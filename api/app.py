"""The FastAPI application factory: builds the context and includes the routers."""

from __future__ import annotations

from fastapi import FastAPI

from api.bodylimit import BodyLimitMiddleware
from api.context import AppContext
from api.errors import install_error_handlers
from api import openapi
from api.middleware import RequestIdMiddleware
from api.origin import origin_service
from api.origin_fastpath import OriginFastPath
from api.queue import TaskQueue
from api.ratelimit import RateLimiter, shared_storage_url
from api.routers import tus, uploads, webhooks
from api.routers import assets, front, health, playback, player, tokens
from api.routers import audio_tracks, captions, images, keys
from api.routers import ingest, live_streams
from api.routers import metrics
from api.routers import frame_plugins
from core.config import Settings
from core.db.engine import make_engine
from core import events
from core.services import webhooks as webhook_service
from core.origin.cors import PlaybackCORS
from core.storage import open_storage


class AbrApp(FastAPI):
    """FastAPI with the origin's fast path outside every middleware, FastAPI's own included.

    `add_middleware` puts a middleware inside the three FastAPI adds around the
    user's (ServerErrorMiddleware, which wraps `send`; exception telemetry; the
    body limit): ~6 % of a whole-segment answer's CPU on bench/origin.py's list
    (py-spy, uvicorn with sendfile) went to those layers for requests the fast
    path answers from memory, and it catches its own errors (handing the
    request on to the routes) so it does not need them.
    """

    fast_path: dict | None = None  # OriginFastPath's keyword arguments, or None for no fast path

    def build_middleware_stack(self):
        stack = super().build_middleware_stack()
        return stack if self.fast_path is None else OriginFastPath(stack, **self.fast_path)

    def respond_now(self, scope) -> tuple | None:
        """The fast path's (status, headers, body) for `scope`, or None: for a server that asks first.

        The body is bytes, or an `api.origin_fastpath.ByPath` to send from the file (whole, or
        from its `start`: the server sends ranges too).

        api/sendfile_server.py calls this before it builds an ASGI task for the request;
        what it does not answer takes the ordinary way through `__call__`.
        """
        stack = self.middleware_stack
        if stack is None:
            stack = self.middleware_stack = self.build_middleware_stack()
        if not isinstance(stack, OriginFastPath):
            return None
        scope["app"] = self  # as Starlette sets it: the fast path finds the app's OriginService there
        return stack.respond(scope, ranges=True)


def create_app(settings: Settings, *, queue: TaskQueue | None = None) -> FastAPI:
    ctx = AppContext(
        settings=settings,
        engine=make_engine(settings.resolved_database_url),
        storage=open_storage(settings.resolved_storage_url, s3_endpoint_url=settings.s3_endpoint_url,
                             presign=settings.s3_presign),
        queue=queue or TaskQueue(settings.resolved_broker_url),
        rate_limiter=RateLimiter(settings.rate_limit, settings.rate_burst,
                                 storage_url=shared_storage_url(settings.broker_url)),
    )
    # Metrics are Prometheus (core/metrics.py); FastAPI's native OpenTelemetry hooks would
    # look for global providers on every request (~5 µs of a 16 µs cached-manifest answer).
    app = AbrApp(title="abr-origin", version="0.1.0",
                  description="Self-hostable video platform: assets, uploads, live streams and an HLS/DASH origin.",
                  telemetry={"tracing": False, "metrics": False, "logs": False},
                  docs_url=None, redoc_url=None)  # FastAPI's pages load from a CDN: api/openapi.py serves pinned copies
    app.state.ctx = ctx
    openapi.install(app)  # the documented error bodies, examples and bearer scheme; offline /docs and /redoc
    events.subscribe(webhook_service.emit)  # events emitted by API requests become webhook deliveries…
    webhook_service.register_sender(ctx.engine, ctx.queue.send)  # …sent on this app's queue
    install_error_handlers(app)

    # Inside the request ids, so a 413 carries one; media routes have their own bounds (api/bodylimit.py).
    app.add_middleware(BodyLimitMiddleware, max_body=settings.max_body_bytes, max_upload=settings.max_upload_bytes)
    app.add_middleware(RequestIdMiddleware)

    app.include_router(health.router)
    app.include_router(metrics.router)  # GET /metrics (Prometheus)
    app.include_router(tokens.router)
    # Fixed /play paths of the media extras go before the origin's catch-all route.
    app.include_router(live_streams.play_router)  # /play/time, live thumbnail and preview
    app.include_router(images.router)
    app.include_router(captions.playback_router)
    app.include_router(keys.router)  # before playback: POST /play/{id}/keys/clearkey
    app.include_router(front.router)  # the nginx front's gate (a 404 without ABR_FRONT_INDEX)
    app.include_router(playback.router)
    app.add_middleware(PlaybackCORS, origins=settings.cors_origins, prefix="/play/")
    app.add_middleware(metrics.OriginMetricsMiddleware)  # outermost of the two: counts CORS answers too
    if settings.origin_fast_path:
        # Outermost (AbrApp): it adds the CORS, request-id and metrics headers/counts itself.
        app.fast_path = {"origin_for": lambda scope: origin_service(scope["app"].state.ctx),
                         "cors_origins": settings.cors_origins}
    app.include_router(assets.router)
    app.include_router(captions.router)
    app.include_router(audio_tracks.router)
    app.include_router(uploads.router)
    app.include_router(tus.router)
    app.include_router(webhooks.router)
    app.include_router(live_streams.router)
    app.include_router(frame_plugins.router)
    app.include_router(ingest.router)
    app.include_router(ingest.srt_router)
    app.include_router(player.router)  # dashboard at /, /player/{playback_id}, /static/…
    return app
