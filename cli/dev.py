"""`abr dev`: migrate, then run the API and one worker as children until told to stop.

Quiet by default: the components log at WARNING (errors still show), their
stdout (Celery's banners) goes to `<data dir>/dev.log`, and a short banner
with the URL, the key and whether live push works comes last. `-v` shows
everything as it happens.

Each child gets its own process group. Stopping asks each child's leader
first (Celery then stops its pool itself, a task finishing cleanly, rather
than every pool process being killed under it and logged as an error); after
STOP_GRACE_S whatever is left in the groups (a stuck ffmpeg) is killed, so
nothing outlives `abr dev`.
"""

from __future__ import annotations

import logging
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


def _spawn(args: list[str], env: dict[str, str], stdout=None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "cli.main", *args], env=env, start_new_session=True,
                            stdout=stdout)


def stop_groups(children: list[subprocess.Popen], grace: float = STOP_GRACE_S) -> None:
    """SIGTERM each child (its group's leader), wait up to `grace` s, then SIGKILL whatever is left in the groups."""
    for child in children:
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
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


def run_dev(settings: Settings, *, verbose: bool = False) -> int:
    if not verbose:
        logging.getLogger().setLevel(logging.WARNING)  # no migration or HTTP chatter before the banner
    settings, _ = prepare_secrets(settings)  # strong signing key and ingest secret, kept in the data dir
    upgrade(settings.resolved_database_url)
    key, _ = ensure_api_key(settings)
    env = dict(os.environ, ABR_DATA_DIR=str(settings.data_dir), ABR_HOST=settings.host, ABR_PORT=str(settings.port))
    log_path = settings.data_dir / "dev.log"
    quiet = [] if verbose else ["--quiet"]
    if not verbose and "ABR_LOG_LEVEL" not in os.environ:
        env["ABR_LOG_LEVEL"] = "WARNING"  # an explicit ABR_LOG_LEVEL still wins
    stopping = False

    def _on_signal(signum, _frame) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    with open(log_path, "ab") as log:  # the children hold their own copies of the descriptor
        out = None if verbose else log
        children = [_spawn(["api"], env, out),
                    _spawn(["worker", *quiet, "--queues", "transcode,default", "--concurrency", "1"], env, out),
                    _spawn(["worker", *quiet, "--queues", "live", "--concurrency", "2"], env, out)]  # live: hours
        ingest, ingest_note = _start_ingest(settings, stdout=out)  # not watched: live push is optional in dev
        srt = _start_srt_ingest(settings, env, stdout=out)
    url = f"http://{settings.host}:{settings.port}"
    try:
        if _wait_ready(url, children[0]):
            ingest_line = _ingest_line(settings, ingest, ingest_note)
            print(banner(url=url, key=key, ingest=ingest_line, data_dir=str(settings.data_dir),
                         log=None if verbose else str(log_path), srt=_srt_line(settings, srt)), flush=True)
        while not stopping:
            if any(c.poll() is not None for c in children):
                where = "" if verbose else f" (its output: {log_path})"
                print(f"a child process exited; stopping{where}", file=sys.stderr, flush=True)
                return 1
            time.sleep(0.2)
        return 0
    finally:
        stop_groups(children + [p for p in (ingest, srt) if p is not None])


def banner(*, url: str, key: str, ingest: str, data_dir: str, log: str | None, srt: str | None = None) -> str:
    """What `abr dev` prints once it is up: the last thing on the screen, short enough to read."""
    lines = [f"abr dev is up: {url}",
             f"  dashboard:    {url}/",
             f"  API docs:     {url}/docs",
             f"  API key: {key}",
             f"  RTMP ingest:  {ingest}",
             *([f"  SRT ingest:   {srt}"] if srt else []),
             f"  data dir:     {data_dir}" + (f"  (component output: {log})" if log else ""),
             f"  CLI:          export ABR_URL={url} ABR_API_KEY={key}",
             "Ctrl-C stops everything."]
    return "\n".join(lines)


def _start_ingest(settings: Settings, *, stdout=None) -> tuple[subprocess.Popen | None, str | None]:
    """nginx + RTMP module for live push when installed and the RTMP port is free; else (None, why not)."""
    from cli.ingest import missing, start_ingest
    from core.live.ingest import accepts_tcp

    why = missing(settings)
    if why:
        return None, why
    if accepts_tcp("127.0.0.1", settings.rtmp_port, timeout=0.3):
        return None, (f"port {settings.rtmp_port} is taken by another program; "
                      "set ABR_RTMP_PORT to run the ingest on another one")
    return start_ingest(settings, start_new_session=True, stdout=stdout, stderr=stdout), None


def _ingest_line(settings: Settings, ingest: subprocess.Popen | None, note: str | None,
                 timeout: float = 5.0) -> str:
    """`up (rtmp://…)` once nginx accepts on the RTMP port, else `off (why)`."""
    from core.live.ingest import accepts_tcp

    if ingest is None:
        return f"off ({note})"
    deadline = time.monotonic() + timeout
    while ingest.poll() is None and time.monotonic() < deadline:
        if accepts_tcp("127.0.0.1", settings.rtmp_port, timeout=0.3):
            return f"up (push to rtmp://{settings.host}:{settings.rtmp_port}/live/<stream_key>)"
        time.sleep(0.1)
    return f"off (nginx did not start; see {settings.data_dir / 'ingest' / 'error.log'})"


def _start_srt_ingest(settings: Settings, env: dict[str, str], *, stdout=None) -> subprocess.Popen | None:
    """The SRT listener (`abr ingest --no-rtmp`) when libsrt is installed and SRT is on."""
    from cli.ingest import start_srt_ingest

    return start_srt_ingest(settings, env=env, start_new_session=True, stdout=stdout, stderr=stdout)


def _srt_line(settings: Settings, srt: subprocess.Popen | None, timeout: float = 5.0) -> str:
    """`up (srt://…)` once the listener's relay accepts (it opens after the UDP port is bound), else `off (why)`."""
    from core.live.ingest import accepts_tcp

    if srt is None:
        return ("off (ABR_SRT_PORT=0)" if not settings.srt_port
                else "off (libsrt is not installed: sudo apt-get install libsrt1.5-openssl)")
    deadline = time.monotonic() + timeout
    while srt.poll() is None and time.monotonic() < deadline:
        if accepts_tcp("127.0.0.1", settings.srt_relay_port, timeout=0.3):
            return f"up (push to srt://{settings.host}:{settings.srt_port}?streamid=#!::r=<stream_key>,m=publish)"
        time.sleep(0.1)
    return (f"off (the SRT listener did not start: is udp {settings.srt_port} or tcp {settings.srt_relay_port} "
            "taken? set ABR_SRT_PORT / ABR_SRT_RELAY_PORT)")