"""`blur_faces`: find faces every N frames with OpenCV's Haar cascade, follow them in between, blur them.

The cascade file ships inside the `opencv-python-headless` wheel
(`cv2.data.haarcascades`), so nothing is downloaded at run time; install it
with `pip install 'abr-origin[vision]'`. Detection runs on a downscaled luma
plane (the Y plane of a yuv420p frame *is* a grey picture, so there is no
colour conversion); between detections each face is followed by template
matching in a window around where it was, which costs far less than a
detection. A face is blurred in every plane with a Gaussian whose size
follows the face, padded so the edges of a face are covered too.
"""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from core.media.plugins.base import BatchInfo, FramePlugin, PluginContext, planes

DETECT_WIDTH = 480  # detection picture width: faces of ~1/20 of the frame width and up are found


class BlurFacesOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    detect_every: int = Field(default=5, ge=1, le=60, description="run the face detector every N frames")
    padding: float = Field(default=0.25, ge=0, le=1, description="grow each face box by this fraction")
    strength: float = Field(default=0.25, gt=0, le=1, description="blur sigma as a fraction of the face size")
    min_face: float = Field(default=0.05, gt=0, le=1, description="smallest face, fraction of the frame width")


class BlurFaces(FramePlugin):
    name = "blur_faces"
    description = "Blur faces (OpenCV Haar cascade every N frames, template tracking in between)."
    Options = BlurFacesOptions
    pix_fmts = ("yuv420p", "rgb24")
    requires = ("cv2",)

    def __init__(self, options: BlurFacesOptions, context: PluginContext) -> None:
        super().__init__(options, context)
        import cv2  # optional dependency: the `vision` extra

        self.cv2 = cv2
        self.detector = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")
        if self.detector.empty():
            raise RuntimeError("OpenCV's face cascade could not be loaded")
        fmt = context.format
        self.factor = min(1.0, DETECT_WIDTH / fmt.width)
        self.small = (max(1, round(fmt.width * self.factor)), max(1, round(fmt.height * self.factor)))
        self.faces: list[tuple[int, int, int, int, np.ndarray]] = []  # x, y, w, h (small picture), template
        self.count = 0

    def process(self, frames: np.ndarray, info: BatchInfo) -> None:
        fmt = self.context.format
        for frame in frames:
            if fmt.pix_fmt == "yuv420p":
                luma = planes(frame, fmt.width, fmt.height)[0]
            else:
                luma = self.cv2.cvtColor(frame, self.cv2.COLOR_RGB2GRAY)
            grey = self.cv2.resize(luma, self.small, interpolation=self.cv2.INTER_AREA) if self.factor < 1 else luma
            if self.count % self.options.detect_every == 0:
                self._detect(grey)
            else:
                self._track(grey)
            self.count += 1
            for x, y, w, h, _ in self.faces:
                self._blur(frame, x / self.factor, y / self.factor, w / self.factor, h / self.factor)

    def _detect(self, grey: np.ndarray) -> None:
        smallest = max(12, round(self.small[0] * self.options.min_face))
        found = self.detector.detectMultiScale(grey, scaleFactor=1.1, minNeighbors=4, minSize=(smallest, smallest))
        self.faces = [(int(x), int(y), int(w), int(h), grey[y:y + h, x:x + w].copy()) for x, y, w, h in found]

    def _track(self, grey: np.ndarray) -> None:
        tracked = []
        for x, y, w, h, template in self.faces:
            mx, my = w // 2, h // 2  # search this far around the last position
            x0, y0 = max(0, x - mx), max(0, y - my)
            window = grey[y0:y + h + my, x0:x + w + mx]
            if window.shape[0] < h or window.shape[1] < w:
                tracked.append((x, y, w, h, template))
                continue
            scores = self.cv2.matchTemplate(window, template, self.cv2.TM_CCOEFF_NORMED)
            _, best, _, (bx, by) = self.cv2.minMaxLoc(scores)
            if best > 0.3:
                x, y = x0 + bx, y0 + by
            tracked.append((x, y, w, h, template))
        self.faces = tracked

    def _blur(self, frame: np.ndarray, x: float, y: float, w: float, h: float) -> None:
        fmt = self.context.format
        pad = self.options.padding
        x0, y0 = max(0, int(x - w * pad)) & ~1, max(0, int(y - h * pad)) & ~1
        x1, y1 = min(fmt.width, int(x + w * (1 + pad)) + 1) & ~1, min(fmt.height, int(y + h * (1 + pad)) + 1) & ~1
        if x1 - x0 < 4 or y1 - y0 < 4:
            return
        sigma = max(2.0, self.options.strength * max(w, h))
        regions = []
        if fmt.pix_fmt == "yuv420p":
            yp, up, vp = planes(frame, fmt.width, fmt.height)
            regions = [(yp[y0:y1, x0:x1], sigma)] + [(p[y0 // 2:y1 // 2, x0 // 2:x1 // 2], sigma / 2) for p in (up, vp)]
        else:
            regions = [(frame[y0:y1, x0:x1], sigma)]
        for region, s in regions:
            region[...] = self.cv2.GaussianBlur(region, (0, 0), sigmaX=s, borderType=self.cv2.BORDER_REPLICATE)
