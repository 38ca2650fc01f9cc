"""`grayscale`: fade every frame's colours toward grey (strength 1: black and white).

The shape of every frame plugin:
- `name`: what settings call it; `Options`: a pydantic model, the option schema
  the API publishes and checks (a bad option is a 422 before anything runs);
- `pix_fmts`: the layouts `process` understands, preferred first (yuv420p costs
  no conversion at all; rgb24 is the easy one for picture libraries);
- `batch_size`: how many frames `process` gets at once;
- `process(frames, info)`: change `frames` in place. They are views of buffers
  the pipeline reuses, so write into them (`frames[...] = …`, `out=`) rather
  than building new arrays, and keep no reference to them after returning.
  Raising marks a VOD asset `errored` with your message; on a live stream the
  plugin is turned off and the stream goes on.
"""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from core.media.plugins.base import BatchInfo, FramePlugin, PluginContext, planes


class GrayscaleOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    strength: float = Field(default=1.0, ge=0, le=1, description="1: no colour left, 0: unchanged")


class Grayscale(FramePlugin):
    name = "grayscale"
    description = "Fade the colours of every frame toward grey."
    Options = GrayscaleOptions
    pix_fmts = ("yuv420p",)
    batch_size = 8

    def __init__(self, options: GrayscaleOptions, context: PluginContext) -> None:
        super().__init__(options, context)  # context.format: width, height, pix_fmt, frame_rate
        keep = 1.0 - options.strength
        # Precompute once: a 256-entry table maps every chroma value to its faded value.
        self.table = np.clip(np.rint(128 + (np.arange(256) - 128) * keep), 0, 255).astype(np.uint8)

    def process(self, frames: np.ndarray, info: BatchInfo) -> None:
        fmt = self.context.format
        for frame in frames:
            _, u, v = planes(frame, fmt.width, fmt.height)
            np.take(self.table, u, out=u)  # in place: no new frame is allocated
            np.take(self.table, v, out=v)
