"""Pull sources: a real RTSP camera (GStreamer's RTSP server) and an HLS live source served over HTTP."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import free_port
from tests.live.conftest import kill, need
from tests.live.sources import hls_live_source
from tests.origin.live import wait_for_port

HERE = Path(__file__).parent


def _gst_rtsp_available() -> bool:
    if not os.access("/usr/bin/python3", os.X_OK):
        return False
    probe = subprocess.run(["/usr/bin/python3", "-c", "import gi; gi.require_version('GstRtspServer', '1.0');"
                            "from gi.repository import GstRtspServer, Gst; Gst.init(None);"
                            "assert Gst.ElementFactory.find('x264enc')"], capture_output=True, check=False)
    return probe.returncode == 0


def _playing(stack, stream: dict) -> str:
    live = stack.wait(stream["id"], ("active",), timeout=40)
    assert live["plan"]["renditions"][0]["height"] <= 240  # never above the source
    media = stack.play(stream["playback"]["hls"])
    assert media.status_code == 200, media.text
    return media.text


def test_pull_rtsp_camera(live_stack):
    need(_gst_rtsp_available(), "GStreamer RTSP server (python3-gi gir1.2-gst-rtsp-server-1.0 "
                                "gstreamer1.0-plugins-ugly gstreamer1.0-plugins-good)")
    port = free_port()
    server = subprocess.Popen(["/usr/bin/python3", str(HERE / "rtsp_server.py"), str(port)],
                              stdout=subprocess.PIPE, start_new_session=True)
    try:
        wait_for_port(port, proc=server)
        stream = live_stack.create(source_url=f"rtsp://127.0.0.1:{port}/cam", record=False)
        assert stream["status"] == "connecting" and stream["ingest"]["rtmp"] is None
        assert "#EXT-X-STREAM-INF" in _playing(live_stack, stream)
        live_stack.client.post(f"/v1/live-streams/{stream['id']}/stop")
        live_stack.wait(stream["id"], ("ended",), timeout=20)
    finally:
        kill(server)


@pytest.fixture
def hls_source(tmp_path):
    """ffmpeg writing a live HLS playlist (1 s segments, sliding) into a directory served over HTTP."""
    with hls_live_source(tmp_path / "hls") as url:
        yield url


def test_pull_hls_source(live_stack, hls_source):
    stream = live_stack.create(source_url=hls_source, segment_duration=1, record=True)
    assert "#EXT-X-STREAM-INF" in _playing(live_stack, stream)
    time.sleep(2)
    live_stack.client.post(f"/v1/live-streams/{stream['id']}/stop")
    ended = live_stack.wait(stream["id"], ("ended",), timeout=20)
    asset = live_stack.client.get(f"/v1/assets/{ended['recording_asset_id']}").json()
    assert asset["status"] == "ready" and asset["duration"] > 1


def test_pull_source_unreachable_errors(live_stack):
    stream = live_stack.create(source_url=f"rtsp://127.0.0.1:{free_port()}/nothing", record=False)
    failed = live_stack.wait(stream["id"], ("errored",), timeout=30)
    assert failed["error"]["code"] == "source_unreachable"
