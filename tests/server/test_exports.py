"""Each package's public surface is pinned: a change to `__all__` is a deliberate one."""

from __future__ import annotations

import importlib

import pytest

EXPORTS = {
    "dockgate_server.policy": [
        "ConditionClause",
        "Effect",
        "Finding",
        "Policy",
        "PolicyError",
        "PolicyKind",
        "SetQualifier",
        "Severity",
        "Statement",
    ],
    "dockgate_server.conditions": [
        "OPERATORS",
        "CompiledCondition",
        "Context",
        "ContextValue",
        "OperatorSpec",
        "compile_condition",
        "evaluate_condition",
    ],
    "dockgate_server.engine": [
        "CompiledPolicy",
        "Decision",
        "Outcome",
        "Phase",
        "PolicySet",
        "Question",
        "Reason",
        "Request",
        "RequestError",
        "authorize",
        "build_request",
        "compile_policy",
        "decide",
    ],
    "dockgate_server.store": [
        "BUNDLE_FORMAT",
        "BundleError",
        "Change",
        "Conflict",
        "Credentials",
        "Delta",
        "Fleet",
        "FleetStore",
        "Group",
        "ManagedPolicy",
        "MissingStoreError",
        "NotFound",
        "OrgNode",
        "Organization",
        "Refused",
        "Repository",
        "Role",
        "StoreError",
        "Unavailable",
        "User",
        "bundle_to_fleet",
        "fleet_to_bundle",
        "open_store",
    ],
    "dockgate_server.service": ["ServeConfig", "serve"],
    "dockgate_server.registry": [
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
    ],
    "dockgate_server.credentials": [
        "TOKEN_LIFETIME",
        "AccessDeniedError",
        "AssumeRoleInput",
        "CredentialInputError",
        "FederationInput",
        "Login",
        "LoginRejected",
        "LoginToken",
        "LoginVerifier",
        "Rejection",
        "assume_role",
        "check_login",
        "get_federation_token",
        "issue_token",
        "new_signing_key",
        "read_token",
    ],
}


@pytest.mark.parametrize("module", sorted(EXPORTS))
def test_all_is_pinned(module: str) -> None:
    loaded = importlib.import_module(module)
    assert sorted(loaded.__all__) == sorted(EXPORTS[module])
    for name in loaded.__all__:
        assert hasattr(loaded, name), name
