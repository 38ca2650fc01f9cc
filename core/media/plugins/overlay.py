"""Blend a fixed RGBA picture into frames of either chain format (the watermark's work, reusable)."""

from __future__ import annotations

import numpy as np

from core.media.plugins.base import FrameFormat, planes

# BT.601 limited range, what ffmpeg's swscale assumes for untagged RGB<->YUV (so both chain formats agree).
_RGB_TO_YUV = np.array([[0.257, 0.504, 0.098], [-0.148, -0.291, 0.439], [0.439, -0.368, -0.071]], np.float32)
_OFFSET = np.array([16, 128, 128], np.float32)


def rgb_to_yuv(rgb: np.ndarray) -> np.ndarray:
    return rgb.astype(np.float32) @ _RGB_TO_YUV.T + _OFFSET


class Overlay:
    """An RGBA picture at (x, y): alpha and colour prepared once, so each frame costs one blend of the region."""

    def __init__(self, rgba: np.ndarray, x: int, y: int, fmt: FrameFormat, *, opacity: float = 1.0) -> None:
        self.fmt = fmt
        h, w = rgba.shape[:2]
        # yuv420p: chroma is per 2x2 block, so the region starts and ends on even pixels.
        x, y = x & ~1, y & ~1
        w, h = min(w, fmt.width - x) & ~1, min(h, fmt.height - y) & ~1
        if w <= 0 or h <= 0:
            raise ValueError("the overlay lies outside the frame")
        rgba = rgba[:h, :w]
        self.x, self.y, self.w, self.h = x, y, w, h
        alpha = rgba[..., 3].astype(np.float32) / 255.0 * opacity
        # Integer blend weights 0..256: out = (in * (256 - a) + colour * a) >> 8.
        self.a = np.rint(alpha * 256).astype(np.uint16)
        if fmt.pix_fmt == "yuv420p":
            yuv = rgb_to_yuv(rgba[..., :3])
            self.y_pre = (np.clip(yuv[..., 0], 0, 255) * self.a).astype(np.uint16)
            a2 = alpha.reshape(h // 2, 2, w // 2, 2).mean(axis=(1, 3))
            uv = yuv[..., 1:].reshape(h // 2, 2, w // 2, 2, 2).mean(axis=(1, 3))
            self.ac = np.rint(a2 * 256).astype(np.uint16)
            self.u_pre = (np.clip(uv[..., 0], 0, 255) * self.ac).astype(np.uint16)
            self.v_pre = (np.clip(uv[..., 1], 0, 255) * self.ac).astype(np.uint16)
            self.a_inv, self.ac_inv = 256 - self.a, 256 - self.ac
        else:
            self.rgb_pre = (rgba[..., :3].astype(np.uint16) * self.a[..., None])
            self.a_inv = (256 - self.a)[..., None]

    def apply(self, frames: np.ndarray) -> None:
        """Blend into every frame of the batch `frames` (n, *shape), in place."""
        x, y, w, h = self.x, self.y, self.w, self.h
        if self.fmt.pix_fmt == "rgb24":
            region = frames[:, y:y + h, x:x + w]
            region[...] = (region * self.a_inv + self.rgb_pre) >> 8
            return
        for frame in frames:
            yp, up, vp = planes(frame, self.fmt.width, self.fmt.height)
            r = yp[y:y + h, x:x + w]
            r[...] = (r * self.a_inv + self.y_pre) >> 8
            cy, cx = y // 2, x // 2
            for plane, pre in ((up, self.u_pre), (vp, self.v_pre)):
                r = plane[cy:cy + h // 2, cx:cx + w // 2]
                r[...] = (r * self.ac_inv + pre) >> 8


def place(position: str, size: tuple[int, int], frame: tuple[int, int], margin: int) -> tuple[int, int]:
    """Top-left corner of a `size` box at `position` in a `frame` (both width, height)."""
    (w, h), (fw, fh) = size, frame
    x = {"left": margin, "right": fw - w - margin, "center": (fw - w) // 2}
    y = {"top": margin, "bottom": fh - h - margin, "center": (fh - h) // 2}
    if position == "center":
        return x["center"], y["center"]
    vertical, horizontal = position.split("-")
    return max(0, x[horizontal]), max(0, y[vertical])
