"""What a frame plugin is: a class with a name, an options model, the pixel formats it works on, a batch size.

A plugin is an installed Python package (never code sent over the API) that
registers a `FramePlugin` subclass under the `abr.frame_plugins` entry-point
group. The pipeline decodes once to raw frames, hands them to the chain in
batches as numpy arrays *to change in place* (the arrays are views of a few
buffers that are reused for the whole encode: no per-frame allocation), and
encodes what the chain leaves in them.

Frame layouts (`FrameFormat.shape`):
- `yuv420p`: one `(height * 3 // 2, width)` uint8 array per frame, the I420
  layout OpenCV knows (`cv2.COLOR_YUV2BGR_I420`): the Y plane, then U, then V
  (each a quarter of Y). `planes()` gives the three as views. Cheapest: it is
  what the decoder and the encoders use, so no conversion happens anywhere.
- `rgb24`: one `(height, width, 3)` uint8 array per frame. Costs a colour
  conversion on each side of the chain (done by ffmpeg, in C).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import ClassVar

import numpy as np
from pydantic import BaseModel, ConfigDict

PIX_FMTS = ("yuv420p", "rgb24")


class NoOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")


@dataclass(frozen=True)
class FrameFormat:
    width: int
    height: int
    pix_fmt: str  # one of PIX_FMTS
    frame_rate: Fraction

    @property
    def shape(self) -> tuple[int, ...]:
        if self.pix_fmt == "yuv420p":
            return (self.height * 3 // 2, self.width)
        if self.pix_fmt == "rgb24":
            return (self.height, self.width, 3)
        raise ValueError(f"unknown pixel format {self.pix_fmt!r}")

    @property
    def frame_bytes(self) -> int:
        return int(np.prod(self.shape))


def planes(frame: np.ndarray, width: int, height: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Views of the Y (h, w), U and V (h/2, w/2) planes of one yuv420p frame."""
    flat = frame.reshape(-1)
    y_size, c_size = width * height, (width // 2) * (height // 2)
    y = flat[:y_size].reshape(height, width)
    u = flat[y_size:y_size + c_size].reshape(height // 2, width // 2)
    v = flat[y_size + c_size:y_size + 2 * c_size].reshape(height // 2, width // 2)
    return y, u, v


@dataclass
class BatchInfo:
    """Where a batch is on the timeline: frame `first_index` is the encode's frame number."""

    first_index: int
    pts: Sequence[float]  # seconds from the start of the source, one per frame
    wall_clock: Sequence[float]  # Unix time each frame was decoded (live: close to capture time)


@dataclass(frozen=True)
class PluginContext:
    format: FrameFormat
    live: bool = False
    # Turns a resource reference in the options (an overlay id, an https URL) into a local
    # file; supplied by the service that runs the encode, which checks what may be fetched.
    resolve: Callable[[str], Path] = field(default=lambda ref: Path(ref))


class FramePlugin:
    """Subclass this and register it under the `abr.frame_plugins` entry-point group."""

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    Options: ClassVar[type[BaseModel]] = NoOptions
    pix_fmts: ClassVar[tuple[str, ...]] = ("yuv420p",)  # what `process` accepts, preferred first
    batch_size: ClassVar[int] = 1  # frames per `process` call (a batched model wants more)
    requires: ClassVar[tuple[str, ...]] = ()  # importable modules it needs (listed as unavailable otherwise)

    def __init__(self, options: BaseModel, context: PluginContext) -> None:
        self.options, self.context = options, context

    def process(self, frames: np.ndarray, info: BatchInfo) -> None:
        """Change `frames` (shape `(n, *format.shape)`, n <= batch_size) in place."""
        raise NotImplementedError

    def close(self) -> None:
        """Called once when the encode ends (also after an error)."""
