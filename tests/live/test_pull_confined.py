"""Live pulls end to end: confined to allowed addresses (HLS segments included), errors by class, one connection.

The stack (tests/live/conftest.py) allows exactly 127.0.0.1/32 for pulls, the
operator path for cameras on a private network.
"""

from __future__ import annotations

import functools
import http.server
import subprocess
import threading
import time

import httpx
import pytest

from core.media.ffmpeg import find_ffmpeg
from tests.conftest import free_port
from tests.live.conftest import kill


@pytest.fixture
def hls_pointing_elsewhere(tmp_path):
    """A live playlist served on 127.0.0.1 whose real, servable segments are named on 127.0.0.2."""
    root = tmp_path / "hls"
    root.mkdir()
    subprocess.run([find_ffmpeg(), "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i",
                    "testsrc2=size=320x180:rate=15", "-t", "6", "-c:v", "libx264", "-preset", "ultrafast", "-g", "15",
                    "-f", "hls", "-hls_time", "2", "-hls_list_size", "0", str(root / "seg.m3u8")], check=True)
    port = free_port()
    segments = sorted(p.name for p in root.glob("*.ts"))
    (root / "live.m3u8").write_text("#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:0\n"
                                    + "".join(f"#EXTINF:2.0,\nhttp://127.0.0.2:{port}/{s}\n" for s in segments))
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *a, **k: None
    httpd = http.server.ThreadingHTTPServer(("0.0.0.0", port), handler)  # 127.0.0.2 reaches it too
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        assert httpx.get(f"http://127.0.0.2:{port}/{segments[0]}", timeout=5).status_code == 200  # servable
        yield f"http://127.0.0.1:{port}/live.m3u8"
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_hls_segment_on_a_non_allowed_address_is_refused(live_stack, hls_pointing_elsewhere):
    stream = live_stack.create(source_url=hls_pointing_elsewhere, record=False)  # the playlist host is allowed
    failed = live_stack.wait(stream["id"], ("errored",), timeout=40)
    assert failed["error"]["code"] == "address_not_allowed", failed
    assert "127.0.0.2" not in failed["error"]["message"]
    assert failed["plan"] is None  # nothing was read from the refused address


def test_refused_connection_is_reported_by_class(live_stack):
    stream = live_stack.create(source_url=f"rtmp://127.0.0.1:{free_port()}/live/cam", record=False)
    failed = live_stack.wait(stream["id"], ("errored",), timeout=30)
    assert failed["error"]["code"] == "source_unreachable"
    assert "the source refused the connection" in failed["error"]["message"]
    assert "127.0.0.1" not in failed["error"]["message"] and "tcp://" not in failed["error"]["message"]


def _one_connection_source(kind: str, port: int, seconds: int) -> tuple[subprocess.Popen, str]:
    """ffmpeg serving a generated camera to exactly one client (`-listen 1`), then exiting."""
    if kind == "rtmp":
        out, url = ["-f", "flv", "-listen", "1"], f"rtmp://127.0.0.1:{port}/live/cam"
    else:
        out, url = ["-f", "mpegts", "-listen", "1"], f"http://127.0.0.1:{port}/cam.ts"
    argv = [find_ffmpeg(), "-hide_banner", "-loglevel", "error", "-nostdin", "-re",
            "-f", "lavfi", "-i", "testsrc2=size=320x180:rate=15", "-f", "lavfi", "-i", "sine=f=440:sample_rate=48000",
            "-t", str(seconds), "-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-g", "15",
            "-pix_fmt", "yuv420p", "-c:a", "aac", *out, url]  # fmt: skip
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True), url


@pytest.mark.parametrize("kind", ["rtmp", "http-mpegts"])
def test_pull_from_a_one_connection_source(live_stack, kind):
    port = free_port()
    source, url = _one_connection_source(kind, port, seconds=12)
    try:
        deadline = time.monotonic() + 10
        while source.poll() is None and time.monotonic() < deadline:  # listening (nothing to connect-test: one try)
            if any(f":{port:04X} " in line and " 0A " in line for line in open("/proc/net/tcp")):
                break
            time.sleep(0.1)
        stream = live_stack.create(source_url=url, record=False)
        live = live_stack.wait(stream["id"], ("active", "errored"), timeout=30)
        assert live["status"] == "active", live  # the one connection served both the stream info and the encode
        assert live["plan"]["renditions"][0]["height"] == 180
        media = live_stack.play(stream["playback"]["hls"])
        assert media.status_code == 200 and "#EXT-X-STREAM-INF" in media.text
        live_stack.client.post(f"/v1/live-streams/{stream['id']}/stop")
        assert live_stack.wait(stream["id"], ("ended",), timeout=20)["status"] == "ended"
    finally:
        kill(source)


def test_rtsp_redirect_is_not_followed(live_stack):
    """ffmpeg alone would follow an RTSP 302 anywhere; the relay hangs up and the target is never contacted."""
    import socket

    target = socket.create_server(("0.0.0.0", 0))  # reachable as 127.0.0.2 too
    target.settimeout(0.2)
    contacted = []

    def watch():
        while True:
            try:
                conn, _ = target.accept()
                contacted.append(conn.recv(1024))
                conn.close()
            except TimeoutError:
                continue
            except OSError:
                return

    camera = socket.create_server(("127.0.0.1", 0))

    def redirect():
        while True:
            try:
                conn, _ = camera.accept()
            except OSError:
                return
            request = conn.recv(4096).decode(errors="replace")
            cseq = next((line.split(":", 1)[1].strip() for line in request.splitlines()
                         if line.lower().startswith("cseq")), "1")
            conn.sendall(f"RTSP/1.0 302 Moved\r\nCSeq: {cseq}\r\n"
                         f"Location: rtsp://127.0.0.2:{target.getsockname()[1]}/secret\r\n\r\n".encode())
            conn.close()

    threading.Thread(target=watch, daemon=True).start()
    threading.Thread(target=redirect, daemon=True).start()
    try:
        stream = live_stack.create(source_url=f"rtsp://127.0.0.1:{camera.getsockname()[1]}/cam", record=False)
        failed = live_stack.wait(stream["id"], ("errored",), timeout=30)
        assert failed["error"]["code"] == "address_not_allowed", failed
        assert "redirect" in failed["error"]["message"]
        assert contacted == []
    finally:
        camera.close()
        target.close()


MPD = """<?xml version="1.0" encoding="utf-8"?>
<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" type="static" mediaPresentationDuration="PT6S" minBufferTime="PT2S"
     profiles="urn:mpeg:dash:profile:isoff-live:2011">
  <BaseURL>http://127.0.0.2:{port}/</BaseURL>
  <Period><AdaptationSet mimeType="video/mp4"><Representation id="v" bandwidth="100000" width="320" height="180"
      codecs="avc1.42c00d"><SegmentTemplate timescale="1000" duration="2000" initialization="init.mp4"
      media="seg-$Number$.m4s" startNumber="1"/></Representation></AdaptationSet></Period>
</MPD>
"""


def test_http_source_that_is_not_hls_cannot_name_other_hosts(live_stack, tmp_path):
    """The proxy rewrites HLS only; another URL-naming format (a DASH MPD) must not be demuxed at all."""
    import socket

    target = socket.create_server(("0.0.0.0", 0))
    target.settimeout(0.2)
    contacted = []

    def watch():
        while True:
            try:
                conn, _ = target.accept()
                contacted.append(conn.recv(1024))
                conn.close()
            except TimeoutError:
                continue
            except OSError:
                return

    threading.Thread(target=watch, daemon=True).start()
    root = tmp_path / "dash"
    root.mkdir()
    (root / "live.mpd").write_text(MPD.format(port=target.getsockname()[1]))
    port = free_port()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *a, **k: None
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        stream = live_stack.create(source_url=f"http://127.0.0.1:{port}/live.mpd", record=False)
        failed = live_stack.wait(stream["id"], ("errored",), timeout=40)
        assert failed["error"]["code"] == "source_unreachable", failed
        assert contacted == []
    finally:
        httpd.shutdown()
        httpd.server_close()
        target.close()
