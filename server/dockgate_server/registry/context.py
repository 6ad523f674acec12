"""The IAM request context of a registry client, from what the front door knows of its connection.

The registry gate and the token server decide with the same keys: `aws:SourceIp` (the peer, or
behind trusted proxies the right-most forwarded hop that is not one), `aws:SecureTransport`,
`aws:RequestedRegion` (the registry's Region), `aws:CurrentTime` and `aws:EpochTime`.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network

from dockgate_server.engine.sessions import format_time
from dockgate_server.registry.routes import Registry

__all__ = ["ClientFacts", "ContextError", "client_context", "parse_address", "source_ip"]

Network = IPv4Network | IPv6Network


@dataclass(frozen=True, slots=True)
class ClientFacts:
    """What a front door knows about the client's connection."""

    peer: str
    """the address of whoever connected to the front door"""
    forwarded_for: str | None = None
    """the X-Forwarded-For header, if any (it counts only from a trusted proxy)"""
    secure: bool | None = None
    """whether the client's connection was TLS, when the front door knows"""


class ContextError(ValueError):
    """The client's address cannot be told: deciding without it could skip an IP condition."""


def client_context(
    facts: ClientFacts,
    registry: Registry,
    now: float,
    *,
    trusted_proxies: Iterable[Network] = (),
    secure_transport: bool = False,
) -> dict[str, str]:
    """The context keys of every decision made for this client at `now`; `secure_transport` is
    what `aws:SecureTransport` says when the front door does not know. Raises `ContextError`."""
    secure = secure_transport if facts.secure is None else facts.secure
    return {
        "aws:SourceIp": source_ip(facts.peer, facts.forwarded_for, tuple(trusted_proxies)),
        "aws:SecureTransport": "true" if secure else "false",
        "aws:RequestedRegion": registry.region,
        "aws:CurrentTime": format_time(now),
        "aws:EpochTime": str(int(now)),
    }


def source_ip(peer: str, forwarded_for: str | None, trusted_proxies: tuple[Network, ...]) -> str:
    """The peer; behind trusted proxies, the right-most forwarded hop that is not one."""
    address = parse_address(peer)
    if address is None:
        # without it an IP condition cannot be judged, and a NotIpAddress deny would not apply
        raise ContextError("the client's address is unknown")

    def trusted(candidate: IPv4Address | IPv6Address) -> bool:
        return any(candidate in network for network in trusted_proxies)

    if not forwarded_for or not trusted(address):
        return str(address)
    for hop in reversed(forwarded_for.split(",")):
        text = hop.strip()
        if not text:
            continue
        parsed = parse_address(text)
        if parsed is None:
            raise ContextError(f"X-Forwarded-For names `{text[:64]}`, not an IP address")
        address = parsed
        if not trusted(parsed):
            break
    return str(address)


def parse_address(text: str) -> IPv4Address | IPv6Address | None:
    """An IP address (`[::1]` too); an IPv4-mapped IPv6 address as the IPv4 one it maps."""
    candidate = text.strip()
    if candidate.startswith("[") and candidate.endswith("]"):
        candidate = candidate[1:-1]
    try:
        address = ipaddress.ip_address(candidate)
    except ValueError:
        return None
    if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped  # a dual-stack socket's view of an IPv4 client
    return address
