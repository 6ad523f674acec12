"""The ways in: each door is one module behind `door.Door`, listed once in `table.DOORS`."""

from dockgate_server.frontends.door import (
    Door,
    Freshness,
    Listen,
    Opened,
    Option,
    Placement,
    Runtime,
    Section,
    Site,
    StartupError,
    Tls,
    Unavailable,
)

__all__ = [
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
]
