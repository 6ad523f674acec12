"""Between the client's dataclasses and the generated messages."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from dockgate._model import (
    Access,
    AccessChange,
    AccessFinding,
    ConditionalStatement,
    Decision,
    Outcome,
    Reason,
    SimulationResult,
)
from dockgate.v1 import analysis_pb2, authorizer_pb2

__all__ = [
    "ContextInput",
    "authorize_request",
    "change_from_wire",
    "decision_from_wire",
    "finding_from_wire",
    "preview_request",
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


_ACCESS: dict[int, Access] = {
    analysis_pb2.ACCESS_ALLOWED: Access.ALLOWED,
    analysis_pb2.ACCESS_CONDITIONAL: Access.CONDITIONAL,
    analysis_pb2.ACCESS_IMPLICITLY_DENIED: Access.IMPLICITLY_DENIED,
    analysis_pb2.ACCESS_EXPLICITLY_DENIED: Access.EXPLICITLY_DENIED,
}


def _access(value: int) -> Access:
    # never read an unknown access as a grant
    return _ACCESS.get(value, Access.IMPLICITLY_DENIED)


def _conditions(
    statements: Sequence[analysis_pb2.ConditionalStatement],
) -> tuple[ConditionalStatement, ...]:
    found = []
    for statement in statements:
        block: dict[str, dict[str, tuple[str, ...]]] = {}
        for clause in statement.condition:
            block.setdefault(clause.operator, {})[clause.key] = tuple(clause.values)
        found.append(
            ConditionalStatement(
                statement.policy,
                statement.statement,
                statement.sid if statement.HasField("sid") else None,
                statement.effect,
                block,
                tuple(statement.keys),
            )
        )
    return tuple(found)


def finding_from_wire(message: analysis_pb2.AccessFinding) -> AccessFinding:
    example: dict[str, str | tuple[str, ...]] | None = None
    if message.has_example:
        example = {
            entry.key: tuple(entry.values) if entry.list else (entry.values or [""])[0]
            for entry in message.example
        }
    return AccessFinding(
        message.principal,
        message.type,
        message.action,
        message.repository,
        _access(message.access),
        message.revision,
        reasons_from_wire(message.reasons),
        _conditions(message.conditions),
        example,
        message.decided,
    )


def change_from_wire(message: analysis_pb2.AccessChange) -> AccessChange:
    return AccessChange(
        message.principal,
        message.type,
        message.action,
        message.repository,
        _access(message.before),
        _access(message.after),
        message.new_access,
        message.revision,
        reasons_from_wire(message.reasons),
        _conditions(message.conditions),
        message.decided,
    )


def preview_request(
    bundle: Mapping[str, Any] | str | None,
    policy: Mapping[str, Any] | str | None,
    kind: str | None,
    target: str | None,
) -> analysis_pb2.PreviewRequest:
    """A bundle, or a policy with its kind and target; as JSON text when given as data."""
    if (bundle is None) == (policy is None):
        raise ValueError("give a bundle or a policy, not both")
    if bundle is not None:
        text = bundle if isinstance(bundle, str) else json.dumps(bundle)
        return analysis_pb2.PreviewRequest(bundle=text)
    if kind is None or target is None:
        raise ValueError("a policy needs its kind and target")
    document = policy if isinstance(policy, str) else json.dumps(policy)
    return analysis_pb2.PreviewRequest(
        policy=analysis_pb2.ProposedPolicy(document=document, kind=kind, target=target)
    )
