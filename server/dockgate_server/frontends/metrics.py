"""Prometheus metrics over HTTP (`/metrics`) in one process: with several workers, the parent
serves the sum of every process's counters."""

from __future__ import annotations

import argparse
from dataclasses import dataclass

from dockgate_server.addresses import parse_address
from dockgate_server.frontends.door import (
    Listen,
    Option,
    Placement,
    Site,
    StartupError,
    cannot_listen,
)
from dockgate_server.service.metrics import serve_metrics

__all__ = ["MetricsDoor", "MetricsEndpoint", "MetricsSettings"]


@dataclass(frozen=True, slots=True)
class MetricsSettings:
    listen: str = "127.0.0.1:9464"


class MetricsDoor:
    name = "metrics"
    placement = Placement.ONE_PROCESS
    announces = ("metrics_port",)
    uses_registry = False
    options = (
        Option(
            ("--metrics-listen",),
            {
                "metavar": "HOST:PORT",
                "default": "127.0.0.1:9464",
                "help": "Prometheus metrics over HTTP; empty to turn off (default: %(default)s)",
            },
            listens=True,
            empty_turns_off=True,
        ),
    )

    def configure(self, arguments: argparse.Namespace) -> MetricsSettings | None:
        return MetricsSettings(arguments.metrics_listen) if arguments.metrics_listen else None

    def listens(self, settings: MetricsSettings) -> tuple[Listen, ...]:
        return (Listen("--metrics-listen", settings.listen, "metrics_port"),)

    async def open(self, settings: MetricsSettings, site: Site) -> MetricsEndpoint:
        address = parse_address(settings.listen, "--metrics-listen", listen=True)
        try:
            port = serve_metrics(address.host, address.port)
        except OSError as problem:
            message = cannot_listen("--metrics-listen", settings.listen, problem)
            raise StartupError(message) from None
        return MetricsEndpoint({"metrics_port": port})


class MetricsEndpoint:
    """prometheus_client's server: a daemon thread that ends with the process."""

    def __init__(self, ports: dict[str, int]) -> None:
        self.ports = ports

    async def serve(self) -> None:
        """It answers from the moment it is bound."""

    async def reflect(self, reachable: bool, fresh: bool) -> None:
        """The staleness gauge says it: nothing to turn off here."""

    async def drain(self, grace: float) -> None:
        """Metrics are read until the process ends: a scrape during the drain still answers."""
