"""The registry every registry door serves (its options and checks), and its gate over a runtime.

Envoy's ext_authz, nginx's auth_request and the token server answer for one registry: a fixed
account and Region (`--registry-account`, `--registry-region`), or a map from Host names
(`--registry-host`). The Host header alone never chooses the account: a client can send any.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable
from dataclasses import dataclass

from dockgate_server.credentials.login import Login
from dockgate_server.engine.decision import Decision
from dockgate_server.engine.request import RawContext
from dockgate_server.frontends.door import Option, Runtime, Section, Unavailable
from dockgate_server.registry.gate import (
    DecisionUnavailable,
    GateConfig,
    RegistryGate,
    parse_networks,
)
from dockgate_server.registry.routes import Registry, host_key, registry_in

__all__ = [
    "OPTIONS",
    "RegistrySettings",
    "parse_registry_host",
    "parse_registry_hosts",
    "registry_gate",
]

OPTIONS = (
    Option(
        ("--registry-account",),
        {
            "metavar": "ACCOUNT",
            "help": "the registry's account (with --registry-region): every call is for it, "
            "whatever its Host header says",
        },
        Section.REGISTRY,
    ),
    Option(
        ("--registry-host",),
        {
            "action": "append",
            "default": [],
            "metavar": "HOST=ACCOUNT:REGION",
            "help": "instead of --registry-account: the registry a Host name (port optional) "
            "stands for; repeat; calls to any other host are refused",
        },
        Section.REGISTRY,
    ),
    Option(
        ("--registry-region",),
        {"metavar": "REGION", "help": "the registry's region (with --registry-account)"},
        Section.REGISTRY,
    ),
    Option(
        ("--trusted-proxy",),
        {
            "action": "append",
            "default": [],
            "metavar": "CIDR",
            "help": "a proxy address or network whose X-Forwarded-For is believed; repeat "
            "(the HTTP endpoint also trusts loopback, where nginx runs)",
        },
        Section.REGISTRY,
    ),
)


@dataclass(frozen=True, slots=True)
class RegistrySettings:
    account: str | None = None
    region: str | None = None
    """the registry's account and Region: every call is for it, whatever its Host header says"""
    hosts: tuple[str, ...] = ()
    """`HOST=ACCOUNT:REGION` entries (`--registry-host`): the registry of each Host, instead of
    `account` and `region`; a call to any other host is refused"""
    trusted_proxies: tuple[str, ...] = ()
    """addresses or networks allowed to say who the client is (X-Forwarded-For)"""

    @classmethod
    def from_arguments(cls, arguments: argparse.Namespace) -> RegistrySettings:
        return cls(
            account=arguments.registry_account,
            region=arguments.registry_region,
            hosts=tuple(arguments.registry_host),
            trusted_proxies=tuple(arguments.trusted_proxy),
        )

    def check(self, *, needed: bool) -> None:
        """Raise ValueError for settings that cannot work, before anything listens; `needed`:
        a registry door is enabled, so the registry must be named."""
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
        if needed and self.account is None and not hosts:
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


def registry_gate(settings: RegistrySettings, runtime: Runtime) -> RegistryGate:
    """A gate deciding in `runtime`, on its clock; past `--max-staleness` it answers 503."""

    def decide(principal: str, action: str, resource: str, context: RawContext) -> Decision:
        try:
            return runtime.decide(principal, action, resource, context)
        except Unavailable as stale:  # never old policy
            raise DecisionUnavailable(str(stale)) from None

    def repositories() -> list[str]:
        try:
            return runtime.repositories()
        except Unavailable as stale:
            raise DecisionUnavailable(str(stale)) from None

    def verify(password: str) -> Login:
        try:
            return runtime.verify_login(password)
        except Unavailable as stale:
            raise DecisionUnavailable(str(stale)) from None

    return RegistryGate(
        verify,
        decide,
        repositories,
        settings.gate_config(),
        runtime.clock.now,
    )
