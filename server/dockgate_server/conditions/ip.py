"""`IpAddress` / `NotIpAddress`: IPv4 and IPv6 addresses in CIDR ranges, compared as numbers.

Both sides are parsed once (a policy's range when it compiles, a request's address on its first
use: the parse is memoized) into plain integers, so a comparison is a mask and an equality
rather than a call into `ipaddress` (about a microsecond each, on every condition)."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from functools import lru_cache
from typing import NamedTuple

from dockgate_server.policy.glob import Chunk

__all__ = ["Address", "Network", "address", "contains", "policy_network"]


class Address(NamedTuple):
    version: int
    value: int


class Network(NamedTuple):
    version: int
    base: int
    """the network address: the value with every host bit cleared"""
    mask: int


@lru_cache(maxsize=4096)  # a pure function of the text: request values repeat
def address(value: str) -> Address | None:
    try:
        parsed = ipaddress.ip_address(value)
    except ValueError:
        return None
    return Address(parsed.version, int(parsed))


def policy_network(chunks: Sequence[Chunk]) -> Network | None:
    """A CIDR range; a bare address is a /32 (IPv4) or /128 (IPv6) range."""
    try:
        network = ipaddress.ip_network("".join(chunk.text for chunk in chunks), strict=False)
    except ValueError:
        return None
    return Network(network.version, int(network.network_address), int(network.netmask))


def contains(request: Address, policy: Network) -> bool:
    # IAM: an IPv4 caller is never inside an IPv6 range, nor the reverse
    return request.version == policy.version and request.value & policy.mask == policy.base
