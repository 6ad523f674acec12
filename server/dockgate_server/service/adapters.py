"""The registry adapters as the server runs them: one gate per process, on the decision port
(Envoy's ext_authz) and on an HTTP port (nginx's auth_request)."""

from __future__ import annotations

from dataclasses import dataclass

import grpc
from envoy.service.auth.v3 import external_auth_pb2

from dockgate_server.credentials.tokens import LoginVerifier
from dockgate_server.engine.decision import Decision
from dockgate_server.engine.request import RawContext
from dockgate_server.registry.envoy import EnvoyAuthorization
from dockgate_server.registry.gate import GateConfig, RegistryGate, parse_networks
from dockgate_server.registry.http import HttpAuthEndpoint, start_http_auth
from dockgate_server.registry.routes import Registry
from dockgate_server.service.interceptors import CallTracker, add_guarded_servicer
from dockgate_server.service.state import DecisionState

__all__ = ["AdapterConfig", "add_envoy", "registry_gate", "serve_http_auth", "split_listen"]


@dataclass(frozen=True, slots=True)
class AdapterConfig:
    envoy: bool = False
    """serve `envoy.service.auth.v3.Authorization/Check` on the decision port"""
    http_listen: str | None = None
    """HOST:PORT of the nginx `auth_request` endpoint; None: off"""
    account: str | None = None
    region: str | None = None
    """the registry's account and Region; unset: taken from `ACCOUNT.dkr.ecr.REGION.…` hosts"""
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
            Registry(self.account, self.region).repository_arn("check")  # validates both
        parse_networks(self.trusted_proxies)


def registry_gate(config: AdapterConfig, state: DecisionState) -> RegistryGate:
    """A gate deciding from this process's snapshot, on the server's clock."""
    clock = state.clock

    def decide(principal: str, action: str, resource: str, context: RawContext) -> Decision:
        return state.cache.decide(
            state.snapshot, principal, action, resource, context, now=clock.now()
        )

    def repositories() -> list[str]:
        return list(state.snapshot.repositories)

    registry = (
        Registry(config.account, config.region)
        if config.account is not None and config.region is not None
        else None
    )
    return RegistryGate(
        LoginVerifier(lambda: state.snapshot.credentials, clock.now),
        decide,
        repositories,
        GateConfig(registry=registry, trusted_proxies=parse_networks(config.trusted_proxies)),
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
