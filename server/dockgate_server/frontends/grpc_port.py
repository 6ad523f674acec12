"""A gRPC port as the doors open it: options, TLS, health and reflection, freshness, the drain.

gRPC sets SO_REUSEPORT by default, so a second server on a port in use would bind silently: a
port binds without it, except the decision port of several workers, which each bind it (the
kernel spreads the connections). SIGTERM turns the port NOT_SERVING, serves what gRPC had already
received, then stops within the grace (see `drain`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

import grpc
from google.protobuf.descriptor import ServiceDescriptor
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from dockgate_server.frontends.door import StartupError, Tls
from dockgate_server.service.admission import queue_options
from dockgate_server.service.interceptors import CallTracker, add_guarded_servicer

__all__ = ["STORE_HEALTH", "GrpcPort"]

STORE_HEALTH = "dockgate.v1.Store"
"""the health entry saying whether this replica's store answers"""
_MAX_MESSAGE = 8 * 1024 * 1024
_GAP = 0.05
"""Seconds without a new call after which a stopping port has served all gRPC held for it."""
_OPTIONS = [
    ("grpc.max_receive_message_length", _MAX_MESSAGE),
    ("grpc.max_send_message_length", _MAX_MESSAGE),
    ("grpc.so_reuseport", 0),
]
_SHARED_OPTIONS = [*_OPTIONS[:-1], ("grpc.so_reuseport", 1)]


class GrpcPort:
    """One gRPC server: its services, health and reflection for `service`; bound by `bind`.

    `decides`: its health (the service and the overall entry) turns NOT_SERVING past
    `--max-staleness`, so that a load balancer moves away. Every port says in `dockgate.v1.Store`
    whether the store answers. `queued`: the calls gRPC holds before it sheds (0: its default),
    which is also how many calls a drain serves after the signal at most. `reflected`: the
    other services added to the port that reflection lists."""

    def __init__(
        self,
        service: str,
        *,
        calls: CallTracker,
        interceptors: Sequence[grpc.aio.ServerInterceptor] = (),
        shared: bool = False,
        queued: int = 0,
        decides: bool = False,
        reflected: Sequence[str] = (),
    ) -> None:
        options = _SHARED_OPTIONS if shared else _OPTIONS
        if queued > 0:
            options = [*options, *queue_options(queued)]
        # no interceptors on the decision port's hot path: its handlers are guarded once
        self.server = (
            grpc.aio.server(options=options, interceptors=list(interceptors))
            if interceptors
            else grpc.aio.server(options=options)
        )
        self.service = service
        self.calls = calls
        self.shared = shared
        self.queued = queued
        self.decides = decides
        self.health = health.aio.HealthServicer()
        self._seen: tuple[bool, bool] | None = None
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        reflection.enable_server_reflection(
            (service, *reflected, health.SERVICE_NAME, reflection.SERVICE_NAME), self.server
        )

    def add_guarded(self, service: ServiceDescriptor, servicer: object) -> None:
        """Serve `service`, each call tracked and admitted as the port's calls are."""
        add_guarded_servicer(self.server, service, servicer, self.calls)

    def bind(self, option: str, address: str, tls: Tls | None) -> int:
        """The port bound (port 0: the one chosen); `StartupError` naming `option`."""
        try:
            port = (
                self.server.add_secure_port(address, tls.credentials())
                if tls is not None
                else self.server.add_insecure_port(address)
            )
        except RuntimeError:  # grpc says only "Failed to bind"; the address was free a moment ago
            port = 0
        if port == 0:
            reason = "address already in use" if not self.shared else "cannot listen there"
            raise StartupError(f"{option} {address}: {reason}")
        return port

    async def serve(self) -> None:
        serving = health_pb2.HealthCheckResponse.SERVING
        await self.health.set(self.service, serving)
        await self.health.set(health.OVERALL_HEALTH, serving)
        await self.server.start()

    async def reflect(self, reachable: bool, fresh: bool) -> None:
        seen = self._seen
        if seen is None or seen[0] != reachable:
            await self.health.set(STORE_HEALTH, _status(reachable))
        if self.decides and (seen is None or seen[1] != fresh):
            await self.health.set(self.service, _status(fresh))
            await self.health.set(health.OVERALL_HEALTH, _status(fresh))
        self._seen = (reachable, fresh)

    async def drain(self, grace: float) -> None:
        """Stop taking calls and finish the ones in flight, all within `grace`: NOT_SERVING for
        the health watchers; then serve what gRPC had already received when the signal came,
        and no more; then the listeners close, new calls are refused (gRPC's GOAWAY: the callers
        retry elsewhere) and every call taken runs to its answer.

        gRPC cancels, at `stop`, the calls it has received but not yet handed to Python: those
        were in flight for their callers. They are at most `queued` (the admission queue), served
        first in, first out: the port stops once that many more calls have started, or once none
        has started for `_GAP` seconds (nothing was waiting), whichever comes first, never after
        the grace."""
        deadline = time.monotonic() + grace
        not_serving = health_pb2.HealthCheckResponse.NOT_SERVING
        await self.health.set(self.service, not_serving)
        await self.health.set(health.OVERALL_HEALTH, not_serving)
        calls = self.calls
        enough = calls.started + max(1, self.queued)
        signalled = time.monotonic()
        while (
            calls.started < enough
            and time.monotonic() - max(calls.last_start, signalled) < _GAP
            and time.monotonic() < deadline
        ):
            await asyncio.sleep(_GAP / 4)
        await self.server.stop(max(0.0, deadline - time.monotonic()))


def _status(serving: bool) -> int:
    response = health_pb2.HealthCheckResponse
    return int(response.SERVING if serving else response.NOT_SERVING)
