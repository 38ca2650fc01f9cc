"""The checked, pinned HTTP client for every outbound request to a URL a user gave us.

Used by URL import (`core.services.url_import`), webhook deliveries
(`core.services.webhooks`) and live pulls. Server-side request forgery:
a host must resolve to public addresses only (loopback, private, link-local,
multicast and reserved ranges are refused unless `allow_private` is set), it
is resolved once, and the request is sent to the checked address (`pin`), so
a second DNS answer (rebinding) never counts. Redirects are the caller's to
follow by hand, each hop pinned like the first (`safe_client` never follows).
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx

from core.errors import Forbidden, Unprocessable
from core.net_policy import is_metadata


def check_url_shape(url: str, *, what: str = "input_url") -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise Unprocessable(f"{what} must be an http(s) URL with a host")
    if len(url) > 4096:
        raise Unprocessable(f"{what} is too long")


# NAT64 (RFC 6052) embeds an IPv4 address in its last 32 bits; a gateway would forward to it.
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


def address_allowed(addr: ipaddress.IPv4Address | ipaddress.IPv6Address, *, allow_private: bool) -> bool:
    """True for a public unicast address. Refused: loopback, private, link-local, CGNAT (100.64/10),
    multicast, reserved, unspecified, IPv6 ULA/link-local/site-local, and IPv6 forms that embed
    a refused IPv4 address (IPv4-mapped, NAT64, 6to4, Teredo)."""
    if is_metadata(addr):
        return False  # cloud credentials: refused even where private ranges are allowed (core/net_policy.py)
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


def check_host(host: str, port: int, *, allow_private: bool, what: str = "input_url") -> None:
    resolve_checked(host, port, allow_private=allow_private, what=what)


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
    check_url_shape(url, what=what)
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
