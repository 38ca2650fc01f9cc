"""Integrations fixtures: a real API server (uvicorn subprocess) and a real worker, sharing one data dir."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from cli.migrate import upgrade
from tests.conftest import REPO_ROOT, free_port
from tests.helpers import TEST_KEY, settings_from
from tests.media_fixtures import make_clip
from tests.workers.worker_proc import running_worker

TUS = {"Tus-Resumable": "1.0.0"}


def pytest_configure(config) -> None:
    config.addinivalue_line("markers", "slow: long-running (still run by default)")


@dataclass
class ApiServer:
    env: dict[str, str]
    port: int
    log: Path
    proc: subprocess.Popen | None = None
    command: str = "uvicorn"  # or "abr": `abr api`, Granian, the way it is deployed
    client: httpx.Client = field(default_factory=lambda: httpx.Client(
        headers={"Authorization": f"Bearer {TEST_KEY}"}, timeout=30))

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        log = open(self.log, "ab")  # noqa: SIM115 - owned by the child
        argv = [sys.executable, "-m", "uvicorn", "--factory", "cli.main:app_factory", "--host", "127.0.0.1",
                "--port", str(self.port), "--log-level", "warning"] if self.command == "uvicorn" else \
            [sys.executable, "-m", "cli.main", "api", "--host", "127.0.0.1", "--port", str(self.port)]
        self.proc = subprocess.Popen(
            argv,
            env=dict(os.environ, **self.env), cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.1)
        raise AssertionError("API did not start:\n" + self.log.read_text()[-3000:])

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, sig)
            self.proc.wait(timeout=15)
        self.proc = None

    def restart(self, sig: int = signal.SIGKILL) -> None:
        self.stop(sig)
        self.start()

    def direct_upload(self, settings: dict | None = None, cors_origin: str = "*") -> dict:
        r = self.client.post(f"{self.url}/v1/uploads", json={"settings": settings or {}, "cors_origin": cors_origin})
        assert r.status_code == 201, r.text
        return r.json()

    def wait_asset(self, asset_id: str, timeout: float = 90) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            asset = self.client.get(f"{self.url}/v1/assets/{asset_id}").json()
            if asset["status"] in ("ready", "errored"):
                return asset
            time.sleep(0.3)
        raise AssertionError(f"asset {asset_id} not done: {asset}")


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    """API + worker on embedded defaults, private URLs allowed (receivers and sources run on loopback),
    webhook retries after 0.5 s instead of minutes."""
    root = tmp_path_factory.mktemp("integrations")
    env = {"ABR_ENV": "test", "ABR_DATA_DIR": str(root / "data"), "ABR_API_KEYS": TEST_KEY,
           "ABR_ALLOW_PRIVATE_URLS": "1", "ABR_WEBHOOK_BACKOFF": "0.5,0.5,0.5,0.5,0.5", "ABR_LOG_LEVEL": "INFO"}
    upgrade(settings_from(env).resolved_database_url)
    api = ApiServer(env=env, port=free_port(), log=root / "api.log")
    api.start()
    try:
        with running_worker(env, log_path=root / "worker.log"):
            yield api
    finally:
        api.stop()


@pytest.fixture(scope="session")
def clip(tmp_path_factory) -> Path:
    return make_clip(tmp_path_factory.mktemp("clips") / "clip", duration=2.0, width=320, height=240)


def tus_upload(url: str, data: bytes, *, chunk: int = 1 << 20, metadata: str | None = None) -> str:
    """Create and fill a tus upload at a direct-upload URL; returns its Location."""
    headers = {**TUS, "Upload-Length": str(len(data))}
    if metadata:
        headers["Upload-Metadata"] = metadata
    r = httpx.post(url, headers=headers)
    assert r.status_code == 201, r.text
    location = r.headers["location"]
    for offset in range(0, len(data), chunk):
        r = httpx.patch(location, content=data[offset:offset + chunk], timeout=60, headers={
            **TUS, "Upload-Offset": str(offset), "Content-Type": "application/offset+octet-stream"})
        assert r.status_code == 204, r.text
    return location
