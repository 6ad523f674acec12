"""The gRPC channel of a client command: plain, or TLS with a CA and an optional client certificate.

The options are the same on every command that talks to a server (`--tls-ca`, `--tls-cert`,
`--tls-key`, `--tls-server-name`), as `serve` takes `--tls-cert`/`--tls-key`/`--tls-client-ca`.
grpc is imported only when a channel opens: the CLI builds its parser on every start.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import grpc
    import grpc.aio

__all__ = [
    "ChannelFactory",
    "TlsFiles",
    "add_tls_arguments",
    "channel_factory",
    "open_aio_channel",
    "open_channel",
    "tls_from_arguments",
]

ChannelFactory = Callable[[str], "grpc.Channel"]
"""opens a channel to `HOST:PORT`, as `grpc.insecure_channel` does"""


@dataclass(frozen=True, slots=True)
class TlsFiles:
    """What a TLS channel needs, read before any connection is tried."""

    root_certificates: bytes | None
    """PEM CAs that may sign the server's certificate; None: the system's"""
    private_key: bytes | None = None
    certificate_chain: bytes | None = None
    server_name: str | None = None
    """the name the server's certificate must carry, when it is not the address's host"""


def add_tls_arguments(parser: argparse.ArgumentParser) -> None:
    """The TLS options of a command that talks to a server."""
    group = parser.add_argument_group(
        "TLS", "talk to a server started with `serve --tls-cert` (any of these turns TLS on)"
    )
    group.add_argument(
        "--tls-ca",
        metavar="FILE",
        help="PEM CA bundle that signed the server's certificate (default: the system's CAs)",
    )
    group.add_argument(
        "--tls-cert",
        metavar="FILE",
        help="PEM client certificate chain, for a server that requires one (--tls-client-ca)",
    )
    group.add_argument("--tls-key", metavar="FILE", help="PEM private key of --tls-cert")
    group.add_argument(
        "--tls-server-name",
        metavar="NAME",
        help="the name the server's certificate must carry (default: the host of the address)",
    )


def tls_from_arguments(arguments: argparse.Namespace) -> TlsFiles | None:
    """The TLS files the options name, read now; None without TLS options.

    Raises ValueError naming the option whose file cannot be read.
    """
    ca = getattr(arguments, "tls_ca", None)
    cert = getattr(arguments, "tls_cert", None)
    key = getattr(arguments, "tls_key", None)
    name = getattr(arguments, "tls_server_name", None)
    if not (ca or cert or key or name):
        return None
    if bool(cert) != bool(key):
        raise ValueError("--tls-cert and --tls-key go together")
    return TlsFiles(
        root_certificates=_read(ca, "--tls-ca"),
        private_key=_read(key, "--tls-key"),
        certificate_chain=_read(cert, "--tls-cert"),
        server_name=name or None,
    )


def channel_factory(tls: TlsFiles | None) -> ChannelFactory:
    """Opens channels plain, or with `tls`."""
    return lambda target: open_channel(target, tls)


def open_channel(target: str, tls: TlsFiles | None) -> grpc.Channel:
    import grpc  # noqa: PLC0415 - grpc only when a command talks to a server

    if tls is None:
        return grpc.insecure_channel(target)
    return grpc.secure_channel(target, _credentials(tls), options=_options(tls))


def open_aio_channel(
    target: str, tls: TlsFiles | None, options: list[tuple[str, object]] | None = None
) -> grpc.aio.Channel:
    """The asyncio channel of the same settings (the load generator's)."""
    import grpc.aio  # noqa: PLC0415

    given = list(options or [])
    if tls is None:
        return grpc.aio.insecure_channel(target, options=given)
    return grpc.aio.secure_channel(target, _credentials(tls), options=[*given, *_options(tls)])


def _credentials(tls: TlsFiles) -> grpc.ChannelCredentials:
    import grpc  # noqa: PLC0415

    return grpc.ssl_channel_credentials(
        root_certificates=tls.root_certificates,
        private_key=tls.private_key,
        certificate_chain=tls.certificate_chain,
    )


def _options(tls: TlsFiles) -> list[tuple[str, object]]:
    if tls.server_name is None:
        return []
    return [("grpc.ssl_target_name_override", tls.server_name)]


def _read(path: str | None, option: str) -> bytes | None:
    if not path:
        return None
    try:
        return Path(path).read_bytes()
    except OSError as problem:
        raise ValueError(f"{option} `{path}`: cannot read: {problem.strerror}") from None
