"""Images and the MP4 download under `/play/{playback_id}/…`, served by the origin's own machinery.

- `thumbnail.jpg|webp?time=&width=&height=&fit_mode=` — one frame (default: the middle); for a live
  playback id, `thumbnail.jpg` is the latest picture (`api.live_origin`).
- `animated.webp?start=&end=&width=&fps=` — a short looping preview (≤ 10 s, ≤ 640 px, ≤ 30 fps).
- `storyboard.vtt` + `storyboard.jpg` — a WebVTT index of `#xywh=` tiles in one sprite sheet,
  made once by the transcode (never here).
- `download.mp4` — the static MP4 rendition (asset setting `mp4_support`), Range-capable.

Sizes and times are snapped to a small grid and each asset stores at most
`ABR_MAX_IMAGE_VARIANTS` images (`core.media.image_sizes`), so viewers cannot
make unbounded work or storage.

Playback-id lookup, the token check, conditional requests, ranges and cache
headers are the origin's request layer's (`api.origin`): an image, once made, is
stored under `media/{asset}/images/` by its normalised parameters and
answered exactly like a segment (immutable, strong ETag, 304, 206). These
routes must be included before the origin's catch-all route.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable

from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool

from api.live_origin import live_image
from api.origin import PlaybackRequest, load_presentation, open_playback, serve_stored, serve_text
from api.schemas import error_responses
from core.errors import AbrError, NotFound
from core.layout import media_key
from core.media import images, mp4
from core.media.manifests import append_query
from core.origin.policy import live_cache_control
from core.services import images as image_service
from core.services.content_keys import key_master, load_content_key

router = APIRouter(tags=["playback"], responses=error_responses(403, 404))
_FILENAME = re.compile(r"[^A-Za-z0-9._-]+")


class Busy(AbrError):
    code = "busy"
    status = 503


class ImageGate:
    """At most `slots` image jobs at once per process; equal requests in flight share one job.

    Waiting happens on the event loop (no worker thread is held), and a
    request that cannot get a slot within `wait` seconds gets 503 (`no-store`),
    so a storm of distinct thumbnail URLs cannot exhaust the machine.
    """

    def __init__(self, slots: int, wait: float) -> None:
        self.slots = asyncio.Semaphore(slots)
        self.wait = wait
        self.in_flight: dict[str, asyncio.Future] = {}

    async def run(self, key: str, work: Callable[[], object]) -> None:
        task = self.in_flight.get(key)
        if task is None:
            task = asyncio.ensure_future(self._limited(work))
            self.in_flight[key] = task
            task.add_done_callback(lambda _: self.in_flight.pop(key, None))
        await asyncio.shield(task)

    async def _limited(self, work: Callable[[], object]) -> None:
        try:
            await asyncio.wait_for(self.slots.acquire(), self.wait)
        except TimeoutError:
            raise Busy("too many images are being made right now; retry in a few seconds") from None
        try:
            await run_in_threadpool(work)
        finally:
            self.slots.release()


def get_gate(request: Request) -> ImageGate:
    ctx = request.app.state.ctx
    gate = ctx.extra.get("image_gate")
    if gate is None:
        gate = ctx.extra["image_gate"] = ImageGate(ctx.settings.image_concurrency, ctx.settings.image_queue_timeout)
    return gate


async def _image(request: Request, pr: PlaybackRequest, plan: image_service.Plan, media_type: str,
                 final: bool) -> Response:
    relative = image_service.image_relative(plan)
    try:
        return await serve_stored(request, pr, relative, media_type, final=final)
    except NotFound:
        pass
    ctx = request.app.state.ctx
    asset_id = pr.playback.asset_id

    def work() -> None:
        # An encrypted asset's images are cut from its decrypted rendition (in process: no key in any argv);
        # the key is loaded only then.
        key = lambda: load_content_key(ctx.storage, key_master(ctx.settings), asset_id)  # noqa: E731
        image_service.make_image(ctx.storage, ffmpeg=ffmpeg_path(ctx), work_dir=ctx.settings.data_dir / "tmp",
                                 asset_id=asset_id, plan=plan, max_variants=ctx.settings.max_image_variants,
                                 content_key=key)

    await get_gate(request).run(f"{asset_id}/{relative}", work)
    return await serve_stored(request, pr, relative, media_type, final=final)


def ffmpeg_path(ctx) -> str:
    found = ctx.extra.get("ffmpeg")
    if found is None:
        from core.media.ffmpeg import find_ffmpeg

        found = ctx.extra["ffmpeg"] = find_ffmpeg(ctx.settings.ffmpeg)
    return found


_IMAGE_RESPONSES = {400: {"description": "bad parameter"}, 403: {}, 404: {},
                    422: {"description": "the asset's stored images are at ABR_MAX_IMAGE_VARIANTS"},
                    503: {"description": "busy"}}
NO_STORYBOARD = "this asset has no storyboard (it is made by the transcode, before the asset is ready)"


@router.head("/play/{playback_id}/thumbnail.jpg", include_in_schema=False)
@router.get("/play/{playback_id}/thumbnail.jpg",
                       summary="A still image; for a live playback id the latest picture (refreshed every few seconds)")
async def live_thumbnail(request: Request, playback_id: str) -> Response:
    pr = await open_playback(request, playback_id)
    if not pr.playback.live:
        return await thumbnail(request, playback_id, "jpg")
    return await live_image(request, pr.playback.asset_id, "thumbnail.jpg",
                            live_cache_control(2, ended=False, token_ttl=pr.token_ttl))


@router.head("/play/{playback_id}/thumbnail.{fmt}", include_in_schema=False)
@router.get("/play/{playback_id}/thumbnail.{fmt}", responses=_IMAGE_RESPONSES,
                  summary="A still image at ?time= (JPEG or WebP)")
async def thumbnail(request: Request, playback_id: str, fmt: str) -> Response:
    if fmt not in ("jpg", "webp"):
        raise NotFound("thumbnails are thumbnail.jpg or thumbnail.webp")
    wanted = images.ThumbnailRequest.from_query(request.query_params)
    pr = await open_playback(request, playback_id)
    loaded = await load_presentation(pr)
    plan = images.plan_thumbnail(loaded.presentation, wanted, fmt)  # type: ignore[arg-type]
    media_type = "image/jpeg" if fmt == "jpg" else "image/webp"
    return await _image(request, pr, plan, media_type, loaded.presentation.complete)


@router.head("/play/{playback_id}/animated.webp", include_in_schema=False)
@router.get("/play/{playback_id}/animated.webp", responses=_IMAGE_RESPONSES,
                  summary="A short looping animated WebP preview")
async def animated(request: Request, playback_id: str) -> Response:
    wanted = images.AnimatedRequest.from_query(request.query_params)
    pr = await open_playback(request, playback_id)
    loaded = await load_presentation(pr)
    plan = images.plan_animated(loaded.presentation, wanted)
    return await _image(request, pr, plan, "image/webp", loaded.presentation.complete)


@router.head("/play/{playback_id}/storyboard.jpg", include_in_schema=False)
@router.get("/play/{playback_id}/storyboard.jpg", responses=_IMAGE_RESPONSES,
                  summary="The storyboard sprite sheet that storyboard.vtt points into")
async def storyboard_sheet(request: Request, playback_id: str) -> Response:
    pr = await open_playback(request, playback_id)
    loaded = await load_presentation(pr)
    relative = image_service.image_relative(images.plan_storyboard(loaded.presentation))
    try:
        return await serve_stored(request, pr, relative, "image/jpeg")
    except NotFound:
        raise NotFound(NO_STORYBOARD) from None


@router.head("/play/{playback_id}/storyboard.vtt", include_in_schema=False)
@router.get("/play/{playback_id}/storyboard.vtt", responses=_IMAGE_RESPONSES,
                  summary="WebVTT storyboard: one cue per tile, `storyboard.jpg#xywh=x,y,w,h`")
async def storyboard_index(request: Request, playback_id: str) -> Response:
    pr = await open_playback(request, playback_id)
    loaded = await load_presentation(pr)
    plan = images.plan_storyboard(loaded.presentation)
    # The worker made the sheet with the transcode; no index points at a sheet that is not there.
    key = media_key(pr.playback.asset_id, image_service.image_relative(plan))
    if not await run_in_threadpool(pr.origin.storage.exists, key):
        raise NotFound(NO_STORYBOARD)
    sheet = append_query("storyboard.jpg", pr.query)
    body = images.render_storyboard_vtt(plan, sheet)
    return serve_text(request, pr, body, "text/vtt; charset=utf-8", loaded, final=loaded.presentation.complete)


@router.head("/play/{playback_id}/download.mp4", include_in_schema=False)
@router.get("/play/{playback_id}/download.mp4",
                  responses={403: {}, 404: {"description": "no MP4 (mp4_support off, or not made yet)"}},
                  summary="The static MP4 rendition (asset setting mp4_support), Range-capable")
async def download(request: Request, playback_id: str) -> Response:
    pr = await open_playback(request, playback_id)
    headers = {}
    name = (request.query_params.get("download") or "").strip()
    if name:
        safe = _FILENAME.sub("_", name)[:100].strip("._") or playback_id
        safe = safe if safe.lower().endswith(".mp4") else f"{safe}.mp4"
        headers["Content-Disposition"] = f'attachment; filename="{safe}"'
    try:
        return await serve_stored(request, pr, mp4.DOWNLOAD_RELATIVE, "video/mp4", headers=headers)
    except NotFound:
        raise NotFound("this asset has no MP4 download (create it with settings.mp4_support: true, "
                       "and wait until it is ready)") from None
