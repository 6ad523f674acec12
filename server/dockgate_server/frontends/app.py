"""Run the enabled doors: in one process, or `--workers N` sharing the `EVERY_WORKER` doors' ports.

With `--workers N`, N processes are forked before any gRPC object exists; each opens the doors
that run in every worker (their ports bound with SO_REUSEPORT, set only then and only on the
workers' sockets), and the parent opens the doors that run once. Each process keeps its own
snapshot fresh from the store, so a write through the admin port reaches all of them. Every
address is probed before anything starts: one in use, by anyone, fails start-up with one line
naming its option. SIGTERM stops taking calls at once and finishes the ones in flight.

The store's freshness is reflected by every door (`Opened.reflect`): the gRPC ports say in
`dockgate.v1.Store` whether the store answers, and with `--max-staleness` the decision port turns
NOT_SERVING once the snapshot is older than that, while decisions answer UNAVAILABLE.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import shutil
import signal
import socket
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import values as prometheus_values

from dockgate_server import native
from dockgate_server.addresses import parse_address
from dockgate_server.frontends.config import ServeConfig
from dockgate_server.frontends.door import (
    Door,
    Listen,
    Opened,
    Placement,
    Site,
    StartupError,
    cannot_listen,
)
from dockgate_server.frontends.runtime import ProcessRuntime
from dockgate_server.frontends.table import DOORS
from dockgate_server.service.metrics import Metrics
from dockgate_server.service.processes import end_with_parent

__all__ = ["check_addresses", "enabled", "run"]

log = logging.getLogger("dockgate.server")

_FRESHNESS_TICK = 0.1
"""seconds between two looks at the snapshot's staleness (health and the gauge)"""
Enabled = list[tuple[Door[Any], Any]]
"""the doors that are on, each with its settings, in the table's order"""


def enabled(config: ServeConfig, placement: Placement | None = None) -> Enabled:
    """The doors that are on (of `placement` only, when given), in the table's order."""
    return [
        (door, config.doors[door.name])
        for door in DOORS
        if config.doors.get(door.name) is not None
        and (placement is None or door.placement is placement)
    ]


def run(config: ServeConfig) -> int:
    """Serve until SIGTERM or SIGINT; 0 then. `StartupError` when a door cannot start."""
    if config.workers <= 1:
        asyncio.run(_single_process(config))
        return 0
    return _multi_process(config)


def check_addresses(config: ServeConfig) -> None:
    """Every fixed address is free, before anything starts: a bind without SO_REUSEPORT fails
    whoever holds the port, even a process that set SO_REUSEPORT itself."""
    for listen in _listens(enabled(config)):
        address = parse_address(listen.address, listen.option, listen=True)
        if address.port == 0:
            continue
        with _socket_for(address.host) as probe:
            # SO_REUSEADDR, as every server here sets it: a port whose old connections linger in
            # TIME_WAIT is free; a listening socket still makes the bind fail
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((address.host, address.port))
                probe.listen(1)
            except OSError as problem:
                raise StartupError(cannot_listen(listen.option, listen.address, problem)) from None


# -- one process ------------------------------------------------------------------------------


async def _single_process(config: ServeConfig) -> None:
    def ready(ports: Mapping[str, int]) -> None:
        _announce(config, ports)

    await _serve_doors(config, enabled(config), Metrics(), where=_Sharing(), serving=ready)


# -- several processes ------------------------------------------------------------------------


def _multi_process(config: ServeConfig) -> int:
    metrics_dir = tempfile.mkdtemp(prefix="dockgate-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
    # prometheus_client chose in-memory values when it was imported, before the variable was set;
    # choose again (no metric exists yet) so that the workers write to the shared directory
    prometheus_values.ValueClass = prometheus_values.get_value_class()  # type: ignore[no-untyped-call]
    every = enabled(config, Placement.EVERY_WORKER)
    reserved: list[socket.socket] = []
    shared = _Sharing(shared=True)
    shared_ports: dict[str, int] = {}
    for listen in _listens(every):
        address = parse_address(listen.address, listen.option, listen=True)
        port = address.port
        if port == 0:  # every worker must bind the same port: pick it once, hold it while they bind
            holder = _socket_for(address.host)
            holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            holder.bind((address.host, 0))
            reserved.append(holder)
            port = holder.getsockname()[1]
        # A fixed port was found free just before (`check_addresses`, without SO_REUSEPORT); the
        # workers bind it with SO_REUSEPORT at once. Only a process of this user that binds it
        # with SO_REUSEPORT in between could join them: the kernel refuses anyone else.
        shared.addresses[listen.option] = _host_port(address.host, port)
        shared_ports[listen.announce] = port
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
                asyncio.run(_worker(config, every, shared, write_end))
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
    for holder in reserved:
        holder.close()
    signalled = False
    try:
        _await_workers(ready)
        asyncio.run(_parent(config, shared_ports, children))
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
    """Until every worker serves its doors: only then may the server say it is ready."""
    for descriptor in ready:
        with os.fdopen(descriptor, "rb") as pipe:
            said = pipe.read()
            if said.startswith(b"!"):
                raise StartupError(said[1:].decode(errors="replace"))
            if said != b"1":
                raise RuntimeError("a worker exited before serving")


async def _worker(config: ServeConfig, doors: Enabled, shared: _Sharing, ready: int) -> None:
    def serving(ports: Mapping[str, int]) -> None:
        os.write(ready, b"1")  # serving, and a SIGTERM from now on is graceful
        os.close(ready)

    await _serve_doors(config, doors, Metrics(), where=shared, serving=serving)


async def _parent(config: ServeConfig, shared_ports: dict[str, int], children: list[int]) -> None:
    def serving(ports: Mapping[str, int]) -> None:
        _announce(config, {**shared_ports, **ports}, workers=children)

    def stopping() -> None:  # the workers finish their calls in flight while these doors do
        for pid in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)

    # the workers decide; this runtime serves the credential calls and the light doors
    doors = enabled(config, Placement.ONE_PROCESS)
    await _serve_doors(config, doors, None, where=_Sharing(), serving=serving, stopping=stopping)


# -- doors in one process ---------------------------------------------------------------------


@dataclass(slots=True)
class _Sharing:
    """How a process binds the `EVERY_WORKER` ports: alone, or as one of several workers."""

    shared: bool = False
    addresses: dict[str, str] = field(default_factory=dict)
    """option → the address reserved for every worker"""


async def _serve_doors(
    config: ServeConfig,
    doors: Enabled,
    metrics: Metrics | None,
    *,
    where: _Sharing,
    serving: Callable[[Mapping[str, int]], None],
    stopping: Callable[[], None] | None = None,
) -> None:
    """Open `doors` (all bound before any serves), serve them until SIGTERM or SIGINT, drain."""
    runtime = ProcessRuntime.start(
        config.store,
        metrics,
        poll_interval=config.poll_interval,
        cache_size=config.cache_size,
        clock_offset_file=config.clock_offset_file,
        max_staleness=config.max_staleness,
    )
    site = Site(
        runtime, config.data_dir, config.registry, config.tls, where.shared, where.addresses
    )
    opened: list[Opened] = []
    try:
        for door, settings in doors:
            opened.append(await door.open(settings, site))
        for door_opened in opened:
            await door_opened.serve()
    except BaseException:
        await _release(opened)
        runtime.stop()
        raise
    watcher = asyncio.create_task(_watch_freshness(runtime, opened))
    signalled = _on_termination()  # before the announcement: a SIGTERM after it is graceful
    serving({key: port for door_opened in opened for key, port in door_opened.ports.items()})
    await signalled.wait()
    watcher.cancel()  # the drain turns the ports NOT_SERVING; nothing may turn them back
    if stopping is not None:
        stopping()
    log.info("stopping: finishing calls in flight", extra={"fields": {"grace": config.grace}})
    await asyncio.gather(*(door_opened.drain(config.grace) for door_opened in opened))
    runtime.stop()


async def _release(opened: list[Opened]) -> None:
    """Doors opened before one failed: closed at once, the failure is what is reported."""
    for door_opened in opened:
        with contextlib.suppress(Exception):
            await door_opened.drain(0.0)


async def _watch_freshness(runtime: ProcessRuntime, opened: list[Opened]) -> None:
    """Until cancelled: the staleness gauge, and each door's reflection of the store's freshness
    (whether it answers; whether the snapshot is within `--max-staleness`)."""
    reachable: bool | None = None
    stale: bool | None = None
    while True:
        if runtime.metrics is not None:
            runtime.metrics.staleness.set(runtime.staleness)
        now_reachable = runtime.store_reachable
        now_stale = runtime.too_stale
        if now_reachable != reachable or now_stale != stale:
            for door_opened in opened:
                await door_opened.reflect(now_reachable, not now_stale)
        if now_reachable != reachable:
            if reachable is not None:
                _log_store(now_reachable, runtime)
            reachable = now_reachable
        if now_stale != stale:
            if now_stale or stale is not None:
                log.warning(
                    "past --max-staleness: NOT_SERVING, decisions refused"
                    if now_stale
                    else "fresh again: SERVING",
                    extra={"fields": {"staleness": round(runtime.staleness, 3)}},
                )
            stale = now_stale
        await asyncio.sleep(_FRESHNESS_TICK)


def _log_store(reachable: bool, runtime: ProcessRuntime) -> None:
    fields = {"staleness": round(runtime.staleness, 3), "revision": runtime.revision}
    if reachable:
        log.info("store answers again", extra={"fields": fields})
    else:
        log.warning("store unreachable: deciding from the last snapshot", extra={"fields": fields})


def _announce(
    config: ServeConfig, ports: Mapping[str, int], *, workers: list[int] | None = None
) -> None:
    announced: dict[str, object] = {key: ports.get(key) for door in DOORS for key in door.announces}
    announced["pid"] = os.getpid()
    announced["workers"] = workers or []
    log.info("serving", extra={"fields": {**announced, "engine": native.describe()}})
    if config.ready_file is not None:
        partial = config.ready_file.with_suffix(".partial")
        partial.write_text(json.dumps(announced))
        partial.replace(config.ready_file)


def _on_termination() -> asyncio.Event:
    """An event SIGTERM or SIGINT sets; the handlers are in place when this returns."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for number in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(number, stop.set)
    return stop


def _listens(doors: Enabled) -> list[Listen]:
    return [listen for door, settings in doors for listen in door.listens(settings)]


def _socket_for(host: str) -> socket.socket:
    try:
        family = socket.getaddrinfo(host or None, 0, type=socket.SOCK_STREAM)[0][0]
    except OSError:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
    return socket.socket(family, socket.SOCK_STREAM)


def _host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
