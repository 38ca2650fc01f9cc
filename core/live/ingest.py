"""RTMP ingest by nginx's RTMP module (Debian: nginx + libnginx-mod-rtmp), configured from a template.

`docker/nginx-rtmp.conf` is a valid nginx configuration for the compose
file; `render_rtmp_conf` rewrites its few deployment-specific lines (port,
callback URL, paths) for `abr ingest` / `abr dev`, which run nginx with its
own prefix, pid, logs and temp dirs under the data dir.

nginx asks the API before any media flows: `on_publish` POSTs the form
fields `call`, `app`, `name` (the stream key) and `addr`; a 2xx lets the
publisher in, a 4xx refuses it. The callback URL carries a secret so that
only our nginx can open and close streams.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import shutil
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

RTMP_APP = "live"
MODULE_PATHS = ("/usr/lib/nginx/modules/ngx_rtmp_module.so", "/usr/share/nginx/modules/ngx_rtmp_module.so")
TEMPLATE_PATH = Path(__file__).resolve().parents[2] / "docker" / "nginx-rtmp.conf"
# The lines of the template that a deployment changes.
_TEMPLATE_API = "http://api:8000"
_TEMPLATE_SECRET = "change-me-ingest-secret"
_TEMPLATE_LISTEN = "listen 1935;"
_TEMPLATE_MODULE = "load_module modules/ngx_rtmp_module.so;"


def ingest_secret(signing_key: str, configured: str | None = None) -> str:
    """The secret in nginx's callback URLs: configured, or derived from the signing key."""
    if configured:
        return configured
    return hmac.new(signing_key.encode(), b"abr-rtmp-ingest", hashlib.sha256).hexdigest()[:32]


def check_ingest_secret(given: str | None, expected: str) -> bool:
    return bool(given) and hmac.compare_digest(given.encode(), expected.encode())


INSTALL_LINE = "sudo apt-get install nginx libnginx-mod-rtmp"  # Debian/Ubuntu: what turns live push on


def find_rtmp_module(configured: str | None = None) -> str | None:
    """The RTMP module: `configured` (ABR_RTMP_MODULE) if it exists, else Debian's paths; None if absent."""
    if configured:
        return configured if os.path.isfile(configured) else None
    return next((p for p in MODULE_PATHS if os.path.isfile(p)), None)


def find_nginx(configured: str | None = None) -> str | None:
    """The nginx binary: `configured` (ABR_NGINX) if executable, else on PATH or in sbin; None if absent."""
    if configured:
        return configured if os.access(configured, os.X_OK) and os.path.isfile(configured) else None
    return shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx")
                                          if os.access(p, os.X_OK)), None)


@dataclass(frozen=True)
class IngestStatus:
    """Whether RTMP push works now, and if not, what to do about it (shown by `abr dev` and the API)."""

    available: bool
    reason: str | None = None


def plan_rtmp_status(*, listening: bool, address: str, nginx: str | None, module: str | None) -> IngestStatus:
    """Pure: the status from what was found. `listening` is whether `address` accepts TCP."""
    if listening:
        return IngestStatus(True)
    if nginx is None or module is None:
        missing = "nginx is" if nginx is None else "nginx's RTMP module is"
        return IngestStatus(False, f"{missing} not installed; to turn live push on: {INSTALL_LINE}")
    return IngestStatus(False, f"nothing accepts RTMP at {address}; start it with `abr ingest` "
                               "(`abr dev` starts it when the port is free)")


def pull_address(pull_url: str | None, rtmp_port: int) -> tuple[str, int]:
    """(host, port) where the ingest server is reached: ABR_RTMP_PULL_URL's, else 127.0.0.1:ABR_RTMP_PORT."""
    if not pull_url:
        return "127.0.0.1", rtmp_port
    parts = urlsplit(pull_url)
    return parts.hostname or "127.0.0.1", parts.port or 1935


def accepts_tcp(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


class RtmpStatusProbe:
    """The RTMP ingest status, probed at most every `ttl` s (list pages ask for it once per stream)."""

    def __init__(self, *, pull_url: str | None, rtmp_port: int, nginx: str | None, module: str | None,
                 ttl: float = 5.0) -> None:
        self.address = pull_address(pull_url, rtmp_port)
        self.nginx, self.module, self.ttl = nginx, module, ttl
        self._cached: tuple[float, IngestStatus] | None = None

    def status(self) -> IngestStatus:
        now = time.monotonic()
        if self._cached is None or now - self._cached[0] > self.ttl:
            host, port = self.address
            self._cached = (now, plan_rtmp_status(listening=accepts_tcp(host, port), address=f"{host}:{port}",
                                                  nginx=find_nginx(self.nginx), module=find_rtmp_module(self.module)))
        return self._cached[1]


@dataclass(frozen=True)
class RtmpConfig:
    prefix: Path  # nginx -p: pid, logs and temp files live here
    port: int
    api_url: str  # where nginx reaches the API, e.g. http://127.0.0.1:8000
    secret: str
    module_path: str
    listen_host: str = ""  # "" = every interface
    run_as_root: bool = False


def render_rtmp_conf(template: str, config: RtmpConfig) -> str:
    """The template with this deployment's port, callbacks, module path and files under `prefix`."""
    text = template
    for old in (_TEMPLATE_API, _TEMPLATE_SECRET, _TEMPLATE_LISTEN, _TEMPLATE_MODULE):
        if old not in text:
            raise ValueError(f"{old!r} is not in the nginx-rtmp template")
    listen = f"{config.listen_host}:{config.port}" if config.listen_host else str(config.port)
    text = text.replace(_TEMPLATE_API, config.api_url.rstrip("/"))
    text = text.replace(_TEMPLATE_SECRET, config.secret)
    text = text.replace(_TEMPLATE_LISTEN, f"listen {listen};")
    text = text.replace(_TEMPLATE_MODULE, f"load_module {config.module_path};")
    # Files nginx writes go under the prefix, never /var or /run.
    text = re.sub(r"^pid .*;$", f"pid {config.prefix / 'nginx.pid'};", text, flags=re.MULTILINE)
    text = re.sub(r"^error_log .*;$", f"error_log {config.prefix / 'error.log'} warn;", text, flags=re.MULTILINE)
    head = "daemon off;\n" + ("user root;\n" if config.run_as_root else "")
    return head + text


def write_rtmp_conf(config: RtmpConfig, template_path: Path = TEMPLATE_PATH) -> Path:
    config.prefix.mkdir(parents=True, exist_ok=True)
    conf = config.prefix / "nginx-rtmp.conf"
    conf.write_text(render_rtmp_conf(template_path.read_text(), config))
    return conf


def nginx_argv(nginx: str, config: RtmpConfig, conf: Path) -> list[str]:
    return [nginx, "-p", str(config.prefix), "-e", str(config.prefix / "error.log"), "-c", str(conf)]


def pull_url(base: str, stream_key: str) -> str:
    """Where the live worker reads a pushed stream from nginx."""
    return f"{base.rstrip('/')}/{stream_key}"
