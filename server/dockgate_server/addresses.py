"""`HOST:PORT` options, parsed once for every `dockgate` command before anything is created."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

__all__ = ["Address", "AddressError", "parse_address"]

_HOST_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?")
"""a DNS name or an IPv4 address: no scheme, no path, no user, no spaces"""
_PORT = re.compile(r"[0-9]{1,5}")
"""ASCII digits only: `str.isdigit` would take `²` and int() would take `+1` or ` 1`"""


class AddressError(ValueError):
    """A `HOST:PORT` option that is not one; the message names the option."""


@dataclass(frozen=True, slots=True)
class Address:
    host: str
    """an IPv6 address without its brackets"""
    port: int

    @property
    def target(self) -> str:
        """`HOST:PORT` as gRPC and the other peers take it (`[::1]:PORT` for IPv6)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


def parse_address(text: str, option: str, *, listen: bool = False) -> Address:
    """`HOST:PORT` or `[IPv6]:PORT`; port 0 (any free port) only for an option that listens.

    Raises `AddressError` naming `option`: a missing port must not become gRPC's default 443,
    and a port above 65535 must not wrap around to another one.
    """
    if "/" in text or "@" in text:
        raise AddressError(
            f"{option} `{text}`: expected HOST:PORT (no scheme or path; IPv6 as `[::1]:PORT`)"
        )
    host, colon, port = text.rpartition(":")
    if not colon:
        raise AddressError(f"{option} `{text}`: expected HOST:PORT, the port is missing")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
        if not _is_ipv6(host):
            raise AddressError(f"{option} `{text}`: `{host}` in brackets is not an IPv6 address")
    elif not host:
        raise AddressError(f"{option} `{text}`: expected HOST:PORT, the host is missing")
    elif ":" in host or not _HOST_NAME.fullmatch(host):
        raise AddressError(
            f"{option} `{text}`: expected HOST:PORT (no scheme or path; IPv6 as `[::1]:PORT`)"
        )
    if not _PORT.fullmatch(port):
        raise AddressError(f"{option} `{text}`: the port `{port}` is not a number")
    number = int(port)
    lowest = 0 if listen else 1
    if not lowest <= number <= 65535:
        raise AddressError(f"{option} `{text}`: the port must be {lowest} to 65535")
    return Address(host, number)


def _is_ipv6(text: str) -> bool:
    try:
        ipaddress.IPv6Address(text)
    except ValueError:
        return False
    return True
