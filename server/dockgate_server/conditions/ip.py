"""`IpAddress` / `NotIpAddress`: IPv4 and IPv6 addresses in CIDR ranges, compared as numbers."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from functools import lru_cache

from dockgate_server.policy.glob import Chunk

__all__ = ["address", "contains", "policy_network"]

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@lru_cache(maxsize=4096)  # a pure function of the text: request values repeat
def address(value: str) -> Address | None:
    try:
        return ipaddress.ip_address(value)
    except ValueError:
        return None


def policy_network(chunks: Sequence[Chunk]) -> Network | None:
    """A CIDR range; a bare address is a /32 (IPv4) or /128 (IPv6) range."""
    try:
        return ipaddress.ip_network("".join(chunk.text for chunk in chunks), strict=False)
    except ValueError:
        return None


def contains(request: Address, policy: Network) -> bool:
    # IAM: an IPv4 caller is never inside an IPv6 range, nor the reverse
    return request.version == policy.version and request in policy
