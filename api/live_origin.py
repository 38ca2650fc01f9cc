"""The live side of the origin's request layer: live manifests, the clock URL, live pictures.

Used by the origin's routes (a live playback id's manifests), the images
routes (`thumbnail.jpg` of a live id) and the live-stream routes (`preview.mjpeg`).
"""

from __future__ import annotations

import asyncio
import time

from fastapi import Request, Response
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from api.origin import manifest_response, public_base_url
from core.errors import NotFound
from core.live.origin import LiveManifests, live_max_age
from core.media.manifests import ManifestFilter
from core.origin import policy
from core.origin.paths import Target
from core.origin.preview import PreviewSlots, preview_deadline
from core.origin.service import RenderedManifest
from core.services.playback import PlaybackTarget

MJPEG_BOUNDARY = "abrframe"


def live_manifests(request: Request) -> LiveManifests:
    ctx = request.app.state.ctx
    found = ctx.extra.get("live_manifests")
    if found is None:
        found = ctx.extra["live_manifests"] = LiveManifests(ctx.storage)
    return found


def time_url(request: Request) -> str:
    """Where DASH clients read the origin's clock (`GET /play/time`, UTCTiming)."""
    return f"{public_base_url(request, request.app.state.ctx)}/play/time"


async def live_manifest(request: Request, playback: PlaybackTarget, target: Target, selected: ManifestFilter,
                        token_ttl: int | None, query: str) -> Response:
    """A live stream's manifest (core/live/origin.py), cached for about half a segment."""
    body, content_type, live, info = await run_in_threadpool(
        live_manifests(request).render, playback.asset_id, target.kind.value, rendition=target.rendition,
        selected=selected, query=query, time_url=time_url(request))
    rendered = RenderedManifest(body, content_type, info.mtime, live.ended)
    cache = policy.live_cache_control(live_max_age(live.segment_duration), ended=live.ended, token_ttl=token_ttl)
    return manifest_response(request, rendered, target, token_ttl, cache_control=cache)


async def live_image(request: Request, stream_id: str, path: str, cache_control: str, *,
                     preview_of: str = "", token_ttl: int | None = None) -> Response:
    """`thumbnail.jpg` (refreshed every few seconds) or `preview.mjpeg` (multipart/x-mixed-replace).

    A preview holds one of the process's preview slots for `preview_of` (the playback id) while
    it streams, and ends when its token does (core/origin/preview.py).
    """
    manifests = live_manifests(request)
    if path == "thumbnail.jpg":
        body, _ = await run_in_threadpool(manifests.thumbnail, stream_id)
        return Response(body, media_type="image/jpeg", headers={"Cache-Control": cache_control})
    if path != "preview.mjpeg":
        raise NotFound(f"nothing to serve at {path!r}")
    await run_in_threadpool(manifests.thumbnail, stream_id)  # 404 before the stream starts
    deadline = preview_deadline(time.monotonic(), token_ttl)
    slots = preview_slots(request)
    slots.acquire(preview_of)  # 429 + Retry-After when full

    async def frames():
        last = None
        while not await request.is_disconnected():
            if deadline is not None and time.monotonic() >= deadline:
                return  # the token expired: so does the preview
            try:
                body, info = await run_in_threadpool(manifests.thumbnail, stream_id)
            except NotFound:
                return
            if info.etag != last:
                last = info.etag
                yield (f"--{MJPEG_BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(body)}\r\n\r\n"
                       .encode() + body + b"\r\n")
            await asyncio.sleep(0.5 if deadline is None else max(0.0, min(0.5, deadline - time.monotonic())))

    return _HeldStreamingResponse(frames(), media_type=f"multipart/x-mixed-replace; boundary={MJPEG_BOUNDARY}",
                                  headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
                                  on_close=lambda: slots.release(preview_of))


class _HeldStreamingResponse(StreamingResponse):
    """Runs `on_close` however the stream ends: finished, failed, or cancelled by a disconnect."""

    def __init__(self, *args, on_close, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.on_close = on_close

    async def __call__(self, scope, receive, send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self.on_close()


def preview_slots(request: Request) -> PreviewSlots:
    ctx = request.app.state.ctx
    found = ctx.extra.get("preview_slots")
    if found is None:
        found = ctx.extra["preview_slots"] = PreviewSlots(ctx.settings.preview_per_playback_id,
                                                          ctx.settings.preview_per_process)
    return found
