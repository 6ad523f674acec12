"""Registry API calls → ECR checks: the routes and the gate every registry door shares (Envoy's
ext_authz, nginx's auth_request and the token server live in `dockgate_server.frontends`)."""

from dockgate_server.registry.gate import (
    DecisionUnavailable,
    GateAnswer,
    GateConfig,
    GateRequest,
    RegistryGate,
    parse_networks,
)
from dockgate_server.registry.routes import (
    Check,
    Registry,
    Route,
    RouteError,
    RouteKind,
    registry_from_host,
    route_request,
    strip_mount,
)

__all__ = [
    "Check",
    "DecisionUnavailable",
    "GateAnswer",
    "GateConfig",
    "GateRequest",
    "Registry",
    "RegistryGate",
    "Route",
    "RouteError",
    "RouteKind",
    "parse_networks",
    "registry_from_host",
    "route_request",
    "strip_mount",
]
