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
from typing import TYPE_CHECKING
from urllib.parse import urljoin, urlsplit

import httpx
from sqlmodel import Session

from core.db.models import Asset, Job, PlaybackId
from core.errors import BadRequest, Forbidden, TooLarge, Unprocessable
from core.services.webhooks import ASSET_CREATED, emit

if TYPE_CHECKING:  # a runtime import would be circular (assets -> webhooks -> url_import)
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
    emit(session.get_bind(), ASSET_CREATED, asset_id=asset.id)
    return asset


# NAT64 (RFC 6052) embeds an IPv4 address in its last 32 bits; a gateway would forward to it.
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


def address_allowed(addr: ipaddress.IPv4Address | ipaddress.IPv6Address, *, allow_private: bool) -> bool:
    """True for a public unicast address. Refused: loopback, private, link-local, CGNAT (100.64/10),
    multicast, reserved, unspecified, IPv6 ULA/link-local/site-local, and IPv6 forms that embed
    a refused IPv4 address (IPv4-mapped, NAT64, 6to4, Teredo)."""
    if allow_private:
        return True
    if isinstance(addr, ipaddress.IPv6Address):
        embedded = addr.ipv4_mapped or addr.sixtofour or (addr.teredo[1] if addr.teredo else None)
        if embedded is None and addr in _NAT64:
            embedded = ipaddress.IPv4Address(int(addr) & 0xFFFFFFFF)
        if embedded is not None and not address_allowed(embedded, allow_private=False):
            return False
        if addr.is_site_local:
            return False
    return addr.is_global and not (addr.is_multicast or addr.is_reserved or addr.is_unspecified
                                   or addr.is_loopback or addr.is_link_local or addr.is_private)


def resolve_checked(host: str, port: int, *, allow_private: bool, what: str = "input_url") -> str:
    """Resolve `host` once and return the address to connect to; refuse if any address is not allowed.

    Every address must pass, not just the first: a name that resolves to both a
    public and a private address is refused rather than raced.
    """
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise Unprocessable(f"cannot resolve {host}: {exc.strerror}") from exc
    addresses = [ipaddress.ip_address(info[4][0].split("%", 1)[0]) for info in infos]
    for addr in addresses:
        if not address_allowed(addr, allow_private=allow_private):
            raise Forbidden(f"{what} resolves to a non-public address ({addr}); refused")
    if not addresses:
        raise Unprocessable(f"cannot resolve {host}")
    return str(addresses[0])


def check_host(host: str, port: int, *, allow_private: bool) -> None:
    resolve_checked(host, port, allow_private=allow_private)


@dataclass(frozen=True)
class PinnedRequest:
    """A request aimed at the address that was checked, so a second DNS answer (rebinding) never counts.

    The URL carries the IP; `Host` keeps the name for virtual hosting, and TLS
    uses the name for SNI and certificate verification (httpcore's
    `sni_hostname` extension), so https stays verified against the real host.
    """

    url: str
    headers: dict[str, str]
    extensions: dict[str, str]


def pin(url: str, *, allow_private: bool, what: str = "input_url") -> PinnedRequest:
    _check_shape(url)
    parts = urlsplit(url)
    host = parts.hostname or ""
    default_port = 443 if parts.scheme == "https" else 80
    port = parts.port or default_port
    ip = resolve_checked(host, port, allow_private=allow_private, what=what)
    netloc_ip = f"[{ip}]" if ":" in ip else ip
    target = parts._replace(netloc=f"{netloc_ip}:{port}").geturl()
    host_header = f"[{host}]" if ":" in host else host
    if parts.port and parts.port != default_port:
        host_header += f":{parts.port}"
    extensions = {"sni_hostname": host} if parts.scheme == "https" else {}
    return PinnedRequest(url=target, headers={"Host": host_header}, extensions=extensions)


def safe_client(timeout: httpx.Timeout) -> httpx.Client:
    # trust_env=False: an HTTP(S)_PROXY from the environment would connect by name, undoing the pin.
    return httpx.Client(follow_redirects=False, timeout=timeout, trust_env=False)


def fetch(url: str, dest: Path, *, max_bytes: int, timeout: float, allow_private: bool = False) -> int:
    """Download `url` to `dest`; returns the size. Raises a domain error saying why it failed.

    Streamed (flat memory), bounded in size (declared and actual) and in total
    time, at most MAX_REDIRECTS redirects, every hop resolved once, checked and
    connected to by address.
    """
    deadline = time.monotonic() + timeout
    with safe_client(httpx.Timeout(min(30.0, timeout), connect=min(10.0, timeout))) as client:
        for _ in range(MAX_REDIRECTS + 1):
            pinned = pin(url, allow_private=allow_private)
            try:
                size = _download(client, pinned, url, dest, max_bytes=max_bytes, deadline=deadline, timeout=timeout)
            except httpx.HTTPError as exc:
                raise Unprocessable(f"input_url could not be fetched: {exc}") from exc
            if isinstance(size, str):
                url = size  # a redirect: check the next hop like the first
                continue
            return size
    raise BadRequest(f"input_url redirected more than {MAX_REDIRECTS} times")


def _download(client: httpx.Client, pinned: PinnedRequest, url: str, dest: Path, *, max_bytes: int,
              deadline: float, timeout: float) -> int | str:
    """The size written, or the absolute URL of a redirect."""
    with client.stream("GET", pinned.url, headers=pinned.headers, extensions=pinned.extensions) as response:
        if response.is_redirect:
            return urljoin(url, response.headers.get("location", ""))
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
