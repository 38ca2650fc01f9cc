"""`abr api --front nginx`: nginx on the API's address, the API on a loopback port behind it.

nginx sends the segments of local VOD assets itself (`core/origin/front.py`);
everything else reaches the API unchanged. nginx is this process's child and
dies with it (`PR_SET_PDEATHSIG`), so stopping `abr api` stops both.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from core.config import Settings
from core.live.ingest import find_nginx
from core.origin.front import INSTALL_HINT, FrontPlan, find_perl_module, keys_env, render_conf
from core.services.playback import SigningKeys
from core.storage import open_storage
from core.storage.local import LocalStorage


def missing(settings: Settings) -> str | None:
    """Why the front cannot start here, with what to install; None when it can."""
    if find_nginx(settings.nginx) is None:
        return f"--front nginx needs nginx: {INSTALL_HINT}"
    if find_perl_module(settings.perl_module) is None:
        return f"--front nginx needs nginx's Perl module (ngx_http_perl_module.so): {INSTALL_HINT}"
    return None


def free_loopback_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM when the process that started it exits (Linux)."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def wait_listening(host: str, port: int, proc: subprocess.Popen, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            with socket.create_connection((host if host not in ("", "0.0.0.0", "::") else "127.0.0.1", port), 0.2):
                return True
        except OSError:
            time.sleep(0.05)
    return False


MEMORY_DIR = Path("/dev/shm")
MEMORY_DIR_MIN_FREE = 256 * 1024 * 1024  # Docker's default /dev/shm (64 MB) is too small: the disk then


def scratch_parent(memory_dir: Path = MEMORY_DIR) -> str | None:
    """Where the front's own files go (id links, kept manifests, nginx's temp files): a memory
    filesystem when there is a roomy one, else the temp dir (None).

    They live as long as the process and every window makes new links and manifest copies:
    on ext4 each one is an inode allocated and journalled. bench/origin.py's 12,000-request list,
    4 alternated cold pairs: 4,147 → 4,292 req/s median with them in /dev/shm.
    """
    try:
        if memory_dir.is_dir() and os.access(memory_dir, os.W_OK | os.X_OK):
            stat = os.statvfs(memory_dir)
            if stat.f_bavail * stat.f_frsize >= MEMORY_DIR_MIN_FREE:
                return str(memory_dir)
    except OSError:
        pass
    return None


def _exit_on_sigterm(signum, frame) -> None:
    raise SystemExit(128 + signum)


def serve_with_front(settings: Settings, serve_api: Callable[[], int]) -> int:
    """Start nginx on settings.host:port, then `serve_api()` (which reads ABR_HOST/ABR_PORT) behind it."""
    why = missing(settings)
    if why:
        print(why, file=sys.stderr, flush=True)
        return 2
    storage = open_storage(settings.resolved_storage_url)
    if not isinstance(storage, LocalStorage):
        print("--front nginx sends segments from local storage; with S3 storage, put a CDN in front instead",
              file=sys.stderr, flush=True)
        return 2
    keys = SigningKeys.from_settings(settings.signing_key, settings.signing_keys_previous, settings.signing_key_id)
    upstream = free_loopback_port()
    prefix = Path(tempfile.mkdtemp(prefix="abr-front-", dir=scratch_parent()))
    plan = FrontPlan(listen_host=settings.host, listen_port=settings.port, upstream_port=upstream, prefix=prefix, module=find_perl_module(settings.perl_module) or "",
                     workers=settings.front_workers, cors_origins=settings.cors_origins,
                     access_log=bool(settings.access_log), run_as_root=os.geteuid() == 0)
    conf = prefix / "nginx.conf"
    conf.write_text(render_conf(plan))
    plan.index.mkdir()
    nginx_env = {**os.environ, "ABR_FRONT_KEYS": keys_env(keys.secrets)}
    nginx = subprocess.Popen([find_nginx(settings.nginx) or "nginx", "-p", str(prefix), "-e", "stderr",
                              "-c", str(conf)], env=nginx_env, preexec_fn=_die_with_parent)
    # The API processes (started by serve_api, some as its children) take their address and where
    # to link playback ids for nginx from the environment.
    os.environ.update({"ABR_HOST": "127.0.0.1", "ABR_PORT": str(upstream), "ABR_FRONT_INDEX": str(plan.index),
                       "ABR_FRONT": "none"})
    try:
        if not wait_listening(settings.host, settings.port, nginx):
            print(f"the nginx front did not start on {settings.host}:{settings.port} (its log is above)",
                  file=sys.stderr, flush=True)
            return 2
        print(f"nginx front on http://{settings.host}:{settings.port} ({plan.workers} workers), "
              f"API behind it on 127.0.0.1:{upstream}", file=sys.stderr, flush=True)
        # uvicorn stops on SIGTERM and then raises it again once its own handler is gone: with the
        # default action this process would die there, before the `finally` below stops nginx (its
        # death signal does) and removes the prefix, which may be in /dev/shm (memory).
        signal.signal(signal.SIGTERM, _exit_on_sigterm)
        return serve_api()
    finally:
        if nginx.poll() is None:
            nginx.send_signal(signal.SIGQUIT)  # graceful: in-flight answers finish
            try:
                nginx.wait(10)
            except subprocess.TimeoutExpired:
                nginx.kill()
                nginx.wait()
        shutil.rmtree(prefix, ignore_errors=True)
