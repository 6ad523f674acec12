"""Registry adapters: registry API calls → ECR checks, for Envoy's ext_authz and nginx's
auth_request."""

from dockgate_server.registry.envoy import EnvoyAuthorization, add_envoy_authorization
from dockgate_server.registry.gate import (
    DecisionUnavailable,
    GateAnswer,
    GateConfig,
    GateRequest,
    RegistryGate,
    parse_networks,
)
from dockgate_server.registry.http import HttpAuthEndpoint, start_http_auth
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
    "EnvoyAuthorization",
    "GateAnswer",
    "GateConfig",
    "GateRequest",
    "HttpAuthEndpoint",
    "Registry",
    "RegistryGate",
    "Route",
    "RouteError",
    "RouteKind",
    "add_envoy_authorization",
    "parse_networks",
    "registry_from_host",
    "route_request",
    "start_http_auth",
    "strip_mount",
]
