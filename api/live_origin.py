"""The live side of the origin's request layer: live manifests, the clock URL, live pictures.

Used by the origin's routes (a live playback id's manifests), the images
routes (`thumbnail.jpg` of a live id) and the live-stream routes (`preview.mjpeg`).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import time

from fastapi import Request, Response
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from api.errors import error_response
from api.origin import manifest_response, playback_root, public_base_url, segment_response
from core.errors import BadRequest, NotFound
from core.layout import media_key
from core.live.origin import LiveManifests, Progress, blocking_state, live_max_age, part_progress, segment_progress
from core.media.live_model import part_uri
from core.media.manifests import ManifestFilter
from core.origin import policy
from core.origin.paths import Target, segment_content_type
from core.origin.preview import PreviewSlots, preview_deadline
from core.origin.service import OriginService, RenderedManifest
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


BLOCK_TARGET_DURATIONS = 3  # a blocking reload is answered after this many target durations at the latest
WATCH_INTERVAL = 0.02  # s between stats of live.json (each a storage request) while requests wait on a stream
# Local storage: an os.stat of live.json on the event loop itself (a few µs, no thread hop) this often;
# the file is read and parsed, on the loop too, only when its (mtime, size, inode) changed: 0.25 ms for
# 120 segments of two renditions (a thread-pool hop costs more than that on a loaded machine). The
# publisher replaces live.json atomically, so every publish is a new inode.
WATCH_INTERVAL_LOCAL = 0.004


class LiveWatch:
    """Blocking playlist reloads of one process: one watcher task per stream, however many requests wait.

    A blocked request is a coroutine awaiting the stream's `changed` event, not
    a thread: while anyone waits, the watcher looks at `live.json` (one look
    per stream) and, when it changed, reloads it and wakes every waiter; each
    checks its own `_HLS_msn`/`_HLS_part`. On local storage the look is a
    stat on the event loop every WATCH_INTERVAL_LOCAL and the reload too (the
    answer follows the publish by a few ms); elsewhere (S3) both are storage
    requests in the thread pool, the look every WATCH_INTERVAL.
    """

    def __init__(self, manifests: LiveManifests) -> None:
        self.manifests = manifests
        self._events: dict[str, asyncio.Event] = {}
        self._waiters: dict[str, int] = {}

    def watching(self, stream_id: str) -> bool:
        return stream_id in self._events

    async def wait(self, stream_id: str, ready, timeout: float) -> None:
        """Until `ready(live)` is true or `timeout` seconds passed."""
        deadline = time.monotonic() + timeout
        self._waiters[stream_id] = self._waiters.get(stream_id, 0) + 1
        if stream_id not in self._events:
            self._events[stream_id] = asyncio.Event()
            asyncio.get_running_loop().create_task(self._watch(stream_id))
        try:
            while True:
                event = self._events[stream_id]
                live, _ = self.manifests.load_cached(stream_id)
                if live is not None and ready(live):
                    return
                left = deadline - time.monotonic()
                if left <= 0:
                    return
                try:
                    await asyncio.wait_for(event.wait(), left)
                except TimeoutError:
                    return
        finally:
            self._waiters[stream_id] -= 1

    async def _watch(self, stream_id: str) -> None:
        etag = None
        path = self.manifests.local_path(stream_id)
        seen = None  # local storage: live.json's (mtime_ns, size, inode) when last loaded
        try:
            while self._waiters.get(stream_id, 0) > 0:
                if path is not None:
                    now = _file_signature(path)
                    if now is None or now == seen:
                        await asyncio.sleep(WATCH_INTERVAL_LOCAL)
                        continue
                    seen = now
                try:
                    if path is not None:  # a local file that changed: read and parsed here (< 1 ms), no thread hop
                        _, info = self.manifests.load(stream_id, fresh=True)
                    else:
                        _, info = await run_in_threadpool(lambda: self.manifests.load(stream_id, fresh=True))
                except NotFound:
                    info = None
                if info is not None and info.etag != etag:
                    etag = info.etag
                    event, self._events[stream_id] = self._events[stream_id], asyncio.Event()
                    event.set()
                await asyncio.sleep(WATCH_INTERVAL_LOCAL if path is not None else WATCH_INTERVAL)
        finally:
            self._events.pop(stream_id, None)
            self._waiters.pop(stream_id, None)


def _file_signature(path) -> tuple[int, int, int] | None:
    try:
        st = os.stat(path)
    except OSError:  # not published yet
        return None
    return st.st_mtime_ns, st.st_size, st.st_ino


def live_watch(request: Request) -> LiveWatch:
    ctx = request.app.state.ctx
    found = ctx.extra.get("live_watch")
    if found is None:
        found = ctx.extra["live_watch"] = LiveWatch(live_manifests(request))
    return found


def _hls_params(request: Request) -> tuple[int | None, int | None, bool]:
    """(_HLS_msn, _HLS_part, _HLS_skip=YES) of an LL-HLS request; 400 for malformed ones (RFC 8216bis §6.2.5.2)."""
    params = request.query_params

    def number(name: str) -> int | None:
        raw = params.get(name)
        if raw is None:
            return None
        if not raw.isdigit() or len(raw) > 12:
            raise BadRequest(f"{name} must be a non-negative integer")
        return int(raw)

    msn, part = number("_HLS_msn"), number("_HLS_part")
    if part is not None and msn is None:
        raise BadRequest("_HLS_part without _HLS_msn")
    skip = params.get("_HLS_skip")
    if skip not in (None, "YES", "v2"):
        raise BadRequest("_HLS_skip must be YES or v2")
    return msn, part, skip is not None


async def live_manifest(request: Request, playback: PlaybackTarget, target: Target, selected: ManifestFilter,
                        token_ttl: int | None, query: str) -> Response:
    """A live stream's manifest (core/live/origin.py), cached for about half a segment.

    LL-HLS media playlists: `_HLS_msn`/`_HLS_part` hold the request until that
    part is published (or BLOCK_TARGET_DURATIONS passed); `_HLS_skip` asks for
    a delta update. A blocking answer is cacheable by its full URL: once the
    part exists the URL's answer only ever lists it.
    """
    msn = part = None
    skip = False
    if target.rendition is not None and target.kind.value == "media_playlist":
        msn, part, skip = _hls_params(request)
    blocked = False
    if msn is not None:
        manifests, watch = live_manifests(request), live_watch(request)
        live = manifests.load_cached(playback.asset_id)[0] if watch.watching(playback.asset_id) else None
        if live is None:  # nobody waits on this stream yet: the watcher is not keeping it fresh
            live, _ = await run_in_threadpool(manifests.load, playback.asset_id)
        if not blocking_state(live, target.rendition, msn, part):
            blocked = True
            timeout = BLOCK_TARGET_DURATIONS * max(1.0, live.segment_duration)
            await watch.wait(
                playback.asset_id, lambda now: blocking_state(now, target.rendition, msn, part), timeout)
    body, content_type, live, info = await run_in_threadpool(
        live_manifests(request).render, playback.asset_id, target.kind.value, rendition=target.rendition,
        selected=selected, query=query, time_url=time_url(request), skip=skip,
        playback_root=playback_root(request, playback.playback_id) if playback.policy == "encrypted" else "")
    rendered = RenderedManifest(body, content_type, info.mtime, live.ended)
    max_age = live_max_age(live.segment_duration)
    if msn is not None and live.low_latency and blocking_state(live, target.rendition, msn, part):
        # Answered with what it asked for: the same URL never needs a newer answer (a CDN keeps it
        # while players can still ask for it: a few target durations).
        max_age = max(max_age, int(6 * live.segment_duration))
    elif live.low_latency:
        max_age = 0 if blocked else max_age  # a timed-out block or a plain reload: not worth keeping
    cache = policy.live_cache_control(max_age, ended=live.ended, token_ttl=token_ttl)
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


# -- LL: a segment or part asked for before it is stored --------------------------------------

_MEDIA_FILE = re.compile(r"^(?P<number>\d{5})(?:\.(?P<part>\d{1,3}))?\.m4s$")


class SegmentAborted(Exception):
    """A segment streamed as it was written will not complete as sent: the connection is cut, not ended.

    Raised inside the body: the server then drops the connection without the
    last chunk, so neither the player nor a CDN takes a short body for the segment.
    """


async def live_media_ahead(request: Request, origin: OriginService, playback: PlaybackTarget, target: Target,
                           token_ttl: int | None) -> Response:
    """A live stream's segment or part that is not stored yet (LL streams only; NotFound otherwise).

    The segment being written (`00042.m4s`, the DASH SegmentTemplate URL and
    HLS's full-segment URL): answered at once, chunked, with the parts
    already published, then each new one as it is published, then the rest
    of the finished segment file — the body is that file byte for byte.

    The next part (`00042.3.m4s`, the EXT-X-PRELOAD-HINT): held until it is
    published, then answered like any stored part; 503 (no-store) after
    BLOCK_TARGET_DURATIONS target durations.

    Both wait on the stream's LiveWatch (one watcher per stream, an asyncio
    event per change): no thread and no poll loop per request.
    """
    found = _MEDIA_FILE.match(target.file or "")
    if found is None or request.method != "GET":
        raise NotFound("no such file")
    manifests, watch = live_manifests(request), live_watch(request)
    live, _ = await run_in_threadpool(manifests.load, playback.asset_id)
    number, part = int(found["number"]), found["part"]
    timeout = BLOCK_TARGET_DURATIONS * max(1.0, live.segment_duration)
    if part is not None:
        index = int(part)
        state = part_progress(live, target.rendition, number, index)
        if state is Progress.WAIT:
            await watch.wait(playback.asset_id,
                             lambda now: part_progress(now, target.rendition, number, index) is not Progress.WAIT,
                             timeout)
            now = manifests.load_cached(playback.asset_id)[0] or live
            state = part_progress(now, target.rendition, number, index)
            if state is Progress.WAIT:
                return error_response(503, "part_not_ready", "the part was not published in time; "
                                      "reload the playlist", {"Retry-After": "1"})
        if state is not Progress.READY:
            raise NotFound("no such part")
        return await segment_response(request, origin, playback, target, token_ttl)
    state = segment_progress(live, target.rendition, number)
    if state is Progress.READY:  # completed since the first look
        return await segment_response(request, origin, playback, target, token_ttl)
    if state is Progress.NEVER:
        raise NotFound("no such segment")
    # Cached like the finished segment (immutable, capped by the token): the body is the finished
    # file byte for byte, and a CDN keeps only a response that ended (nginx drops a cut one). No
    # `X-Accel-Buffering: no`: nginx does not cache a response it does not buffer; whether the CDN
    # streams or waits for these bodies is its configuration's choice (docker/nginx-cache.conf).
    headers = {"Cache-Control": policy.cache_control(target.kind, complete=True, token_ttl=token_ttl)}
    chunks = _segment_chunks(request, playback.asset_id, target.rendition, number, timeout)
    return StreamingResponse(chunks, media_type=segment_content_type(target), headers=headers)


async def _segment_chunks(request: Request, stream_id: str, rendition: str, number: int, timeout: float):
    """The bytes of segment `number`: its parts as they are published, then the rest of the finished file."""
    storage, manifests, watch = request.app.state.ctx.storage, live_manifests(request), live_watch(request)
    index, sent, digest = 0, 0, hashlib.sha256()
    while True:
        live, _ = manifests.load_cached(stream_id)
        state = segment_progress(live, rendition, number, index)
        if state is Progress.PART:
            track = next(t for t in live.presentation.tracks if t.id == rendition)
            data = await run_in_threadpool(storage.get_bytes, media_key(stream_id, part_uri(track, number, index)))
            index, sent = index + 1, sent + len(data)
            digest.update(data)
            yield data
        elif state is Progress.READY:
            track = next(t for t in live.presentation.tracks if t.id == rendition)
            data = await run_in_threadpool(storage.get_bytes, media_key(stream_id, track.segment_uri(number)))
            if hashlib.sha256(data[:sent]).digest() != digest.digest():
                # The parts sent are not the file's start (a session cut mid-segment): never end it as if whole.
                raise SegmentAborted(f"{stream_id}/{rendition}/{number}: the segment differs from its parts")
            if len(data) > sent:
                yield data[sent:]
            return
        elif state is Progress.WAIT:
            await watch.wait(stream_id, lambda now: segment_progress(now, rendition, number, index)
                             is not Progress.WAIT, timeout)
            now, _ = manifests.load_cached(stream_id)
            if segment_progress(now, rendition, number, index) is Progress.WAIT:
                raise SegmentAborted(f"{stream_id}/{rendition}/{number}: no new part in {timeout:.0f} s")
        else:
            raise SegmentAborted(f"{stream_id}/{rendition}/{number}: the stream ended before the segment")


def preview_slots(request: Request) -> PreviewSlots:
    ctx = request.app.state.ctx
    found = ctx.extra.get("preview_slots")
    if found is None:
        found = ctx.extra["preview_slots"] = PreviewSlots(ctx.settings.preview_per_playback_id,
                                                          ctx.settings.preview_per_process)
    return found
