"""Live sources on loopback for pull tests: ffmpeg writing a sliding HLS playlist served over HTTP."""

from __future__ import annotations

import functools
import http.server
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from core.media.ffmpeg import find_ffmpeg
from tests.conftest import free_port


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:  # one line per request would drown the test output
        pass


@contextmanager
def hls_live_source(root: Path, *, size: str = "320x180", fps: int = 15, segment: int = 1) -> Iterator[str]:
    """Yield http://127.0.0.1:<port>/live.m3u8: a generated picture + tone, real time, 5 segments listed."""
    root.mkdir(parents=True, exist_ok=True)
    handler = functools.partial(_QuietHandler, directory=str(root))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    writer = subprocess.Popen([find_ffmpeg(), "-hide_banner", "-loglevel", "error", "-nostdin", "-re",
                               "-f", "lavfi", "-i", f"testsrc2=size={size}:rate={fps}",
                               "-f", "lavfi", "-i", "sine=f=300:sample_rate=44100",
                               "-c:v", "libx264", "-preset", "ultrafast", "-g", str(fps * segment), "-c:a", "aac",
                               "-f", "hls", "-hls_time", str(segment), "-hls_list_size", "5",
                               "-hls_flags", "delete_segments", str(root / "live.m3u8")],
                              stdout=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 15
        while not (root / "live.m3u8").exists():
            if writer.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"ffmpeg wrote no HLS playlist (exit {writer.poll()})")
            time.sleep(0.1)
        yield f"http://127.0.0.1:{httpd.server_address[1]}/live.m3u8"
    finally:
        if writer.poll() is None:
            writer.kill()
        writer.wait(10)
        httpd.shutdown()
        httpd.server_close()
