"""What `dockgate serve` runs: the store, the doors that are on with their settings, the processes.

Importable without any door (the service layer names it): the doors' settings are plain objects
here, each read by its own door.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from dockgate_server.frontends.door import Tls
from dockgate_server.frontends.registry import RegistrySettings

__all__ = ["ServeConfig"]


def _default_doors() -> dict[str, object]:
    # the doors import the service layer, which imports this module: only once it is needed
    from dockgate_server.frontends.admin import AdminSettings  # noqa: PLC0415
    from dockgate_server.frontends.decision import DecisionSettings  # noqa: PLC0415
    from dockgate_server.frontends.metrics import MetricsSettings  # noqa: PLC0415

    return {"decision": DecisionSettings(), "admin": AdminSettings(), "metrics": MetricsSettings()}


@dataclass(frozen=True, slots=True)
class ServeConfig:
    data_dir: Path
    store: str | Path
    """a path or a store URL (`sqlite:///…`, `postgresql://…`)"""
    doors: Mapping[str, object] = field(default_factory=_default_doors)
    """door name → its settings (what its `configure` returned); a door not named is off. By
    default the decision port, the admin port and the metrics, on their default addresses."""
    registry: RegistrySettings = field(default_factory=RegistrySettings)
    """the registry the registry doors serve"""
    workers: int = 1
    tls: Tls | None = None
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
    max_staleness: float | None = None
    """seconds without an answer from the store after which decisions are refused (UNAVAILABLE)
    and the decision port's health is NOT_SERVING; None: decide from the last snapshot forever"""
