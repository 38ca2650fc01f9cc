"""Frame plugins on live streams: in process (health, failures, real time) and on a pulled camera end to end."""

from __future__ import annotations

import io
import subprocess
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from core.errors import Cancelled
from core.live.plugins import LivePlugins
from core.media.encode import EncodeJob
from core.media.ladder import plan_audio, plan_ladder
from core.media.plugins.base import FramePlugin
from tests.conftest import free_port
from tests.live.conftest import kill, need
from tests.live.test_pull import HERE, _gst_rtsp_available, hls_source  # noqa: F401  (fixture)
from tests.origin.live import wait_for_port
from tests.plugins.conftest import Explodes, red_mark, test_plugins, write_png  # noqa: F401  (fixtures)


class Slow(FramePlugin):
    name = "slow"

    def process(self, frames, info):
        time.sleep(0.2 * len(frames))  # 5 fps at most: a 15 fps source cannot be kept up with


def _job(out: Path) -> EncodeJob:
    ladder = plan_ladder(codec="h264", display_width=320, display_height=180, frame_rate=Fraction(15), max_rungs=1)
    return EncodeJob(Path("live"), out, ladder, plan_audio(2, 44100), 1.0, Fraction(15))


def _run_for(plugins: LivePlugins, job: EncodeJob, source: str, seconds: float, ffmpeg: str) -> None:
    job.out_dir.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + seconds
    with pytest.raises(Cancelled):
        plugins.run(ffmpeg, job, source_url=source, offset=0.1, poll=lambda: None, duration=None,
                    on_progress=None, cancel=lambda: time.monotonic() > deadline)


def _video_frames(out: Path) -> int:
    data = (out / "init-0.m4s").read_bytes() + b"".join(p.read_bytes() for p in sorted(out.glob("seg-0-*.m4s")))
    with av.open(io.BytesIO(data)) as container:
        return sum(1 for _ in container.decode(video=0))


def test_a_raising_live_plugin_is_turned_off_and_the_stream_goes_on(hls_source, tmp_path, test_plugins):  # noqa: F811
    test_plugins["slow"] = test_plugins["explodes"].__class__("slow", Slow, ())
    health = []
    plugins = LivePlugins([{"name": "explodes"}, {"name": "nothing"}], on_health=lambda k, d: health.append((k, d)))
    from core.media.ffmpeg import find_ffmpeg

    _run_for(plugins, _job(tmp_path / "out"), hls_source, 6, find_ffmpeg())
    assert ("plugin_failed", {"plugin": "explodes", "message": "the model ran out of coffee"}) in health
    assert plugins.turned_off == {"explodes": "the model ran out of coffee"}
    assert [s["name"] for s in plugins.active] == ["nothing"]
    assert _video_frames(tmp_path / "out") >= 30  # frames kept coming after the failure (frame 10)


def test_a_slow_live_chain_drops_frames_and_says_lagging(hls_source, tmp_path, test_plugins):  # noqa: F811
    test_plugins["slow"] = test_plugins["explodes"].__class__("slow", Slow, ())
    health = []
    plugins = LivePlugins([{"name": "slow"}], on_health=lambda k, d: health.append((k, d)))
    from core.media.ffmpeg import find_ffmpeg

    started = time.monotonic()
    _run_for(plugins, _job(tmp_path / "out"), hls_source, 8, find_ffmpeg())
    elapsed = time.monotonic() - started
    lag = [d for k, d in health if k == "lagging"]
    assert lag and lag[0]["lagging"] is True and lag[0]["dropped_frames"] > 0
    # Real time was kept: the output covers about as many frames as the wall time at 15 fps,
    # far more than the 5 fps the plugin could process (dropped frames were repeated).
    frames = _video_frames(tmp_path / "out")
    assert frames > 3 * 5 * (elapsed - 4), (frames, elapsed)
