"""What the fault-injection tests share: a worker that can be SIGKILLed and restarted, waiting, comparing outputs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from fastapi.testclient import TestClient
from sqlmodel import Session

from core.db.models import Job
from core.services.jobs import latest_job
from tests.helpers import app_client, upload_asset

# Fast crash recovery for tests: a silent job is resent after 3 s, a lost queued message after 2 s.
FAST_JOBS = {"ABR_JOB_STALE_AFTER": "3", "ABR_RECONCILE_INTERVAL": "1", "ABR_JOB_MAX_ATTEMPTS": "5",
             "ABR_JOB_RESEND_AFTER": "2"}
# Two codec families: the first is published progressively, the second through staging.
SETTINGS = {"codecs": ["h264", "vp8"], "segment_duration": 1}


class Worker:
    """`abr worker` in its own process group, so one SIGKILL takes the pool and ffmpeg with it."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.env, self.log_path = env, log_path
        self.proc: subprocess.Popen | None = None

    def start(self, **extra_env: str) -> Worker:
        env = dict(os.environ, **self.env, **extra_env)
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", "cli.main", "worker", "--queues", "transcode,default",
                                          "--concurrency", "1"], env=env, stdout=log, stderr=subprocess.STDOUT,
                                         start_new_session=True)
        return self

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL the whole group: no shutdown handler, no acknowledgement, nothing flushed."""
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(timeout=10)
        _wait_group_gone(self.proc.pid)

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout=15)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                pass
        self.kill()
        self.proc = None

    def group_commands(self) -> list[list[str]]:
        """The command lines of every process in the worker's group (pool processes, ffmpeg)."""
        return _group_commands(self.proc.pid) if self.proc is not None else []

    def wait_for_ffmpeg(self, needle: str, timeout: float = 90) -> None:
        """Until an ffmpeg whose arguments contain `needle` (e.g. 'libvpx') runs in the worker's group."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for argv in self.group_commands():
                if argv and "ffmpeg" in Path(argv[0]).name and needle in argv:
                    return
            if not self.alive:
                raise AssertionError(f"worker exited:\n{self.log_path.read_text()[-3000:]}")
            time.sleep(0.02)
        raise AssertionError(f"no ffmpeg with {needle} after {timeout} s:\n{self.log_path.read_text()[-3000:]}")


def _group_commands(pgid: int) -> list[list[str]]:
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            if int(fields[2]) != pgid or fields[0] == "Z":
                continue
            argv = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
        except (OSError, IndexError, ValueError):
            continue
        found.append([a.decode(errors="replace") for a in argv if a])
    return found


def _wait_group_gone(pgid: int, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while _group_commands(pgid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _group_commands(pgid), f"processes outlived the worker: {_group_commands(pgid)}"


@dataclass
class Stack:
    env: dict[str, str]
    client: TestClient
    worker: Worker
    data_dir: Path

    def upload(self, path: Path, settings: dict | None = SETTINGS) -> dict:
        return upload_asset(self.client, path, settings)

    def asset(self, asset_id: str) -> dict | None:
        """The asset, or None while the API cannot answer (a database restart)."""
        r = self.client.get(f"/v1/assets/{asset_id}")
        return r.json() if r.status_code == 200 else None

    def wait(self, asset_id: str, until=("ready", "errored"), timeout: float = 120) -> dict:
        deadline, asset = time.monotonic() + timeout, None
        while time.monotonic() < deadline:
            asset = self.asset(asset_id) or asset
            if asset and asset["status"] in until:
                return asset
            time.sleep(0.2)
        raise AssertionError(f"asset {asset_id} still {asset and asset['status']} after {timeout} s\n"
                             + self.worker.log_path.read_text()[-4000:])

    def job(self, asset_id: str) -> Job:
        with Session(self.client.app.state.ctx.engine) as s:
            return latest_job(s, asset_id)

    def media(self, asset_id: str) -> dict[str, bytes]:
        root = self.data_dir / "storage" / "media" / asset_id
        return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@contextmanager
def running_stack(tmp_path: Path, extra_env: dict[str, str] | None = None, *,
                  start_worker: bool = True) -> Iterator[Stack]:
    data_dir = tmp_path / "data"
    env = {"ABR_ENV": "test", "ABR_DATA_DIR": str(data_dir), **FAST_JOBS, **(extra_env or {})}
    worker = Worker(env, tmp_path / "worker.log")
    with app_client(env) as client:
        if start_worker:
            worker.start()
        try:
            yield Stack(env=env, client=client, worker=worker, data_dir=data_dir)
        finally:
            worker.stop()


def normalized_presentation(data: bytes) -> dict:
    """presentation.json with its tracks in a fixed order (a retried family may publish in another order)."""
    p = json.loads(data)
    p["tracks"] = sorted(p["tracks"], key=lambda t: t["rendition"]["id"])
    return p


def assert_same_outputs(clean: dict[str, bytes], other: dict[str, bytes]) -> None:
    assert sorted(clean) == sorted(other), (sorted(clean), sorted(other))
    for name, data in clean.items():
        if name == "presentation.json":
            assert normalized_presentation(data) == normalized_presentation(other[name])
        else:
            assert data == other[name], f"{name} differs from the clean run"
