"""`abr dev` serves on embedded defaults, quietly, says whether live push works, and SIGTERM leaves no
process it started running and no error line behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from cli.dev import banner
from core.live import srtlib
from core.live.ingest import find_nginx, find_rtmp_module
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


def _start_dev(tmp_path, **env_extra: str) -> tuple[subprocess.Popen, Path, int]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ABR_")}
    # A free RTMP port: another test's ingest on 1935 would read as "taken", not as this one's.
    env.update(ABR_DATA_DIR=str(tmp_path / "data"), ABR_RTMP_PORT=str(free_port()), PYTHONUNBUFFERED="1",
               ABR_SRT_PORT=str(free_port()), ABR_SRT_RELAY_PORT=str(free_port()), **env_extra)
    log = tmp_path / "dev.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "cli.main", "dev", "--port", str(port)], env=env,
                                stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 90
    while "Ctrl-C stops everything" not in log.read_text() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.2)
    return proc, log, port


def _push_stream(base: str, key: str) -> dict:
    r = httpx.post(f"{base}/v1/live-streams", json={}, headers={"Authorization": f"Bearer {key}"}, timeout=10)
    assert r.status_code == 201, r.text
    return r.json()["ingest"]


def _stop_cleanly(proc: subprocess.Popen, log: Path) -> str:
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0
    text = log.read_text()
    for bad in ("ERROR", "Traceback", "signal 15", "Warning"):
        assert bad not in text, text[-3000:]
    return text


def test_dev_serves_ready_and_sigterm_stops_everything(tmp_path):
    proc, log, port = _start_dev(tmp_path)
    try:
        text = log.read_text()
        assert "API key:" in text, text[-3000:]
        key = text.split("API key:", 1)[1].split()[0]
        data = tmp_path / "data"  # first run: strong secrets, kept for the next run, owner-only
        assert (data / "api-key").read_text().strip() == key
        for name in ("signing-key", "ingest-secret", "api-key"):
            assert (data / name).stat().st_mode & 0o777 == 0o600, name
            assert len((data / name).read_text().strip()) >= 32, name
        base = f"http://127.0.0.1:{port}"
        # Quiet: the banner is all there is (no Celery banners, migrations, ffmpeg or HTTP logs before it).
        assert text.startswith(f"abr dev is up: {base}\n"), text[:3000]
        assert len(text.splitlines()) <= 10
        assert f"export ABR_URL={base} ABR_API_KEY={key}" in text
        if find_nginx() and find_rtmp_module():  # .ci/run installs nginx + libnginx-mod-rtmp
            assert "RTMP ingest:  up (push to rtmp://127.0.0.1:" in text
            assert _push_stream(base, key)["rtmp_status"] == {"available": True, "reason": None}
        else:
            assert not os.environ.get("CI"), "CI machines have nginx and its RTMP module"
            assert "RTMP ingest:  off (" in text and "sudo apt-get install nginx libnginx-mod-rtmp" in text
        if srtlib.find_library():  # .ci/run installs libsrt1.5-openssl
            assert "SRT ingest:   up (push to srt://127.0.0.1:" in text, text
            assert _push_stream(base, key)["srt_status"] == {"available": True, "reason": None}
        else:
            assert not os.environ.get("CI"), "CI machines have libsrt"
            assert "SRT ingest:   off (libsrt is not installed" in text
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
        text = _stop_cleanly(proc, log)
        assert text.rstrip().endswith("Ctrl-C stops everything."), text[-2000:]  # nothing printed on the way out
        time.sleep(0.5)
        assert [p for p in started if _alive(p)] == []
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_dev_without_the_rtmp_module_says_how_to_turn_live_push_on(tmp_path):
    # Debian without libnginx-mod-rtmp, simulated: the module path points at nothing.
    proc, log, port = _start_dev(tmp_path, ABR_RTMP_MODULE=str(tmp_path / "missing" / "ngx_rtmp_module.so"))
    try:
        text = log.read_text()
        install = "sudo apt-get install nginx libnginx-mod-rtmp"
        missing = "nginx's RTMP module is" if find_nginx() else "nginx is"
        assert f"RTMP ingest:  off ({missing} not installed; to turn live push on: {install})" in text, text[-3000:]
        key = text.split("API key:", 1)[1].split()[0]
        ingest = _push_stream(f"http://127.0.0.1:{port}", key)
        assert ingest["rtmp"].startswith("rtmp://127.0.0.1:")  # the URL stays: it works once the module is there
        assert ingest["rtmp_status"]["available"] is False and install in ingest["rtmp_status"]["reason"]
        _stop_cleanly(proc, log)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_banner_exact():
    assert banner(url="http://127.0.0.1:8000", key="abr_k", ingest="off (why)", data_dir="/d", log="/d/dev.log") == (
        "abr dev is up: http://127.0.0.1:8000\n"
        "  dashboard:    http://127.0.0.1:8000/\n"
        "  API docs:     http://127.0.0.1:8000/docs\n"
        "  API key: abr_k\n"
        "  RTMP ingest:  off (why)\n"
        "  data dir:     /d  (component output: /d/dev.log)\n"
        "  CLI:          export ABR_URL=http://127.0.0.1:8000 ABR_API_KEY=abr_k\n"
        "Ctrl-C stops everything.")


def test_banner_names_the_srt_ingest_when_given():
    text = banner(url="http://h", key="k", ingest="off (why)", data_dir="/d", log=None, srt="up (push to srt://h:1)")
    assert text.splitlines()[4:6] == ["  RTMP ingest:  off (why)", "  SRT ingest:   up (push to srt://h:1)"]
