"""The doors `dockgate serve` knows, in the order they open: a new way in is one entry here.

A door that adds its services to another's port comes after it (Envoy after the decision port).
"""

from __future__ import annotations

from typing import Any

from dockgate_server.frontends.admin import AdminDoor
from dockgate_server.frontends.authzen import AuthzenDoor
from dockgate_server.frontends.console import ConsoleDoor
from dockgate_server.frontends.decision import DecisionDoor
from dockgate_server.frontends.door import Door
from dockgate_server.frontends.envoy import EnvoyDoor
from dockgate_server.frontends.metrics import MetricsDoor
from dockgate_server.frontends.nginx import NginxDoor
from dockgate_server.frontends.token import TokenDoor

__all__ = ["DOORS"]

DOORS: tuple[Door[Any], ...] = (
    DecisionDoor(),
    AdminDoor(),
    MetricsDoor(),
    EnvoyDoor(),
    NginxDoor(),
    TokenDoor(),
    ConsoleDoor(),
    AuthzenDoor(),
)
