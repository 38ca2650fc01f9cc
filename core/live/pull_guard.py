"""Which hosts a live pull may open: the URL import's public-only rule, an operator allow-list, metadata never.

A pull source is opened by the worker, inside our network, for as long as the
stream runs: without a check, anyone with a write key could make it read
cloud metadata (169.254.169.254), internal services, or scan ports through
the error text. The rule, applied at creation (the API answers 4xx) and
again in the worker right before every open (DNS may have changed):

- every address the host resolves to must be public (`address_allowed` of the
  URL import), or inside one of the operator's `ABR_LIVE_PULL_ALLOW_NETWORKS`
  (IP cameras live on private networks: name them, and only they open);
- cloud metadata and instance-service addresses are refused always, even
  inside an allowed network;
- the worker connects to the address it checked, so a second DNS answer
  never counts: rtmp/srt by IP in the URL (`pin_source`), rtsp/rtsps/rtmps
  through a loopback relay (core/live/rtsp_relay.py: it speaks TLS upstream
  with the real name, and refuses RTSP redirects, which ffmpeg would follow
  anywhere), http(s) through a proxy that checks every playlist, segment,
  key and redirect (core/live/hls_proxy.py).

`ABR_ALLOW_PRIVATE_URLS` (imports, webhooks) does not open live pulls: it is
a broad switch for tests and trusted LANs, and a pull keeps a connection into
the network open for hours, so its networks are named one by one.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
from dataclasses import dataclass, field
from urllib.parse import urlsplit, urlunsplit

from core.errors import Forbidden, Unprocessable
from core.net import address_allowed
from core.net_policy import is_metadata

log = logging.getLogger(__name__)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

DEFAULT_PORTS = {"rtmp": 1935, "rtmps": 443, "rtsp": 554, "rtsps": 322, "http": 80, "https": 443}
# Plain TCP/UDP: the URL may carry the IP. rtsp goes through rtsp_relay (redirects), http(s) through hls_proxy.
_PINNED = ("rtmp", "srt")


class AddressNotAllowed(Forbidden):
    code = "address_not_allowed"


def parse_networks(text: str) -> tuple[IPNetwork, ...]:
    """`"10.1.0.0/16, 192.168.5.7"` -> networks; ValueError names a bad entry."""
    networks = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError as exc:
            raise ValueError(f"not a network (CIDR) in ABR_LIVE_PULL_ALLOW_NETWORKS: {item!r}") from exc
    return tuple(networks)


@dataclass(frozen=True)
class PullPolicy:
    allow_networks: tuple[IPNetwork, ...] = field(default=())

    @classmethod
    def from_setting(cls, text: str) -> PullPolicy:
        return cls(parse_networks(text))


def _plain(addr: IPAddress) -> IPAddress:
    """An IPv4-mapped IPv6 address as the IPv4 address it reaches (so allow-lists and metadata match it)."""
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    return addr


def pull_address_allowed(addr: IPAddress, policy: PullPolicy) -> bool:
    addr = _plain(addr)
    if is_metadata(addr) or addr.is_unspecified or addr.is_multicast:
        return False
    if any(addr.version == net.version and addr in net for net in policy.allow_networks):
        return True
    return address_allowed(addr, allow_private=False)


def resolve_pull(host: str, port: int, policy: PullPolicy) -> str:
    """Resolve once; every address must be allowed (a mixed answer is refused, not raced). Returns the first."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise Unprocessable(f"source_url's host {host!r} cannot be resolved", code="source_unreachable") from exc
    addresses = [ipaddress.ip_address(info[4][0].split("%", 1)[0]) for info in infos]
    if not addresses:
        raise Unprocessable(f"source_url's host {host!r} cannot be resolved", code="source_unreachable")
    for addr in addresses:
        if not pull_address_allowed(addr, policy):
            # The address stays in the log: the API user learns the class, not our network's layout.
            log.warning("live pull to %s (%s) refused: address not allowed", host, addr)
            raise AddressNotAllowed(
                "source_url's address is not allowed (loopback, private, link-local, reserved or cloud metadata); "
                "an operator can allow camera networks with ABR_LIVE_PULL_ALLOW_NETWORKS")
    return str(addresses[0])


def source_port(url: str) -> int:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port
    except ValueError as exc:
        raise Unprocessable("source_url has an invalid port") from exc
    if port is None:
        port = DEFAULT_PORTS.get(scheme)
    if port is None:
        raise Unprocessable(f"source_url needs a port for {scheme}://")
    return port


def check_source(url: str, policy: PullPolicy) -> str:
    """The creation-time (and open-time) check of a pull URL; returns the checked address."""
    host = urlsplit(url).hostname or ""
    return resolve_pull(host, source_port(url), policy)


@dataclass(frozen=True)
class PinnedSource:
    url: str  # what ffmpeg opens
    input_options: tuple[str, ...] = ()  # extra ffmpeg input options (before -i)


def pin_source(url: str, policy: PullPolicy) -> PinnedSource:
    """Check `url` now and, for plain protocols, aim it at the checked address (pure apart from the DNS lookup)."""
    ip = check_source(url, policy)
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in _PINNED:
        return PinnedSource(url)
    netloc_ip = f"[{ip}]" if ":" in ip else ip
    userinfo = parts.netloc.rpartition("@")[0]
    netloc = (userinfo + "@" if userinfo else "") + f"{netloc_ip}:{source_port(url)}"
    pinned = urlunsplit(parts._replace(netloc=netloc))
    options: tuple[str, ...] = ()
    if scheme == "rtmp":
        options = ("-rtmp_tcurl", rtmp_tcurl(url))
    return PinnedSource(pinned, options)


def rtmp_tcurl(url: str) -> str:
    """The tcUrl ffmpeg would send for `url`: the server sees the name it was given (vhosts, auth)
    while we connect to the checked IP."""
    parts = urlsplit(url)
    app = parts.path.lstrip("/").rpartition("/")[0] or parts.path.lstrip("/")
    named = parts.netloc.rpartition("@")[2]  # never the credentials
    return urlunsplit((parts.scheme, named, f"/{app}", "", ""))
