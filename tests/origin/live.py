"""Real servers for origin tests: the app under uvicorn in a subprocess, and a real nginx."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.conftest import REPO_ROOT, free_port

NGINX_CONF = REPO_ROOT / "docker" / "nginx-cache.conf"


def wait_for_port(port: int, timeout: float = 15.0, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout}s")


@contextmanager
def uvicorn_origin(env: dict[str, str], port: int | None = None,
                   log_path: Path | None = None) -> Iterator[tuple[str, subprocess.Popen]]:
    """`abr api` as production runs it (uvicorn, the app factory), on a free port; its output to `log_path` if given."""
    port = port or free_port()
    out = open(log_path, "ab") if log_path is not None else None  # noqa: SIM115 - the server writes it while it runs
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "cli.main:app_factory", "--factory", "--host", "127.0.0.1",
         "--port", str(port), "--log-level", "warning", "--no-access-log"],
        env={**os.environ, **env}, cwd=REPO_ROOT, stdout=out, stderr=subprocess.STDOUT if out else None,
    )
    if out is not None:
        out.close()  # the server has its own descriptor
    try:
        wait_for_port(port, timeout=60, proc=proc)
        yield f"http://127.0.0.1:{port}", proc
    finally:
        stop(proc)


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def find_perl_module() -> str:
    """nginx and its Perl module (`abr api --front nginx`), or skip (fail in CI, where .ci/run installs both)."""
    from core.origin.front import find_perl_module as installed

    find_nginx()
    module = installed()
    if module:
        return module
    if os.environ.get("CI"):
        pytest.fail("nginx's Perl module is not installed; CI must install libnginx-mod-http-perl")
    pytest.skip("nginx's Perl module is not installed (Debian: apt-get install libnginx-mod-http-perl)")


def find_nginx() -> str:
    """The nginx binary, or skip (fail in CI, where .ci/run installs it)."""
    found = shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if os.access(p, os.X_OK)), None)
    if found:
        return found
    if os.environ.get("CI"):
        pytest.fail("nginx is not installed; CI must install the Debian package 'nginx'")
    pytest.skip("nginx is not installed (Debian: apt-get install nginx)")


def render_nginx_conf(prefix: Path, *, listen: int, upstream: str) -> Path:
    """docker/nginx-cache.conf with test ports/paths, wrapped in a main config under `prefix`."""
    site = NGINX_CONF.read_text()
    for old, new in (("server api:8000;", f"server {upstream};"), ("listen 8080;", f"listen 127.0.0.1:{listen};"),
                     ("/var/cache/nginx/abr", str(prefix / "cache"))):
        assert old in site, f"{old!r} not found in {NGINX_CONF}"
        site = site.replace(old, new)
    for d in ("cache", "tmp"):
        (prefix / d).mkdir(parents=True, exist_ok=True)
    (prefix / "site.conf").write_text(site)
    user = "user root;\n" if os.geteuid() == 0 else ""
    temp = "".join(f"    {k}_temp_path {prefix / 'tmp' / k};\n" for k in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    main = (f"{user}daemon off;\nworker_processes 1;\npid {prefix / 'nginx.pid'};\n"
            f"error_log {prefix / 'error.log'} warn;\nevents {{ worker_connections 512; }}\n"
            f"http {{\n    access_log off;\n{temp}    include {prefix / 'site.conf'};\n}}\n")
    conf = prefix / "nginx.conf"
    conf.write_text(main)
    return conf


@contextmanager
def nginx_cache(prefix: Path, *, upstream: str) -> Iterator[str]:
    binary = find_nginx()
    port = free_port()
    conf = render_nginx_conf(prefix, listen=port, upstream=upstream)
    proc = subprocess.Popen([binary, "-p", str(prefix), "-e", str(prefix / "error.log"), "-c", str(conf)])
    try:
        wait_for_port(port, proc=proc)
        yield f"http://127.0.0.1:{port}"
    finally:
        if proc.poll() is None:
            proc.terminate()  # SIGTERM: fast shutdown
            proc.wait(10)


def get(url: str, **kwargs) -> httpx.Response:
    return httpx.get(url, timeout=10, **kwargs)
