"""`dockgate serve`: the decision port, the admin port, metrics, workers, signals.

With `--workers N`, N processes are forked before any gRPC object exists and share the decision
port (SO_REUSEPORT, set only then and only on the workers' sockets); the parent serves the admin
port and the metrics. Each process keeps its own snapshot fresh from the store, so a write through
the admin port reaches all of them. An address already in use, by anyone, fails start-up with one
line naming its option. SIGTERM stops taking calls at once and finishes the ones in flight.

The store's freshness is on the decision port's health service: `dockgate.v1.Store` is
NOT_SERVING while the store does not answer (decisions go on from the last snapshot), and with
`--max-staleness` the port itself (`dockgate.v1.Authorizer` and the overall entry) turns
NOT_SERVING once the snapshot is older than that, while decisions answer UNAVAILABLE.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import importlib.resources
import json
import logging
import os
import shutil
import signal
import socket
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from prometheus_client import values as prometheus_values

from dockgate.v1 import admin_pb2, admin_pb2_grpc, authorizer_pb2
from dockgate_server.engine.snapshot import Snapshot
from dockgate_server.policy.parse import load_json
from dockgate_server.registry.gate import RegistryGate
from dockgate_server.registry.http import HttpAuthEndpoint
from dockgate_server.service.adapters import (
    AdapterConfig,
    add_envoy,
    registry_gate,
    serve_http_auth,
)
from dockgate_server.service.admin import AdminService
from dockgate_server.service.admission import DEFAULT_LIMIT, DEFAULT_QUEUE, Admission, queue_options
from dockgate_server.service.auth import TokenInterceptor, load_admin_token
from dockgate_server.service.authorizer import AuthorizerService
from dockgate_server.service.clock import ServerClock
from dockgate_server.service.interceptors import (
    CallTracker,
    UndecodableRefusal,
    add_guarded_servicer,
)
from dockgate_server.service.logs import configure_logging
from dockgate_server.service.metrics import Metrics, serve_metrics
from dockgate_server.service.state import DecisionState
from dockgate_server.store.bundle import bundle_to_fleet
from dockgate_server.store.port import open_store

__all__ = ["ServeConfig", "StartupError", "end_with_parent", "serve"]

log = logging.getLogger("dockgate.server")

_MAX_MESSAGE = 8 * 1024 * 1024
_GAP = 0.05
"""Seconds without a new call after which a stopping port has served all gRPC held for it."""
_PR_SET_PDEATHSIG = 1
STORE_HEALTH = "dockgate.v1.Store"
"""the health entry saying whether this replica's store answers"""
_FRESHNESS_TICK = 0.1
"""seconds between two looks at the snapshot's staleness (health and the gauge)"""
_OPTIONS = [
    ("grpc.max_receive_message_length", _MAX_MESSAGE),
    ("grpc.max_send_message_length", _MAX_MESSAGE),
    # gRPC sets SO_REUSEPORT by default: a second server on a port in use would bind silently
    ("grpc.so_reuseport", 0),
]
_SHARED_OPTIONS = [*_OPTIONS[:-1], ("grpc.so_reuseport", 1)]
"""The decision port of several workers: each binds it, the kernel spreads the connections."""


@dataclass(frozen=True, slots=True)
class ServeConfig:
    data_dir: Path
    store: str | Path
    """a path or a store URL (`sqlite:///…`, `postgresql://…`)"""
    listen: str = "127.0.0.1:50051"
    admin_listen: str = "127.0.0.1:50052"
    metrics_listen: str | None = "127.0.0.1:9464"
    workers: int = 1
    tls_cert: Path | None = None
    tls_key: Path | None = None
    tls_client_ca: Path | None = None
    """with it, clients must present a certificate it signed (mTLS)"""
    seed_sample: bool = True
    poll_interval: float = 0.02
    cache_size: int = 100_000
    """decisions each process keeps; 0 turns the decision cache off"""
    grace: float = 10.0
    ready_file: Path | None = None
    """written once serving: the bound ports, for callers that asked for port 0"""
    log_level: str = "info"
    clock_offset_file: Path | None = None
    """seconds to add to the wall clock, re-read each poll (tests move time with it)"""
    sweep_interval: float = 30.0
    """how often expired sessions, revocations and retired signing keys are dropped"""
    adapters: AdapterConfig = field(default_factory=AdapterConfig)
    """the registry adapters: Envoy ext_authz on the decision port, nginx auth_request on HTTP"""
    max_in_flight: int = DEFAULT_LIMIT
    """calls each process holds in its decision handlers; more are refused (RESOURCE_EXHAUSTED)"""
    max_queued: int = DEFAULT_QUEUE
    """calls gRPC holds for each process before it sheds them; 0 or less: gRPC's own default"""
    max_staleness: float | None = None
    """seconds without an answer from the store after which decisions are refused (UNAVAILABLE)
    and the decision port's health is NOT_SERVING; None: decide from the last snapshot forever"""


class StartupError(Exception):
    """A server that cannot start as configured: the message names the option, first."""


def serve(config: ServeConfig) -> int:
    """Serve until SIGTERM or SIGINT; 0 then, 2 (with one line on stderr) when it cannot start."""
    configure_logging(config.log_level)
    try:
        _check_addresses(config)
        _seed(config)
        token = load_admin_token(config.data_dir / "admin-token")
        if config.workers <= 1:
            asyncio.run(_single_process(config, token))
            return 0
        return _multi_process(config, token)
    except StartupError as problem:
        print(f"dockgate: {problem}", file=sys.stderr)
        return 2


def _check_addresses(config: ServeConfig) -> None:
    """Every fixed address is free, before anything starts: a bind without SO_REUSEPORT fails
    whoever holds the port, even a process that set SO_REUSEPORT itself."""
    for option, address in _addresses(config):
        host, port = _split(address)
        if port == 0:
            continue
        with _socket_for(host) as probe:
            # SO_REUSEADDR, as every server here sets it: a port whose old connections linger in
            # TIME_WAIT is free; a listening socket still makes the bind fail
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((host, port))
                probe.listen(1)
            except OSError as problem:
                raise StartupError(_cannot_listen(option, address, problem)) from None


def _addresses(config: ServeConfig) -> list[tuple[str, str]]:
    found = [("--listen", config.listen), ("--admin-listen", config.admin_listen)]
    if config.metrics_listen:
        found.append(("--metrics-listen", config.metrics_listen))
    if config.adapters.http_listen is not None:
        found.append(("--http-auth-listen", config.adapters.http_listen))
    return found


def _socket_for(host: str) -> socket.socket:
    try:
        family = socket.getaddrinfo(host or None, 0, type=socket.SOCK_STREAM)[0][0]
    except OSError:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
    return socket.socket(family, socket.SOCK_STREAM)


def _cannot_listen(option: str, address: str, problem: BaseException) -> str:
    reason = problem.strerror if isinstance(problem, OSError) and problem.strerror else None
    return f"{option} {address}: {(reason or 'cannot listen there').lower()}"


def _seed(config: ServeConfig) -> None:
    """A new store gets the sample fleet, so the first `Authorize` shows real decisions."""
    with open_store(config.store) as store:
        if store.revision == 0 and config.seed_sample:
            text = (
                importlib.resources.files("dockgate_server.data")
                .joinpath("sample-bundle.json")
                .read_text()
            )
            change = store.import_fleet(bundle_to_fleet(load_json(text)))
            log.info("seeded the sample fleet", extra={"fields": {"revision": change.revision}})


# -- one process ------------------------------------------------------------------------------


async def _single_process(config: ServeConfig, token: str) -> None:
    metrics = Metrics()
    state = _start_state(config, metrics)
    gate = registry_gate(config.adapters, state) if config.adapters.enabled else None
    try:
        decision, decision_edge = _decision_server(
            state, metrics, config, gate if config.adapters.envoy else None
        )
        decision_port = _bind(decision, "--listen", config.listen, config)
        admin_service, admin, admin_edge, admin_port = _admin_port(config, state, token)
        metrics_port = _start_metrics(config.metrics_listen)
        http = await _start_http(config, gate)
    except BaseException:
        state.stop()
        raise
    sweeper = asyncio.create_task(admin_service.sweep_forever(config.sweep_interval))
    await decision.start()
    await admin.start()
    watcher = asyncio.create_task(
        _watch_freshness(state, metrics, decides=[decision_edge], reports=[admin_edge])
    )
    stopping = _on_termination()  # before the announcement: a SIGTERM after it is graceful
    _announce(config, decision_port, admin_port, metrics_port, http=http)
    await stopping.wait()
    watcher.cancel()  # the drain turns the port NOT_SERVING; nothing may turn it back
    log.info("stopping: finishing calls in flight", extra={"fields": {"grace": config.grace}})
    await asyncio.gather(
        _drain(decision, decision_edge, config.grace, config.max_queued),
        _drain(admin, admin_edge, config.grace, 0),
        _close_http(http),
    )
    sweeper.cancel()
    admin_service.close()
    state.stop()


# -- several processes ------------------------------------------------------------------------


def _multi_process(config: ServeConfig, token: str) -> int:
    metrics_dir = tempfile.mkdtemp(prefix="dockgate-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
    # prometheus_client chose in-memory values when it was imported, before the variable was set;
    # choose again (no metric exists yet) so that the workers write to the shared directory
    prometheus_values.ValueClass = prometheus_values.get_value_class()  # type: ignore[no-untyped-call]
    host, port = _split(config.listen)
    reserved = None
    if port == 0:  # every worker must bind the same port: pick it once, hold it while they bind
        reserved = _socket_for(host)
        reserved.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        reserved.bind((host, 0))
        port = reserved.getsockname()[1]
    # A fixed port was found free just before (`_check_addresses`, without SO_REUSEPORT); the
    # workers bind it with SO_REUSEPORT at once. Only a process of this user that binds it with
    # SO_REUSEPORT in between could join them: the kernel refuses anyone else.
    listen = f"{_host_for_grpc(host)}:{port}"
    children = []
    ready = []
    for _ in range(config.workers):
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:  # a worker: no gRPC object existed before this point
            os.close(read_end)
            end_with_parent()
            code = 0
            try:
                asyncio.run(_worker(config, listen, write_end))
            except StartupError as problem:  # told to the parent, which says it once
                os.write(write_end, b"!" + str(problem).encode())
                code = 2
            except BaseException:
                log.exception("worker failed")
                code = 1
            finally:
                os._exit(code)
        os.close(write_end)
        children.append(pid)
        ready.append(read_end)
    if reserved is not None:
        reserved.close()
    signalled = False
    try:
        _await_workers(ready)
        asyncio.run(_parent(config, token, port, children))
        signalled = True
    finally:
        if not signalled:
            # once only: a worker whose loop has closed is back to the default action (death)
            for pid in children:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGTERM)
        codes = [os.waitpid(pid, 0)[1] for pid in children]
        shutil.rmtree(metrics_dir, ignore_errors=True)
    return 0 if all(code == 0 for code in codes) else 1


def _await_workers(ready: list[int]) -> None:
    """Until every worker serves the decision port: only then may the server say it is ready."""
    for descriptor in ready:
        with os.fdopen(descriptor, "rb") as pipe:
            said = pipe.read()
            if said.startswith(b"!"):
                raise StartupError(said[1:].decode(errors="replace"))
            if said != b"1":
                raise RuntimeError("a worker exited before serving")


async def _worker(config: ServeConfig, listen: str, ready: int) -> None:
    metrics = Metrics()
    state = _start_state(config, metrics)
    gate = registry_gate(config.adapters, state) if config.adapters.envoy else None
    try:
        decision, edge = _decision_server(state, metrics, config, gate)
        _bind(decision, "--listen", listen, config, shared=True)
        await decision.start()
    except BaseException:
        state.stop()
        raise
    watcher = asyncio.create_task(_watch_freshness(state, metrics, decides=[edge]))
    stopping = _on_termination()
    os.write(ready, b"1")  # serving, and a SIGTERM from now on is graceful
    os.close(ready)
    await stopping.wait()
    watcher.cancel()
    await _drain(decision, edge, config.grace, config.max_queued)
    state.stop()


async def _parent(config: ServeConfig, token: str, decision_port: int, children: list[int]) -> None:
    # the workers poll the store themselves; this state serves the credential calls
    state = _start_state(config, None)
    try:
        admin_service, admin, edge, admin_port = _admin_port(config, state, token)
        metrics_port = _start_metrics(config.metrics_listen)
        # the nginx endpoint is light next to the decisions: the parent serves it from its state
        http_gate = registry_gate(config.adapters, state) if config.adapters.http_listen else None
        http = await _start_http(config, http_gate)
    except BaseException:
        state.stop()
        raise
    sweeper = asyncio.create_task(admin_service.sweep_forever(config.sweep_interval))
    await admin.start()
    watcher = asyncio.create_task(_watch_freshness(state, None, reports=[edge]))
    stopping = _on_termination()
    _announce(config, decision_port, admin_port, metrics_port, workers=children, http=http)
    await stopping.wait()
    watcher.cancel()
    for pid in children:  # the workers finish their calls in flight while the admin port does
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    await asyncio.gather(_drain(admin, edge, config.grace, 0), _close_http(http))
    sweeper.cancel()
    admin_service.close()
    state.stop()


# -- parts ------------------------------------------------------------------------------------


def _start_state(config: ServeConfig, metrics: Metrics | None) -> DecisionState:
    """`metrics` None: a state that serves no decisions (the admin side of several workers)."""

    def swapped(snapshot: Snapshot, seconds: float) -> None:
        if metrics is not None:
            metrics.revision.set(snapshot.revision)
            metrics.compile_seconds.set(seconds)

    def polled() -> None:  # the cache counts in plain integers; the metrics catch up each poll
        if metrics is not None:
            metrics.count_cache(state.cache.hits, state.cache.misses)

    state = DecisionState(
        config.store,
        poll_interval=config.poll_interval,
        cache_size=config.cache_size,
        on_swap=swapped,
        on_poll=polled,
        clock=ServerClock(config.clock_offset_file),
        max_staleness=config.max_staleness,
    )
    state.start()
    return state


async def _watch_freshness(
    state: DecisionState,
    metrics: Metrics | None,
    *,
    decides: list[_Edge] | None = None,
    reports: list[_Edge] | None = None,
) -> None:
    """Until cancelled: the staleness gauge, and health. Every edge's `dockgate.v1.Store` entry
    says whether the store answers; the edges that `decides` also turn NOT_SERVING (their
    service and the overall entry) past `--max-staleness`, so a load balancer moves away."""
    deciding = decides or []
    every = [*deciding, *(reports or [])]
    reachable: bool | None = None
    stale: bool | None = None
    while True:
        if metrics is not None:
            metrics.staleness.set(state.staleness)
        now_reachable = state.store_reachable
        if now_reachable != reachable:
            for edge in every:
                await edge.health.set(STORE_HEALTH, _status(now_reachable))
            if reachable is not None:
                _log_store(now_reachable, state)
            reachable = now_reachable
        now_stale = state.too_stale
        if now_stale != stale:
            for edge in deciding:
                await edge.health.set(edge.service, _status(not now_stale))
                await edge.health.set(health.OVERALL_HEALTH, _status(not now_stale))
            if now_stale or stale is not None:
                log.warning(
                    "past --max-staleness: NOT_SERVING, decisions refused"
                    if now_stale
                    else "fresh again: SERVING",
                    extra={"fields": {"staleness": round(state.staleness, 3)}},
                )
            stale = now_stale
        await asyncio.sleep(_FRESHNESS_TICK)


def _status(serving: bool) -> int:
    response = health_pb2.HealthCheckResponse
    return int(response.SERVING if serving else response.NOT_SERVING)


def _log_store(reachable: bool, state: DecisionState) -> None:
    fields = {"staleness": round(state.staleness, 3), "revision": state.revision}
    if reachable:
        log.info("store answers again", extra={"fields": fields})
    else:
        log.warning("store unreachable: deciding from the last snapshot", extra={"fields": fields})


@dataclass(frozen=True, slots=True)
class _Edge:
    """What a shutdown needs of a server: its calls, and its health to turn off."""

    calls: CallTracker
    health: health.aio.HealthServicer
    service: str


def _decision_server(
    state: DecisionState, metrics: Metrics, config: ServeConfig, gate: RegistryGate | None = None
) -> tuple[grpc.aio.Server, _Edge]:
    """`gate`: also serve Envoy's ext_authz `Check` with it. Both are admitted by one bound."""
    refused = metrics.errors.labels(grpc.StatusCode.RESOURCE_EXHAUSTED.name)
    calls = CallTracker(Admission(config.max_in_flight, on_refusal=refused.inc))
    options = _SHARED_OPTIONS if config.workers > 1 else _OPTIONS
    if config.max_queued > 0:
        options = [*options, *queue_options(config.max_queued)]
    # no interceptors on the hot path: the servicer's handlers are guarded once, here
    server = grpc.aio.server(options=options)
    service = authorizer_pb2.DESCRIPTOR.services_by_name["Authorizer"]
    add_guarded_servicer(server, service, AuthorizerService(state, metrics), calls)
    if gate is not None:
        add_envoy(server, gate, calls)
    name = service.full_name
    return server, _Edge(calls, _add_health_and_reflection(server, name), name)


async def _start_http(config: ServeConfig, gate: RegistryGate | None) -> HttpAuthEndpoint | None:
    listen = config.adapters.http_listen
    if gate is None or listen is None:
        return None
    try:
        return await serve_http_auth(listen, gate)
    except OSError as problem:
        raise StartupError(_cannot_listen("--http-auth-listen", listen, problem)) from None


async def _close_http(http: HttpAuthEndpoint | None) -> None:
    if http is not None:
        await http.close()


def _admin_port(
    config: ServeConfig, state: DecisionState, token: str
) -> tuple[AdminService, grpc.aio.Server, _Edge, int]:
    """The admin service over `state`, its server, and the port it is bound to (not started)."""
    service = AdminService(
        config.store,
        state.nudge,
        state=state,
        clock=state.clock,
        registry_region=config.adapters.registry_region,
    )
    server, edge = _admin_server(service, token)
    return service, server, edge, _bind(server, "--admin-listen", config.admin_listen, config)


def _admin_server(service: AdminService, token: str) -> tuple[grpc.aio.Server, _Edge]:
    calls = CallTracker()
    server = grpc.aio.server(
        options=_OPTIONS, interceptors=[calls, TokenInterceptor(token), UndecodableRefusal()]
    )
    admin_pb2_grpc.add_PolicyAdminServicer_to_server(service, server)
    name = admin_pb2.DESCRIPTOR.services_by_name["PolicyAdmin"].full_name
    return server, _Edge(calls, _add_health_and_reflection(server, name), name)


async def _drain(server: grpc.aio.Server, edge: _Edge, grace: float, queued: int) -> None:
    """Stop taking calls and finish the ones in flight, all within `grace`: NOT_SERVING for the
    health watchers; then serve what gRPC had already received when the signal came, and no
    more; then the listeners close, new calls are refused (gRPC's GOAWAY: the callers retry
    elsewhere) and every call taken runs to its answer.

    gRPC cancels, at `stop`, the calls it has received but not yet handed to Python: those were
    in flight for their callers. They are at most `queued` (the admission queue), served first in,
    first out: the port stops once that many more calls have started, or once none has started
    for `_GAP` seconds (nothing was waiting), whichever comes first, never after the grace."""
    deadline = time.monotonic() + grace
    not_serving = health_pb2.HealthCheckResponse.NOT_SERVING
    await edge.health.set(edge.service, not_serving)
    await edge.health.set(health.OVERALL_HEALTH, not_serving)
    calls = edge.calls
    enough = calls.started + max(1, queued)
    signalled = time.monotonic()
    while (
        calls.started < enough
        and time.monotonic() - max(calls.last_start, signalled) < _GAP
        and time.monotonic() < deadline
    ):
        await asyncio.sleep(_GAP / 4)
    await server.stop(max(0.0, deadline - time.monotonic()))


def _add_health_and_reflection(
    server: grpc.aio.Server, service_name: str
) -> health.aio.HealthServicer:
    checks = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(checks, server)
    serving = health_pb2.HealthCheckResponse.SERVING

    async def mark() -> None:
        await checks.set(service_name, serving)
        await checks.set(health.OVERALL_HEALTH, serving)

    asyncio.get_running_loop().create_task(mark())
    reflection.enable_server_reflection(
        (service_name, health.SERVICE_NAME, reflection.SERVICE_NAME), server
    )
    return checks


def end_with_parent() -> None:
    """A worker gets SIGTERM when the parent dies, even by SIGKILL (Linux's PR_SET_PDEATHSIG)."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def _bind(
    server: grpc.aio.Server, option: str, address: str, config: ServeConfig, *, shared: bool = False
) -> int:
    """`shared`: one of several workers binding the decision port (SO_REUSEPORT)."""
    try:
        if config.tls_cert and config.tls_key:
            port = server.add_secure_port(address, _server_credentials(config))
        else:
            port = server.add_insecure_port(address)
    except RuntimeError:  # grpc says only "Failed to bind"; the address was free a moment ago
        port = 0
    if port == 0:
        reason = "address already in use" if not shared else "cannot listen there"
        raise StartupError(f"{option} {address}: {reason}")
    return port


def _server_credentials(config: ServeConfig) -> grpc.ServerCredentials:
    assert config.tls_cert is not None and config.tls_key is not None
    client_ca = config.tls_client_ca.read_bytes() if config.tls_client_ca else None
    return grpc.ssl_server_credentials(
        [(config.tls_key.read_bytes(), config.tls_cert.read_bytes())],
        root_certificates=client_ca,
        require_client_auth=client_ca is not None,
    )


def _start_metrics(address: str | None) -> int | None:
    if not address:
        return None
    host, port = _split(address)
    try:
        return serve_metrics(host, port)
    except OSError as problem:
        raise StartupError(_cannot_listen("--metrics-listen", address, problem)) from None


def _announce(
    config: ServeConfig,
    decision: int,
    admin: int,
    metrics: int | None,
    *,
    workers: list[int] | None = None,
    http: HttpAuthEndpoint | None = None,
) -> None:
    ports = {
        "decision_port": decision,
        "admin_port": admin,
        "metrics_port": metrics,
        "http_auth_port": http.port if http is not None else None,
        "pid": os.getpid(),
        "workers": workers or [],
    }
    log.info("serving", extra={"fields": ports})
    if config.ready_file is not None:
        partial = config.ready_file.with_suffix(".partial")
        partial.write_text(json.dumps(ports))
        partial.replace(config.ready_file)


def _on_termination() -> asyncio.Event:
    """An event SIGTERM or SIGINT sets; the handlers are in place when this returns."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for number in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(number, stop.set)
    return stop


def _split(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host.strip("[]"), int(port)


def _host_for_grpc(host: str) -> str:
    return f"[{host}]" if ":" in host else host
