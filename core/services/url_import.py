"""Import a source from a URL: recorded by the API, fetched by the worker.

Fetching is the worker's job (it can take minutes); the API only checks the
URL's shape and records the asset. Server-side request forgery: every hop's
host must resolve to public addresses only (loopback, private, link-local,
multicast and reserved ranges are refused unless `allow_private` is set),
redirects are followed by hand so each target is checked, and size and time
are bounded.
"""

from __future__ import annotations

import ipaddress
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import httpx
from sqlmodel import Session

from core.db.models import Asset, Job, PlaybackId
from core.errors import BadRequest, Forbidden, TooLarge, Unprocessable
from core.services.assets import AssetSettings

MAX_REDIRECTS = 5


@dataclass(frozen=True)
class ImportRequest:
    url: str
    settings: AssetSettings


def _check_shape(url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise Unprocessable("input_url must be an http(s) URL with a host")
    if len(url) > 4096:
        raise Unprocessable("input_url is too long")


def create_import(session: Session, request: ImportRequest) -> Asset:
    _check_shape(request.url)
    settings = request.settings.model_dump(exclude={"passthrough"})
    settings["input_url"] = request.url
    asset = Asset(status="queued", settings=settings, passthrough=request.settings.passthrough)
    session.add(asset)
    session.add(PlaybackId(asset_id=asset.id, policy=request.settings.playback_policy))
    session.add(Job(asset_id=asset.id, kind="transcode"))
    session.commit()
    session.refresh(asset)
    return asset


def check_host(host: str, port: int, *, allow_private: bool) -> None:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise Unprocessable(f"cannot resolve {host}: {exc.strerror}") from exc
    for info in infos:
        addr = ipaddress.ip_address(info[4][0])
        if not allow_private and not addr.is_global:
            raise Forbidden(f"input_url resolves to a non-public address ({addr}); refused")


def fetch(url: str, dest: Path, *, max_bytes: int, timeout: float, allow_private: bool = False) -> int:
    """Download `url` to `dest`; returns the size. Raises a domain error saying why it failed."""
    deadline = time.monotonic() + timeout
    with httpx.Client(follow_redirects=False, timeout=httpx.Timeout(30.0, connect=10.0)) as client:
        for _ in range(MAX_REDIRECTS + 1):
            _check_shape(url)
            parts = urlsplit(url)
            check_host(parts.hostname, parts.port or (443 if parts.scheme == "https" else 80),
                       allow_private=allow_private)
            with client.stream("GET", url) as response:
                if response.is_redirect:
                    url = urljoin(url, response.headers.get("location", ""))
                    continue
                if response.status_code != 200:
                    raise Unprocessable(f"input_url answered HTTP {response.status_code}")
                declared = response.headers.get("content-length")
                if declared and declared.isdigit() and int(declared) > max_bytes:
                    raise TooLarge(f"input_url is larger than the limit of {max_bytes} bytes")
                size = 0
                with open(dest, "wb") as out:
                    for chunk in response.iter_bytes(1024 * 1024):
                        size += len(chunk)
                        if size > max_bytes:
                            raise TooLarge(f"input_url is larger than the limit of {max_bytes} bytes")
                        if time.monotonic() > deadline:
                            raise Unprocessable(f"input_url took longer than {timeout:.0f} s to download")
                        out.write(chunk)
                return size
    raise BadRequest(f"input_url redirected more than {MAX_REDIRECTS} times")
