"""Live tests run real peers: the API under uvicorn, a real Celery worker, nginx with the RTMP module,
the SRT listener (`abr ingest --no-rtmp`, libsrt), ffmpeg.

Skipped with the reason when nginx, its RTMP module or libsrt is missing,
unless CI is set (then they fail: .ci/run installs `nginx
libnginx-mod-rtmp libsrt1.5-openssl`).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from cli.ingest import find_nginx, start_ingest, start_srt_ingest
from core.live import srtlib
from core.live.ingest import find_rtmp_module
from core.media.ffmpeg import find_ffmpeg
from tests.conftest import free_port
from tests.helpers import TEST_KEY, settings_from
from tests.origin.live import uvicorn_origin, wait_for_port
from tests.workers.worker_proc import running_worker


def need(condition: bool, what: str) -> None:
    if condition:
        return
    if os.environ.get("CI"):
        pytest.fail(f"{what} is missing in CI")
    pytest.skip(f"{what} is not installed")


@dataclass
class LiveStack:
    api: str
    rtmp: str  # rtmp://127.0.0.1:<port>/live
    client: httpx.Client
    data_dir: Path
    log: Path
    srt_port: int = 0  # the SRT listener's UDP port
    srt_relay_port: int = 0  # where it re-serves each publisher's MPEG-TS (what live workers read)
    api_log: Path | None = None  # the API server's own log (DEBUG, like the worker's)
    database_url: str = ""

    def create(self, **body) -> dict:
        r = self.client.post("/v1/live-streams", json=body)
        assert r.status_code == 201, r.text
        return r.json()

    def get(self, stream_id: str) -> dict:
        return self.client.get(f"/v1/live-streams/{stream_id}").json()

    def wait(self, stream_id: str, statuses, timeout: float = 30) -> dict:
        deadline = time.monotonic() + timeout
        stream = {}
        while time.monotonic() < deadline:
            stream = self.get(stream_id)
            if stream["status"] in statuses:
                return stream
            time.sleep(0.2)
        raise AssertionError(f"live stream not {statuses} after {timeout}s: {stream}\n{self.log.read_text()[-3000:]}")

    def play(self, url: str) -> httpx.Response:
        return httpx.get(url, timeout=10)


@pytest.fixture(scope="package")
def live_stack(tmp_path_factory) -> Iterator[LiveStack]:
    need(find_nginx() is not None, "nginx (Debian package nginx)")
    need(find_rtmp_module() is not None, "nginx's RTMP module (Debian package libnginx-mod-rtmp)")
    need(srtlib.find_library() is not None, "libsrt (Debian package libsrt1.5-openssl)")
    root = tmp_path_factory.mktemp("live")
    rtmp_port, api_port, srt_port, relay_port = free_port(), free_port(), free_port(), free_port()
    env = {"ABR_ENV": "test", "ABR_DATA_DIR": str(root / "data"), "ABR_API_KEYS": TEST_KEY,
           "ABR_RTMP_PORT": str(rtmp_port), "ABR_LIVE_RECONNECT_GRACE": "6",
           # A killed live worker's stream moves within ~4 s (tests/live/test_takeover.py).
           "ABR_LIVE_HEARTBEAT_INTERVAL": "1", "ABR_LIVE_TAKEOVER_AFTER": "3", "ABR_ALLOW_PRIVATE_URLS": "1",
           # The operator path for cameras on a private network: loopback sources are named, one address only.
           "ABR_LIVE_PULL_ALLOW_NETWORKS": "127.0.0.1/32",
           # DEBUG: tests/live/test_live_encrypted.py checks that no log line, at any level, holds a key.
           "ABR_PORT": str(api_port), "ABR_LOG_LEVEL": "DEBUG",
           "ABR_SRT_PORT": str(srt_port), "ABR_SRT_RELAY_PORT": str(relay_port)}
    settings = settings_from(env)
    from cli.migrate import upgrade

    upgrade(settings.resolved_database_url)
    log = root / "worker.log"
    # Four workers: the SRT test runs four publishers at once.
    api_log = root / "api.log"
    with uvicorn_origin(env, port=api_port, log_path=api_log) as (api, _), running_worker(env, log_path=log, queues="live",
                                                                      concurrency=4):
        nginx = start_ingest(settings, api_url=api, prefix=root / "ingest")
        srt_log = open(root / "srt.log", "ab")
        srt = start_srt_ingest(settings, api_url=api, env=dict(os.environ, **env), stdout=srt_log, stderr=srt_log)
        try:
            wait_for_port(rtmp_port, proc=nginx)
            wait_for_port(relay_port, proc=srt)  # the relay opens right after the SRT port is bound
            client = httpx.Client(base_url=api, headers={"Authorization": f"Bearer {TEST_KEY}"}, timeout=10)
            yield LiveStack(api=api, rtmp=f"rtmp://127.0.0.1:{rtmp_port}/live", client=client,
                            data_dir=root / "data", log=log, srt_port=srt_port, srt_relay_port=relay_port,
                            api_log=api_log, database_url=settings.resolved_database_url)
            client.close()
        finally:
            nginx.terminate()
            nginx.wait(10)
            srt.terminate()
            srt.wait(10)
            srt_log.close()


def push(url: str, *, seconds: float, size: str = "640x360", fps: int = 25, log: Path | None = None,
         realtime: bool = True) -> subprocess.Popen:
    """ffmpeg publishing a generated camera-like source (picture + tone) in real time."""
    argv = [find_ffmpeg(), "-hide_banner", "-loglevel", "error", "-nostdin"]
    argv += ["-re"] if realtime else []
    argv += ["-f", "lavfi", "-i", f"testsrc2=size={size}:rate={fps}", "-f", "lavfi", "-i", "sine=f=440:sample_rate=48000",
             "-t", str(seconds), "-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-g", str(fps),
             "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "64k", "-f", "flv", url]
    out = open(log, "ab") if log else subprocess.DEVNULL
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=out, start_new_session=True)


def kill(proc: subprocess.Popen, sig=signal.SIGKILL) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, sig)
    proc.wait(10)


def chromium() -> str:
    path = shutil.which("chromium") or "/usr/bin/chromium"
    need(os.access(path, os.X_OK), "chromium (Debian package chromium)")
    return path
