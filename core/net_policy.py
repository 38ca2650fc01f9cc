"""Addresses no outgoing request of ours may reach, whatever else is allowed: cloud instance metadata.

Shared by every checked client (URL import, webhooks, live pulls): an
operator who allows private ranges (`ABR_ALLOW_PRIVATE_URLS`) or a camera
network (`ABR_LIVE_PULL_ALLOW_NETWORKS`) still never lets a request reach the
place where the machine's cloud credentials live.
"""

from __future__ import annotations

import ipaddress

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
_NAT64 = ipaddress.ip_network("64:ff9b::/96")

# Instance metadata / instance services of the clouds: credentials live there.
METADATA_ADDRESSES = frozenset(ipaddress.ip_address(a) for a in (
    "169.254.169.254",  # AWS, GCP, Azure, OpenStack, DigitalOcean, Oracle
    "169.254.170.2",  # AWS ECS task metadata and credentials
    "169.254.170.23",  # AWS EKS pod identity agent
    "169.254.169.253",  # AWS VPC DNS resolver
    "169.254.0.23",  # Tencent Cloud
    "100.100.100.200",  # Alibaba Cloud
    "192.0.0.192",  # Oracle Cloud (legacy)
    "fd00:ec2::254",  # AWS IMDS over IPv6
    "fd00:ec2::23",  # AWS EKS pod identity agent over IPv6
))


def is_metadata(addr: IPAddress) -> bool:
    """`addr` is a metadata address, in any spelling (IPv4-mapped, NAT64, 6to4, Teredo)."""
    if addr in METADATA_ADDRESSES:
        return True
    if isinstance(addr, ipaddress.IPv6Address):
        embedded = addr.ipv4_mapped or addr.sixtofour or (addr.teredo[1] if addr.teredo else None)
        if embedded is None and addr in _NAT64:
            embedded = ipaddress.IPv4Address(int(addr) & 0xFFFFFFFF)
        return embedded in METADATA_ADDRESSES
    return False
