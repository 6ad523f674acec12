"""Between the client's dataclasses and the generated messages."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from dockgate._model import Decision, Outcome, Reason, SimulationResult
from dockgate.v1 import authorizer_pb2

__all__ = [
    "ContextInput",
    "authorize_request",
    "decision_from_wire",
    "simulate_request",
    "simulation_from_wire",
]

ContextInput = Mapping[str, str | Sequence[str]]
"""Condition keys of a request: each a string, or a list of strings for a multivalued key."""

_OUTCOMES = {
    authorizer_pb2.OUTCOME_ALLOWED: Outcome.ALLOWED,
    authorizer_pb2.OUTCOME_IMPLICITLY_DENIED: Outcome.IMPLICITLY_DENIED,
    authorizer_pb2.OUTCOME_EXPLICITLY_DENIED: Outcome.EXPLICITLY_DENIED,
}


def authorize_request(
    principal: str,
    action: str,
    resource: str,
    context: ContextInput | None = None,
    *,
    explain: bool = False,
    at_least_revision: int = 0,
) -> authorizer_pb2.AuthorizeRequest:
    request = authorizer_pb2.AuthorizeRequest(
        principal=principal,
        action=action,
        resource=resource,
        explain=explain,
        at_least_revision=at_least_revision,
    )
    for key, value in (context or {}).items():
        request.context[key].values.extend([value] if isinstance(value, str) else list(value))
    return request


def reasons_from_wire(reasons: Sequence[authorizer_pb2.Reason]) -> tuple[Reason, ...]:
    return tuple(
        Reason(
            phase=r.phase,
            detail=r.detail,
            effect=r.effect or None,
            policy=r.policy or None,
            statement=r.statement if r.HasField("statement") else None,
            sid=r.sid or None,
        )
        for r in reasons
    )


def decision_from_wire(response: authorizer_pb2.AuthorizeResponse) -> Decision:
    outcome = _OUTCOMES.get(response.outcome)
    if outcome is None:  # never read an unknown outcome as an allow
        outcome = Outcome.IMPLICITLY_DENIED
    return Decision(
        outcome, response.revision, reasons_from_wire(response.reasons), tuple(response.errors)
    )


def simulate_request(case: Mapping[str, Any]) -> authorizer_pb2.SimulateRequest:
    """A case in the JSON Lines format (a dict) as the Simulate message."""
    inner = case.get("request") or {}
    message = authorizer_pb2.SimulateRequest(
        id=str(case.get("id", "")),
        request=authorize_request(
            inner.get("principal", ""),
            inner.get("action", ""),
            inner.get("resource", ""),
            inner.get("context"),
        ),
        identity_policies=[_text(p) for p in case.get("identityPolicies") or []],
        principal_tags=case.get("principalTags") or {},
        resource_tags=case.get("resourceTags") or {},
        expect=case.get("expect") or "",
    )
    for field, name in (
        ("resource_policy", "resourcePolicy"),
        ("permissions_boundary", "permissionsBoundary"),
        ("session_policy", "sessionPolicy"),
    ):
        if case.get(name) is not None:
            setattr(message, field, _text(case[name]))
    if case.get("serviceControlPolicies") is not None:
        message.has_service_control_policies = True
        for level in case["serviceControlPolicies"]:
            message.service_control_policies.add(policies=[_text(p) for p in level])
    if case.get("resourceControlPolicies") is not None:
        message.has_resource_control_policies = True
        for level in case["resourceControlPolicies"]:
            message.resource_control_policies.add(policies=[_text(p) for p in level])
    return message


def simulation_from_wire(response: authorizer_pb2.SimulateResponse) -> SimulationResult:
    return SimulationResult(
        response.id,
        response.decision,
        response.expect or None,
        response.ok,
        reasons_from_wire(response.reasons),
        response.error or None,
        tuple(response.errors),
    )


def _text(document: Any) -> str:
    """A policy as JSON text. A string is encoded too: a case whose policy is a string must stay a
    case whose policy is a string (which the server rejects), not become the policy it spells."""
    return json.dumps(document)
