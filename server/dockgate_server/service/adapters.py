"""The registry adapters as the server runs them: one gate per process, on the decision port
(Envoy's ext_authz) and on an HTTP port (nginx's auth_request)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import grpc
from envoy.service.auth.v3 import external_auth_pb2

from dockgate_server.credentials.tokens import LoginVerifier
from dockgate_server.engine.decision import Decision
from dockgate_server.engine.request import RawContext
from dockgate_server.engine.snapshot import Snapshot
from dockgate_server.registry.envoy import EnvoyAuthorization
from dockgate_server.registry.gate import (
    DecisionUnavailable,
    GateConfig,
    RegistryGate,
    parse_networks,
)
from dockgate_server.registry.http import HttpAuthEndpoint, start_http_auth
from dockgate_server.registry.routes import Registry, host_key, registry_in
from dockgate_server.service.interceptors import CallTracker, add_guarded_servicer
from dockgate_server.service.state import DecisionState, StaleSnapshotError

__all__ = [
    "AdapterConfig",
    "add_envoy",
    "parse_registry_host",
    "parse_registry_hosts",
    "registry_gate",
    "serve_http_auth",
    "split_listen",
]


@dataclass(frozen=True, slots=True)
class AdapterConfig:
    envoy: bool = False
    """serve `envoy.service.auth.v3.Authorization/Check` on the decision port"""
    http_listen: str | None = None
    """HOST:PORT of the nginx `auth_request` endpoint; None: off"""
    account: str | None = None
    region: str | None = None
    """the registry's account and Region: every call is for it, whatever its Host header says"""
    hosts: tuple[str, ...] = ()
    """`HOST=ACCOUNT:REGION` entries (`--registry-host`): the registry of each Host, instead of
    `account` and `region`; a call to any other host is refused"""
    trusted_proxies: tuple[str, ...] = ()
    """addresses or networks allowed to say who the client is (X-Forwarded-For)"""

    @property
    def enabled(self) -> bool:
        return self.envoy or self.http_listen is not None

    def check(self) -> None:
        """Raise ValueError for settings that cannot work, before anything listens."""
        if self.http_listen is not None:
            split_listen(self.http_listen)
        if (self.account is None) != (self.region is None):
            raise ValueError("--registry-account and --registry-region go together")
        if self.account is not None and self.region is not None:
            if self.hosts:
                raise ValueError(
                    "--registry-host and --registry-account name the registry two ways: "
                    "give one of them"
                )
            registry_in(self.account, self.region)  # validates both
        hosts = parse_registry_hosts(self.hosts)
        parse_networks(self.trusted_proxies)
        if self.enabled and self.account is None and not hosts:
            # the Host header alone must never choose the account: a client can send any
            raise ValueError(
                "the registry adapters need --registry-account and --registry-region, "
                "or --registry-host HOST=ACCOUNT:REGION"
            )

    @property
    def registry_region(self) -> str | None:
        """The Region a login is for (`aws:RequestedRegion` of GetAuthorizationToken): the
        registry's, or the one every mapped host shares; None when there is no single one."""
        if self.region is not None:
            return self.region
        regions = {registry.region for registry in parse_registry_hosts(self.hosts).values()}
        return regions.pop() if len(regions) == 1 else None

    def gate_config(self) -> GateConfig:
        """What the gate is told: the one registry, or the host map."""
        registry = (
            registry_in(self.account, self.region)
            if self.account is not None and self.region is not None
            else None
        )
        return GateConfig(
            registry=registry,
            hosts=parse_registry_hosts(self.hosts) if registry is None else {},
            trusted_proxies=parse_networks(self.trusted_proxies),
        )


def parse_registry_host(text: str) -> tuple[str, Registry]:
    """`HOST=ACCOUNT:REGION` (`registry.example:5000=111122223333:us-east-1`) → the host as the
    gate looks it up, and its registry; raises ValueError naming `--registry-host`."""
    host, equals, target = text.partition("=")
    account, colon, region = target.strip().partition(":")
    key = host_key(host)
    shown = text[:200]
    if not equals or not colon or key is None:
        raise ValueError(f"--registry-host `{shown}`: expected HOST=ACCOUNT:REGION")
    try:
        return key, registry_in(account, region)
    except ValueError as problem:
        raise ValueError(f"--registry-host `{shown}`: {problem}") from None


def parse_registry_hosts(texts: Iterable[str]) -> dict[str, Registry]:
    """Every `--registry-host` entry; a host given twice for two registries is an error."""
    hosts: dict[str, Registry] = {}
    for text in texts:
        key, registry = parse_registry_host(text)
        if hosts.setdefault(key, registry) != registry:
            raise ValueError(f"--registry-host `{key}` is given for two registries")
    return hosts


def registry_gate(config: AdapterConfig, state: DecisionState) -> RegistryGate:
    """A gate deciding from this process's snapshot, on the server's clock."""
    clock = state.clock

    def fresh() -> Snapshot:
        try:
            return state.snapshot
        except StaleSnapshotError as stale:  # past --max-staleness: 503, never old policy
            raise DecisionUnavailable(stale.message) from None

    def decide(principal: str, action: str, resource: str, context: RawContext) -> Decision:
        return state.cache.decide(fresh(), principal, action, resource, context, now=clock.now())

    def repositories() -> list[str]:
        return list(fresh().repositories)

    return RegistryGate(
        LoginVerifier(lambda: fresh().credentials, clock.now),
        decide,
        repositories,
        config.gate_config(),
        clock.now,
    )


def add_envoy(server: grpc.aio.Server, gate: RegistryGate, calls: CallTracker) -> None:
    """Envoy's ext_authz beside the Authorizer, guarded and drained like it."""
    service = external_auth_pb2.DESCRIPTOR.services_by_name["Authorization"]
    add_guarded_servicer(server, service, EnvoyAuthorization(gate), calls)


async def serve_http_auth(listen: str, gate: RegistryGate) -> HttpAuthEndpoint:
    """The nginx endpoint on `HOST:PORT` (port 0: any free one), listening when this returns."""
    host, port = split_listen(listen)
    return await start_http_auth(gate, host, port)


def split_listen(listen: str) -> tuple[str, int]:
    """`HOST:PORT` (`[::1]:PORT` for IPv6); raises ValueError naming the option."""
    host, colon, port = listen.rpartition(":")
    if not colon or not port.isdigit() or int(port) > 65535:
        raise ValueError(f"--http-auth-listen `{listen}`: expected HOST:PORT")
    return host.strip("[]") or "127.0.0.1", int(port)
