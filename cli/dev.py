"""`abr dev`: migrate, then run the API and one worker as children until told to stop.

Each child gets its own process group so that on SIGINT/SIGTERM the whole
tree it started (Celery's pool processes, ffmpeg) is signalled at once and
nothing outlives `abr dev`.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import httpx

from cli.local_secrets import ensure_api_key, prepare_secrets
from cli.migrate import upgrade
from core.config import Settings

STOP_GRACE_S = 10.0


def _spawn(args: list[str], env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "cli.main", *args], env=env, start_new_session=True)


def stop_groups(children: list[subprocess.Popen], grace: float = STOP_GRACE_S) -> None:
    """SIGTERM each child's process group, wait up to `grace` s, then SIGKILL whatever is left."""
    for child in children:
        if child.poll() is None:
            try:
                os.killpg(child.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
    deadline = time.monotonic() + grace
    for child in children:
        try:
            child.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            pass
    # Whatever is left in the groups (a stuck ffmpeg, a pool process) is killed.
    for child in children:
        try:
            os.killpg(child.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        child.wait()


def _wait_ready(url: str, api: subprocess.Popen, timeout: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and api.poll() is None:
        try:
            if httpx.get(f"{url}/healthz", timeout=1.0).status_code == 200:
                return True
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    return False


def run_dev(settings: Settings) -> int:
    settings, _ = prepare_secrets(settings)  # strong signing key and ingest secret, kept in the data dir
    upgrade(settings.resolved_database_url)
    key, _ = ensure_api_key(settings)
    env = dict(os.environ, ABR_DATA_DIR=str(settings.data_dir), ABR_HOST=settings.host, ABR_PORT=str(settings.port))
    stopping = False

    def _on_signal(signum, _frame) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    children = [_spawn(["api"], env), _spawn(["worker", "--queues", "transcode,default", "--concurrency", "1"], env),
                _spawn(["worker", "--queues", "live", "--concurrency", "2"], env)]  # live jobs run for hours
    ingest = _start_ingest(settings)  # not watched: live push is optional in dev
    url = f"http://{settings.host}:{settings.port}"
    try:
        if _wait_ready(url, children[0]):
            print(f"abr dev is up: {url}  (dashboard {url}/, API docs {url}/docs)", flush=True)
            if ingest is not None:
                print(f"RTMP ingest: rtmp://{settings.host}:{settings.rtmp_port}/live/<stream_key>", flush=True)
            print(f"API key: {key}", flush=True)
            print(f"data dir: {settings.data_dir}", flush=True)
        while not stopping:
            if any(c.poll() is not None for c in children):
                print("a child process exited; stopping", file=sys.stderr, flush=True)
                return 1
            time.sleep(0.2)
        return 0
    finally:
        stop_groups(children + ([ingest] if ingest is not None else []))


def _start_ingest(settings: Settings) -> subprocess.Popen | None:
    """nginx + RTMP module for live push, when installed and the RTMP port is free."""
    import socket

    from cli.ingest import start_ingest

    with socket.socket() as s:
        if s.connect_ex(("127.0.0.1", settings.rtmp_port)) == 0:
            print(f"RTMP port {settings.rtmp_port} is taken; live push ingest not started", file=sys.stderr)
            return None
    return start_ingest(settings, start_new_session=True)
