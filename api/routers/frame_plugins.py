"""`/v1/frame-plugins` (what is installed, with option schemas) and `/v1/overlays` (watermark pictures)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from api.deps import StorageDep, require
from core.errors import TooLarge
from core.media.plugins import describe
from core.services import overlays as service

router = APIRouter(tags=["frame plugins"])


class FramePluginsPublic(BaseModel):
    data: list[dict]
    count: int


class OverlayPublic(BaseModel):
    id: str
    width: int
    height: int
    size: int


@router.get("/v1/frame-plugins", response_model=FramePluginsPublic, dependencies=[require("read")])
def list_frame_plugins() -> FramePluginsPublic:
    """Installed frame plugins: name, description, pixel formats, batch size and the JSON schema of `options`."""
    data = describe()
    return FramePluginsPublic(data=data, count=len(data))


@router.post("/v1/overlays", status_code=201, response_model=OverlayPublic, dependencies=[require("write")],
             responses={413: {}, 415: {"description": "not a PNG"}, 422: {}},
             openapi_extra={"requestBody": {"required": True, "content": {
                 "image/png": {"schema": {"type": "string", "format": "binary"}}}}})
async def create_overlay(request: Request, storage: StorageDep) -> OverlayPublic:
    """Upload a PNG (alpha kept) as the body; use its id as a watermark's `image`."""
    data = bytearray()
    async for chunk in request.stream():  # bounded: never more than the limit in memory
        data += chunk
        if len(data) > service.MAX_OVERLAY_BYTES:
            raise TooLarge(f"an overlay may be at most {service.MAX_OVERLAY_BYTES // (1024 * 1024)} MiB")
    return OverlayPublic(**await run_in_threadpool(service.create_overlay, storage, bytes(data)))


@router.get("/v1/overlays/{overlay_id}", response_model=OverlayPublic, dependencies=[require("read")],
            responses={404: {}})
def get_overlay(overlay_id: str, storage: StorageDep) -> OverlayPublic:
    return OverlayPublic(**service.get_overlay(storage, overlay_id))


@router.delete("/v1/overlays/{overlay_id}", status_code=204, dependencies=[require("write")], responses={404: {}})
def delete_overlay(overlay_id: str, storage: StorageDep) -> Response:
    service.delete_overlay(storage, overlay_id)
    return Response(status_code=204)
