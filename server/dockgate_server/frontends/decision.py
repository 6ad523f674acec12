"""The decision port (`dockgate.v1.Authorizer`, and `dockgate.v1.Analyzer` beside it) in every
worker, admitting a bounded number of calls.

Its handlers are guarded once at registration (no interceptor on the hot path); calls past
`--max-in-flight` are refused at once with RESOURCE_EXHAUSTED, and gRPC itself holds at most
`--max-queued` before it sheds. Other doors may add their services to this port (Envoy's
`Check`): one admission bound covers them all.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, replace

import grpc

from dockgate.v1 import analysis_pb2, authorizer_pb2
from dockgate_server.frontends.door import Listen, Option, Placement, Site, Unavailable
from dockgate_server.frontends.grpc_port import GrpcPort
from dockgate_server.service.admission import DEFAULT_LIMIT, DEFAULT_QUEUE, Admission
from dockgate_server.service.analysis import AnalyzerService
from dockgate_server.service.interceptors import CallTracker

__all__ = ["DecisionDoor", "DecisionSettings"]

_SERVICE = authorizer_pb2.DESCRIPTOR.services_by_name["Authorizer"]
_ANALYZER = analysis_pb2.DESCRIPTOR.services_by_name["Analyzer"]


@dataclass(frozen=True, slots=True)
class DecisionSettings:
    listen: str = "127.0.0.1:50051"
    max_in_flight: int = DEFAULT_LIMIT
    """calls each process holds in its decision handlers; more are refused (RESOURCE_EXHAUSTED)"""
    max_queued: int = DEFAULT_QUEUE
    """calls gRPC holds for each process before it sheds them; 0 or less: gRPC's own default"""


class DecisionDoor:
    name = "decision"
    placement = Placement.EVERY_WORKER
    announces = ("decision_port",)
    uses_registry = False
    options = (
        Option(
            ("--listen",),
            {
                "metavar": "HOST:PORT",
                "default": "127.0.0.1:50051",
                "help": "the decision port; port 0: any free one (default: %(default)s)",
            },
            listens=True,
        ),
        Option(
            ("--max-in-flight",),
            {
                "type": int,
                "metavar": "N",
                "help": "calls each process holds in its decision handlers; more are refused at "
                f"once with RESOURCE_EXHAUSTED (default: {DEFAULT_LIMIT})",
            },
        ),
        Option(
            ("--max-queued",),
            {
                "type": int,
                "metavar": "N",
                "help": "calls gRPC holds for each process before it sheds them; 0: gRPC's own "
                f"default (default: {DEFAULT_QUEUE})",
            },
        ),
    )

    def configure(self, arguments: argparse.Namespace) -> DecisionSettings:
        settings = DecisionSettings(listen=arguments.listen)
        if arguments.max_in_flight is not None:
            settings = replace(settings, max_in_flight=max(1, arguments.max_in_flight))
        if arguments.max_queued is not None:
            settings = replace(settings, max_queued=max(0, arguments.max_queued))
        return settings

    def listens(self, settings: DecisionSettings) -> tuple[Listen, ...]:
        return (Listen("--listen", settings.listen, "decision_port"),)

    async def open(self, settings: DecisionSettings, site: Site) -> DecisionPort:
        runtime = site.runtime
        metrics = runtime.metrics
        if metrics is None:
            raise RuntimeError("the decision port needs a runtime that counts its decisions")
        refused = metrics.errors.labels(grpc.StatusCode.RESOURCE_EXHAUSTED.name)
        calls = CallTracker(Admission(settings.max_in_flight, on_refusal=refused.inc))
        port = GrpcPort(
            _SERVICE.full_name,
            calls=calls,
            shared=site.shared,
            queued=settings.max_queued,
            decides=True,
            reflected=(_ANALYZER.full_name,),
        )
        port.add_guarded(_SERVICE, runtime.decision_service())
        # the access questions, with the same TLS and admission as the decisions
        port.add_guarded(_ANALYZER, AnalyzerService(runtime, (Unavailable,)))
        bound = port.bind("--listen", site.address("--listen", settings.listen), site.tls)
        site.grpc_ports[self.name] = port
        return DecisionPort(port, {"decision_port": bound})


class DecisionPort:
    """The decision port bound in one process."""

    def __init__(self, port: GrpcPort, ports: dict[str, int]) -> None:
        self.port = port
        self.ports = ports

    async def serve(self) -> None:
        await self.port.serve()

    async def reflect(self, reachable: bool, fresh: bool) -> None:
        await self.port.reflect(reachable, fresh)

    async def drain(self, grace: float) -> None:
        await self.port.drain(grace)
