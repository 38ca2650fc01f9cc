"""`abr dev` serves on embedded defaults, and SIGTERM leaves no process it started running."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.conftest import free_port


def _descendants(pid: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    found, stack = set(), [pid]
    while stack:
        for child in children.get(stack.pop(), []):
            if child not in found:
                found.add(child)
                stack.append(child)
    return found


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def test_dev_serves_ready_and_sigterm_stops_everything(tmp_path):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ABR_")}
    env.update(ABR_DATA_DIR=str(tmp_path / "data"), PYTHONUNBUFFERED="1")
    log = tmp_path / "dev.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "cli.main", "dev", "--port", str(port)], env=env,
                                stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 90
        while "API key:" not in log.read_text() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.2)
        text = log.read_text()
        assert "API key:" in text, text[-3000:]
        key = text.split("API key:", 1)[1].split()[0]
        data = tmp_path / "data"  # first run: strong secrets, kept for the next run, owner-only
        assert (data / "api-key").read_text().strip() == key
        for name in ("signing-key", "ingest-secret", "api-key"):
            assert (data / name).stat().st_mode & 0o777 == 0o600, name
            assert len((data / name).read_text().strip()) >= 32, name
        base = f"http://127.0.0.1:{port}"
        ready = httpx.get(f"{base}/readyz", timeout=10)
        assert ready.status_code == 200, ready.text
        assert all(c["ok"] for c in ready.json()["checks"].values())
        assert httpx.get(f"{base}/v1/assets", headers={"Authorization": f"Bearer {key}"}).status_code == 200
        assert httpx.get(f"{base}/v1/assets").status_code == 401
        # wait until the worker's pool process exists, so it is among those we check
        deadline = time.monotonic() + 30
        while len(_descendants(proc.pid)) < 3 and time.monotonic() < deadline:
            time.sleep(0.2)
        started = _descendants(proc.pid)
        assert len(started) >= 3, "api, worker and its pool process"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
        time.sleep(0.5)
        assert [p for p in started if _alive(p)] == []
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
