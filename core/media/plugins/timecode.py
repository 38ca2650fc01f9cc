"""`timecode`: burn the source timestamp or the wall clock into each frame, and optionally a bit pattern.

The text is drawn with a built-in 5x7 pixel font scaled up by whole pixels
(crisp at any size, no font files or FreeType needed) on an opaque box. The
bit pattern is a strip of `BITS` blocks, most significant first, white for 1
and black for 0, carrying the same time in milliseconds (source time, or
Unix time for the wall clock) so a test or a monitoring probe can read the
time of any frame after encoding: `read_bits` decodes it.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from core.media.plugins.base import BatchInfo, FramePlugin, PluginContext, planes

BITS = 48
WHITE, BLACK, GREY = 235, 16, 128
_FONT = {
    "0": "01110 10001 10011 10101 11001 10001 01110", "1": "00100 01100 00100 00100 00100 00100 01110",
    "2": "01110 10001 00001 00010 00100 01000 11111", "3": "11111 00010 00100 00010 00001 10001 01110",
    "4": "00010 00110 01010 10010 11111 00010 00010", "5": "11111 10000 11110 00001 00001 10001 01110",
    "6": "00110 01000 10000 11110 10001 10001 01110", "7": "11111 00001 00010 00100 01000 01000 01000",
    "8": "01110 10001 10001 01110 10001 10001 01110", "9": "01110 10001 10001 01111 00001 00010 01100",
    ":": "00000 01100 01100 00000 01100 01100 00000", ".": "00000 00000 00000 00000 00000 01100 01100",
    "-": "00000 00000 00000 11111 00000 00000 00000", " ": "00000 00000 00000 00000 00000 00000 00000",
}


class TimecodeOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    source: Literal["source", "wall_clock"] = "source"
    position: Literal["top-left", "top-right", "bottom-left", "bottom-right"] = "top-left"
    size: float = Field(default=0.05, gt=0, le=0.25, description="text height as a fraction of the frame height")
    bit_pattern: bool = Field(default=False, description="also draw the time in ms as a strip of 48 blocks")


def glyphs(scale: int) -> dict[str, np.ndarray]:
    out = {}
    for ch, rows in _FONT.items():
        bitmap = np.array([[c == "1" for c in row] for row in rows.split()], dtype=bool)
        out[ch] = np.kron(bitmap, np.ones((scale, scale), dtype=bool))
    return out


def block_size(width: int) -> int:
    return max(2, (width // 64) & ~1)


def read_bits(y_plane: np.ndarray, *, width: int, row: int | None = None) -> int:
    """Decode the bit pattern from a frame's luma (the strip is at the bottom-left corner)."""
    block = block_size(width)
    row = y_plane.shape[0] - block // 2 - 1 if row is None else row
    centres = [i * block + block // 2 for i in range(BITS)]
    value = 0
    for c in centres:
        value = (value << 1) | int(y_plane[row, c] > GREY)
    return value


class Timecode(FramePlugin):
    name = "timecode"
    description = "Burn the source timestamp or the wall clock (UTC) into each frame, optionally as a bit pattern."
    Options = TimecodeOptions
    pix_fmts = ("yuv420p", "rgb24")
    batch_size = 8

    def __init__(self, options: TimecodeOptions, context: PluginContext) -> None:
        super().__init__(options, context)
        fmt = context.format
        self.scale = max(1, round(fmt.height * options.size / 7))
        self.glyphs = glyphs(self.scale)
        self.advance = 6 * self.scale
        chars = len(self._text(0.0, 0.0))
        self.box_w = min(fmt.width, chars * self.advance + 2 * self.scale) & ~1
        self.box_h = min(fmt.height, 9 * self.scale) + (9 * self.scale) % 2
        margin = 2 * round(fmt.height * 0.02)
        vertical, horizontal = options.position.split("-")
        self.x = margin if horizontal == "left" else max(0, fmt.width - self.box_w - margin) & ~1
        self.y = margin if vertical == "top" else max(0, fmt.height - self.box_h - margin) & ~1
        if options.bit_pattern and vertical == "bottom" and horizontal == "left":
            self.y = max(0, self.y - block_size(fmt.width) - margin) & ~1  # keep the strip free

    def _text(self, pts: float, wall: float) -> str:
        if self.options.source == "wall_clock":
            moment = datetime.fromtimestamp(wall, UTC)
            return moment.strftime("%Y-%m-%d %H:%M:%S.") + f"{moment.microsecond // 1000:03d}"
        ms = round(pts * 1000)
        return f"{ms // 3_600_000:02d}:{ms // 60_000 % 60:02d}:{ms // 1000 % 60:02d}.{ms % 1000:03d}"

    def process(self, frames: np.ndarray, info: BatchInfo) -> None:
        fmt = self.context.format
        for i, frame in enumerate(frames):
            pts = info.pts[i] if i < len(info.pts) else 0.0
            wall = info.wall_clock[i] if i < len(info.wall_clock) else time.time()
            text = self._text(pts, wall)
            millis = round((wall if self.options.source == "wall_clock" else pts) * 1000)
            if fmt.pix_fmt == "yuv420p":
                y, u, v = planes(frame, fmt.width, fmt.height)
                self._draw(y, u, v, text, millis)
            else:
                self._draw(frame, None, None, text, millis)

    def _draw(self, y: np.ndarray, u, v, text: str, millis: int) -> None:
        """Draw on the luma (or all of an RGB frame: the same value in every channel is grey)."""
        x0, y0 = self.x, self.y
        y[y0:y0 + self.box_h, x0:x0 + self.box_w] = BLACK
        top, left = y0 + self.scale, x0 + self.scale
        for k, ch in enumerate(text):
            glyph = self.glyphs.get(ch)
            gx = left + k * self.advance
            if glyph is None or gx + glyph.shape[1] > x0 + self.box_w:
                continue
            y[top:top + glyph.shape[0], gx:gx + glyph.shape[1]][glyph] = WHITE
        boxes = [(x0, y0, self.box_w, self.box_h)]
        if self.options.bit_pattern:
            block = block_size(self.context.format.width)
            by = self.context.format.height - block
            for i in range(BITS):
                bit = (millis >> (BITS - 1 - i)) & 1
                y[by:by + block, i * block:(i + 1) * block] = WHITE if bit else BLACK
            boxes.append((0, by, BITS * block, block))
        if u is not None:
            for bx, by, bw, bh in boxes:  # neutral chroma: the text is pure grey on black
                u[by // 2:(by + bh) // 2, bx // 2:(bx + bw) // 2] = GREY
                v[by // 2:(by + bh) // 2, bx // 2:(bx + bw) // 2] = GREY
