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
from core.media.plugins import Installed
from tests.plugins.conftest import red_mark, test_plugins  # noqa: F401  (fixtures)


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
    health = []
    plugins = LivePlugins([{"name": "explodes"}, {"name": "nothing"}], on_health=lambda k, d: health.append((k, d)))
    from core.media.ffmpeg import find_ffmpeg

    _run_for(plugins, _job(tmp_path / "out"), hls_source, 6, find_ffmpeg())
    assert ("plugin_failed", {"plugin": "explodes", "message": "the model ran out of coffee"}) in health
    assert plugins.turned_off == {"explodes": "the model ran out of coffee"}
    assert [s["name"] for s in plugins.active] == ["nothing"]
    assert _video_frames(tmp_path / "out") >= 30  # frames kept coming after the failure (frame 10)


def test_a_slow_live_chain_drops_frames_and_says_lagging(hls_source, tmp_path, test_plugins):  # noqa: F811
    test_plugins["slow"] = Installed("slow", Slow, ())
    health = []
    plugins = LivePlugins([{"name": "slow"}], on_health=lambda k, d: health.append((k, d)))
    from core.media.ffmpeg import find_ffmpeg

    started = time.monotonic()
    _run_for(plugins, _job(tmp_path / "out"), hls_source, 20, find_ffmpeg())
    elapsed = time.monotonic() - started
    lag = [d for k, d in health if k == "lagging"]
    assert lag and lag[0]["lagging"] is True and lag[0]["dropped_frames"] > 0
    # Real time was kept: the output runs at the source's 15 fps less a bounded lag (MAX_LAG,
    # start-up), far more frames than the 5 fps the plugin could process (drops were repeated).
    frames = _video_frames(tmp_path / "out")
    assert frames > 1.6 * 5 * (elapsed - 3), (frames, elapsed, health)


def _first_jpeg(url: str) -> np.ndarray:
    """The first picture of a multipart/x-mixed-replace MJPEG stream (or a plain JPEG)."""
    import httpx

    data = b""
    with httpx.stream("GET", url, timeout=20) as r:
        assert r.status_code == 200, r.status_code
        for chunk in r.iter_bytes():
            data += chunk
            start = data.find(b"\xff\xd8")
            end = data.find(b"\xff\xd9", start + 2)
            if start >= 0 and end > 0:
                with av.open(io.BytesIO(data[start:end + 2]), format="mjpeg") as c:
                    return next(c.decode(video=0)).to_ndarray(format="rgb24")
    raise AssertionError("no JPEG in the stream")


def _assert_red_mark(picture: np.ndarray, where: str) -> None:
    h, w = picture.shape[:2]
    size, margin = w * 0.25, w * 0.03  # top-left, 25 % of the width
    cy, cx = int(margin + size / 2), int(margin + size / 2)
    r, g, b = picture[cy - 2:cy + 2, cx - 2:cx + 2].reshape(-1, 3).mean(axis=0)
    assert r > 180 and g < 80 and b < 80, (where, r, g, b)


def test_camera_page_shows_processed_frames_in_preview_and_hls(live_stack, red_mark):  # noqa: F811
    need(_gst_rtsp_available(), "GStreamer RTSP server (python3-gi gir1.2-gst-rtsp-server-1.0 "
                                "gstreamer1.0-plugins-ugly gstreamer1.0-plugins-good)")
    overlay = live_stack.client.post("/v1/overlays", content=red_mark.read_bytes()).json()
    port = free_port()
    server = subprocess.Popen(["/usr/bin/python3", str(HERE / "rtsp_server.py"), str(port)],
                              stdout=subprocess.PIPE, start_new_session=True)
    try:
        wait_for_port(port, proc=server)
        stream = live_stack.create(source_url=f"rtsp://127.0.0.1:{port}/cam", record=False, segment_duration=1,
                                   frame_plugins=[{"name": "watermark", "options": {
                                       "image": overlay["id"], "position": "top-left", "width": 0.25}},
                                       {"name": "timecode", "options": {"source": "wall_clock",
                                                                        "position": "bottom-right"}}])
        live = live_stack.wait(stream["id"], ("active",), timeout=40)
        assert live["settings"]["frame_plugins"][0]["name"] == "watermark"
        base = stream["playback"]["hls"].rsplit("/", 1)[0]
        _assert_red_mark(_first_jpeg(f"{base}/preview.mjpeg"), "preview.mjpeg")
        master = live_stack.play(stream["playback"]["hls"]).text
        variant = next(line for line in master.splitlines() if line and not line.startswith("#"))
        variant_url = f"{base}/{variant}"
        media = live_stack.play(variant_url).text
        init = next(line.split('URI="')[1].split('"')[0] for line in media.splitlines() if "EXT-X-MAP" in line)
        segment = [line for line in media.splitlines() if line and not line.startswith("#")][-1]
        folder = variant_url.rsplit("/", 1)[0]
        data = live_stack.play(f"{folder}/{init}").content + live_stack.play(f"{folder}/{segment}").content
        with av.open(io.BytesIO(data)) as c:
            _assert_red_mark(next(c.decode(video=0)).to_ndarray(format="rgb24"), "HLS segment")
        health = live_stack.get(stream["id"])["plan"].get("frame_plugins", {"turned_off": []})
        assert health["turned_off"] == []
        live_stack.client.post(f"/v1/live-streams/{stream['id']}/stop")
        live_stack.wait(stream["id"], ("ended",), timeout=20)
    finally:
        kill(server)
