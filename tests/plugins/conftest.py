"""Fixtures for frame plugin tests: tiny clips, a PNG watermark, a clip of a face, a plugin that raises."""

from __future__ import annotations

import importlib.resources
import subprocess
from pathlib import Path

import av
import numpy as np
import pytest

from core.media import plugins
from core.media.ffmpeg import find_ffmpeg
from core.media.plugins.base import FramePlugin
from tests.media_fixtures import clip_maker


@pytest.fixture(scope="session")
def ffmpeg() -> str:
    return find_ffmpeg()


@pytest.fixture(scope="session")
def clip(tmp_path_factory):
    return clip_maker(tmp_path_factory.mktemp("plugin-clips"))


def write_png(path: Path, rgba: np.ndarray) -> Path:
    with av.open(str(path), "w", format="image2") as container:
        stream = container.add_stream("png", rate=1)
        stream.width, stream.height, stream.pix_fmt = rgba.shape[1], rgba.shape[0], "rgba"
        for packet in stream.encode(av.VideoFrame.from_ndarray(rgba, format="rgba")):
            container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path


@pytest.fixture(scope="session")
def red_mark(tmp_path_factory) -> Path:
    """An opaque red square with a fully transparent border (the alpha must be honoured)."""
    rgba = np.zeros((64, 64, 4), np.uint8)
    rgba[8:56, 8:56] = (255, 0, 0, 255)
    return write_png(tmp_path_factory.mktemp("marks") / "mark.png", rgba)


@pytest.fixture(scope="session")
def face_clip(tmp_path_factory) -> Path:
    """3 s, 320x240, of the astronaut photo that scikit-image ships (a face, no download)."""
    photo = importlib.resources.files("skimage") / "data" / "astronaut.png"
    out = tmp_path_factory.mktemp("face") / "face.mp4"
    subprocess.run([find_ffmpeg(), "-hide_banner", "-loglevel", "error", "-y", "-loop", "1", "-framerate", "30",
                    "-i", str(photo), "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=3",
                    "-vf", "scale=320:320,crop=320:240:0:0,format=yuv420p", "-t", "3",
                    "-c:v", "libx264", "-preset", "ultrafast", "-qp", "10", "-c:a", "aac", str(out)],
                   check=True, capture_output=True, timeout=60)
    return out


class Explodes(FramePlugin):
    name = "explodes"
    description = "raises on frame 10 (tests)"

    def process(self, frames, info):
        if info.first_index + len(frames) > 10:
            raise RuntimeError("the model ran out of coffee")


class Nothing(FramePlugin):
    name = "nothing"
    description = "does nothing (tests, benchmarks)"

    def process(self, frames, info):
        pass


@pytest.fixture
def test_plugins(monkeypatch):
    """Register `explodes` and `nothing` in this process, as an installed package's entry points would."""
    found = dict(plugins.installed())
    found["explodes"] = plugins.Installed("explodes", Explodes, ())
    found["nothing"] = plugins.Installed("nothing", Nothing, ())
    monkeypatch.setattr(plugins, "installed", lambda: found)
    import core.media.framepipe as framepipe

    monkeypatch.setattr(framepipe, "installed", lambda: found)
    return found
