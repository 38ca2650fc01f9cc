"""`watermark`: a PNG (alpha respected) at a position, sized relative to the frame width, with an opacity."""

from __future__ import annotations

from typing import Literal

import av
import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from core.media.plugins.base import BatchInfo, FramePlugin, PluginContext
from core.media.plugins.overlay import Overlay, place


class WatermarkOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    image: str = Field(min_length=1, max_length=2000,
                       description="an overlay id from POST /v1/overlays (ov_…), or an http(s) URL of a PNG")
    position: Literal["top-left", "top-right", "bottom-left", "bottom-right", "center"] = "bottom-right"
    width: float = Field(default=0.15, gt=0, le=1, description="width of the mark as a fraction of the frame width")
    margin: float = Field(default=0.03, ge=0, le=0.5, description="distance from the edges, fraction of frame width")
    opacity: float = Field(default=1.0, ge=0, le=1)


def load_rgba(path, width: int, height: int | None = None) -> np.ndarray:
    """Decode a picture file (PNG, …) and scale it to `width` (height keeps the aspect), as RGBA."""
    try:
        with av.open(str(path)) as container:
            frame = next(container.decode(video=0))
    except (av.FFmpegError, StopIteration) as exc:
        raise ValueError(f"the watermark image cannot be read: {exc}") from exc
    if height is None:
        height = max(2, round(frame.height * width / frame.width))
    return frame.reformat(width=width, height=height, format="rgba").to_ndarray()


class Watermark(FramePlugin):
    name = "watermark"
    description = "Blend a PNG (with alpha) into every frame at a position, size and opacity."
    Options = WatermarkOptions
    pix_fmts = ("yuv420p", "rgb24")
    batch_size = 8

    def __init__(self, options: WatermarkOptions, context: PluginContext) -> None:
        super().__init__(options, context)
        fmt = context.format
        width = max(2, round(fmt.width * options.width) & ~1)
        rgba = load_rgba(context.resolve(options.image), width)
        x, y = place(options.position, (rgba.shape[1], rgba.shape[0]), (fmt.width, fmt.height),
                     round(fmt.width * options.margin))
        self.overlay = Overlay(rgba, x, y, fmt, opacity=options.opacity)

    def process(self, frames: np.ndarray, info: BatchInfo) -> None:
        self.overlay.apply(frames)
