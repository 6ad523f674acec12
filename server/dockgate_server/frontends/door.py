"""What a front door is and what it is handed: the `Door` protocol, the `Runtime` it decides with.

A door is one module: its command-line options, where it runs (`Placement`), what it listens on,
and how it opens (binds, before anything serves), serves, follows the store's freshness and
drains on SIGTERM. It decides only through the `Runtime` (a decision, a revision to wait for,
the repositories, a login to verify, the clock, the metrics, and the gRPC services of Dockgate's
own API): it never holds the store or a snapshot. `frontends.app` runs the doors of `DOORS`.
"""

from __future__ import annotations

import argparse
import enum
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import grpc

from dockgate_server.credentials.login import Login
from dockgate_server.engine.decision import Decision
from dockgate_server.engine.request import RawContext

if TYPE_CHECKING:
    # types only: the service layer imports `frontends.config`, which imports this module
    from dockgate_server.analysis import AccessChange, BundleProposal, Finding, Proposal
    from dockgate_server.frontends.grpc_port import GrpcPort
    from dockgate_server.frontends.registry import RegistrySettings
    from dockgate_server.registry.token import Keyring
    from dockgate_server.service.admin import AdminService
    from dockgate_server.service.authorizer import AuthorizerService
    from dockgate_server.service.metrics import Metrics

__all__ = [
    "Clock",
    "Door",
    "Freshness",
    "Listen",
    "Opened",
    "Option",
    "Placement",
    "Runtime",
    "Section",
    "Site",
    "StartupError",
    "Tls",
    "Unavailable",
    "cannot_listen",
]

Settings = TypeVar("Settings")


class StartupError(Exception):
    """A door that cannot start as configured: the message names the option, first."""


def cannot_listen(option: str, address: str, problem: BaseException) -> str:
    """The `StartupError` message of an address that cannot be listened on."""
    reason = problem.strerror if isinstance(problem, OSError) and problem.strerror else None
    return f"{option} {address}: {(reason or 'cannot listen there').lower()}"


class Unavailable(Exception):  # noqa: N818 (what the runtime says, not a failure of the door)
    """The runtime cannot decide now (its policy is older than `--max-staleness` allows): the
    door answers that it is unavailable, never with a decision."""


@dataclass(frozen=True, slots=True)
class Freshness:
    revision: int
    """the revision decisions are made at"""
    staleness: float
    """seconds since the store last answered"""
    store_reachable: bool
    too_stale: bool
    """past `--max-staleness`: no decisions until the store answers"""


class Placement(enum.StrEnum):
    EVERY_WORKER = "every worker"
    """in each process that decides (with `--workers N`, all N share the door's port)"""
    ONE_PROCESS = "one process"
    """once per server: the only process, or the parent of the workers"""


class Section(enum.StrEnum):
    """Where `dockgate serve --help` lists an option."""

    SERVER = "server"
    REGISTRY = "registry"
    """the "registry adapters" group"""


@dataclass(frozen=True, slots=True)
class Option:
    """One `dockgate serve` option: `argparse.add_argument(*flags, **arguments)`."""

    flags: tuple[str, ...]
    arguments: Mapping[str, Any] = field(default_factory=dict)
    section: Section = Section.SERVER
    listens: bool = False
    """a HOST:PORT a server listens on (port 0: any free one), checked before anything starts"""
    empty_turns_off: bool = False
    """an empty value turns the door off rather than naming an address"""


@dataclass(frozen=True, slots=True)
class Listen:
    """An address a door listens on: probed before anything starts, announced once serving."""

    option: str
    address: str
    announce: str
    """the key of the bound port in the `serving` log line and the ready file"""


@dataclass(frozen=True, slots=True)
class Tls:
    """The certificate the gRPC ports (and the AuthZEN door) serve, and the CA whose clients they
    require (mTLS)."""

    cert: Path
    key: Path
    client_ca: Path | None = None
    """with it, clients must present a certificate it signed (mTLS)"""

    def ssl_context(self) -> ssl.SSLContext:
        """The same for an HTTP door: TLS, and mTLS with a client CA."""
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert, self.key)
        if self.client_ca is not None:
            context.load_verify_locations(self.client_ca)
            context.verify_mode = ssl.CERT_REQUIRED
        return context

    def credentials(self) -> grpc.ServerCredentials:
        client_ca = self.client_ca.read_bytes() if self.client_ca else None
        return grpc.ssl_server_credentials(
            [(self.key.read_bytes(), self.cert.read_bytes())],
            root_certificates=client_ca,
            require_client_auth=client_ca is not None,
        )


class Clock(Protocol):
    def now(self) -> float:
        """Seconds since the epoch, as session and login expiry read them."""
        ...


class Runtime(Protocol):
    """What a door decides with, in the process it runs in."""

    @property
    def clock(self) -> Clock: ...

    @property
    def metrics(self) -> Metrics | None:
        """None in a process that makes no decisions (the parent of several workers)."""
        ...

    def decide(self, principal: str, action: str, resource: str, context: RawContext) -> Decision:
        """The decision, from the decision cache; `RequestError` for a malformed request,
        `Unavailable` past `--max-staleness`."""
        ...

    async def wait_for_revision(self, revision: int, timeout: float) -> bool:
        """Whether decisions are made at `revision` or later, waiting up to `timeout` seconds."""
        ...

    def repositories(self) -> list[str]:
        """Every repository ARN the store knows; `Unavailable` past `--max-staleness`."""
        ...

    def verify_login(self, password: str) -> Login:
        """The login a `get-login-password` password stands for; `LoginRejected` when it is
        forged, expired or revoked, `Unavailable` past `--max-staleness`."""
        ...

    def decision_service(self) -> AuthorizerService:
        """`dockgate.v1.Authorizer` deciding in this runtime (needs `metrics`)."""
        ...

    def freshness(self) -> Freshness:
        """The revision decisions are made at, and how fresh it is."""
        ...

    def principals(self) -> list[str]:
        """Every principal ARN the store knows (users, roles, live sessions Dockgate issued,
        root users), sorted; `Unavailable` past `--max-staleness`."""
        ...

    def token_keyring(self) -> Keyring:
        """The keys that sign the registry's bearer tokens, as the store holds them now (read
        again after each change); `Unavailable` when the store cannot be read."""
        ...

    # The analysis questions may take long on a large fleet: call them off the event loop
    # (`asyncio.to_thread`). Each raises `RequestError` for a malformed principal, action or
    # repository and `Unavailable` past `--max-staleness`.

    def who_can(
        self, action: str, repository: str, *, include_denied: bool = False
    ) -> tuple[int, list[Finding]]:
        """The revision answered at, and who may perform `action` on `repository` (an ARN, or
        `*`): `analysis.who_can`."""
        ...

    def what_can(
        self, principal: str, repository: str | None = None, *, include_denied: bool = False
    ) -> tuple[int, list[Finding]]:
        """The revision answered at, and what `principal` may do (on `repository` when given):
        `analysis.what_can`."""
        ...

    def preview(self, proposal: Proposal) -> tuple[int, list[AccessChange]]:
        """The revision the proposal is set against, and every change of access it would make
        (nothing is written): `analysis.preview`. Raises `ProposalError`, `PolicyError` or
        `StoreError` for a proposal that cannot apply."""
        ...

    def admin_service(self, registry_region: str | None) -> AdminService:
        """`dockgate.v1.PolicyAdmin` writing to the store and waiting for this runtime."""
        ...

    def bundle_proposal(self, bundle: object) -> BundleProposal:
        """A bundle (as `dockgate import` reads it) as a proposal to preview; `ProposalError`
        when it is not one."""
        ...

    def policy_document(self, policy: str) -> tuple[int, Mapping[str, Any] | None]:
        """The revision read at, and the document of the policy a decision's reason names
        (`Reason.policy`), as the store holds it (None: no such policy); `Unavailable` when the
        store cannot be read."""
        ...


@dataclass(slots=True)
class Site:
    """What every door is handed when it opens, besides its own settings."""

    runtime: Runtime
    data_dir: Path
    """the server's data folder (the admin token's file)"""
    registry: RegistrySettings
    """the registry the registry doors serve (checked: set when one of them is enabled)"""
    tls: Tls | None = None
    """the certificate of the gRPC ports, and the client CA they require"""
    shared: bool = False
    """one of several workers: an `EVERY_WORKER` door's port is shared with the others"""
    addresses: dict[str, str] = field(default_factory=dict)
    """option → the address a shared port was reserved at (port 0 made one port for all)"""
    grpc_ports: dict[str, GrpcPort] = field(default_factory=dict)
    """the gRPC ports opened so far in this process, by door name: a door may add its services
    to another's port (Envoy's ext_authz on the decision port)"""

    def address(self, option: str, address: str) -> str:
        """Where the door of `option` binds in this process."""
        return self.addresses.get(option, address)


class Opened(Protocol):
    """A door bound in one process: not yet serving until `serve`."""

    @property
    def ports(self) -> Mapping[str, int]:
        """announce key → the port bound"""
        ...

    async def serve(self) -> None:
        """Start taking calls."""
        ...

    async def reflect(self, reachable: bool, fresh: bool) -> None:
        """The store answers (`reachable`), the policy is within `--max-staleness` (`fresh`):
        say so where callers look (health)."""
        ...

    async def drain(self, grace: float) -> None:
        """Stop taking calls, finish those in flight within `grace` seconds, release all."""
        ...


class Door(Protocol[Settings]):
    """One way in. `configure` reads its options (None: the door is off); the app probes
    `listens`, then calls `open` in every process of its `placement`."""

    @property
    def name(self) -> str:
        """its key in `ServeConfig.doors`"""
        ...

    @property
    def placement(self) -> Placement: ...

    @property
    def options(self) -> tuple[Option, ...]: ...

    @property
    def announces(self) -> tuple[str, ...]:
        """the ports it announces (null in the ready file while the door is off)"""
        ...

    @property
    def uses_registry(self) -> bool:
        """it needs `--registry-account`/`--registry-region` or `--registry-host`"""
        ...

    def configure(self, arguments: argparse.Namespace) -> Settings | None:
        """Its settings from the parsed options; ValueError naming the option when they cannot
        work (before anything is created)."""
        ...

    def listens(self, settings: Settings) -> tuple[Listen, ...]: ...

    async def open(self, settings: Settings, site: Site) -> Opened:
        """Bound (or `StartupError` naming the option), not yet serving."""
        ...
