"""Wire conversion: protobuf messages in, engine values out, and back. No decisions here."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import grpc

from dockgate.v1 import authorizer_pb2, errors_pb2
from dockgate_server.engine.decision import Decision, Outcome, Reason
from dockgate_server.engine.request import (
    MAX_CONTEXT_BYTES,
    MAX_CONTEXT_KEYS,
    MAX_CONTEXT_VALUES,
    encoded_size,
)
from dockgate_server.policy.parse import load_json
from dockgate_server.service.errors import ServiceError

__all__ = [
    "MAX_CONTEXT_BYTES",
    "MAX_CONTEXT_KEYS",
    "MAX_CONTEXT_VALUES",
    "OUTCOMES",
    "context_from_wire",
    "decision_to_wire",
    "fill_decision",
    "reasons_to_wire",
    "simulation_case_from_wire",
]

_MAX_FIELD = 2048

OUTCOMES = {
    Outcome.ALLOWED: authorizer_pb2.OUTCOME_ALLOWED,
    Outcome.IMPLICITLY_DENIED: authorizer_pb2.OUTCOME_IMPLICITLY_DENIED,
    Outcome.EXPLICITLY_DENIED: authorizer_pb2.OUTCOME_EXPLICITLY_DENIED,
}


def invalid(reason: int, field: str, message: str) -> ServiceError:
    return ServiceError(
        grpc.StatusCode.INVALID_ARGUMENT, reason, f"`{field}`: {message}", field=field
    )


def check_request_fields(request: authorizer_pb2.AuthorizeRequest) -> None:
    """Sizes and presence, before the engine parses anything."""
    principal, action, resource = request.principal, request.action, request.resource
    if (
        principal
        and action
        and resource
        and len(principal) <= _MAX_FIELD
        and len(action) <= _MAX_FIELD
        and len(resource) <= _MAX_FIELD
    ):
        return  # every request but a refused one: no loop, no lookups by name
    for field, reason in (
        ("principal", errors_pb2.INVALID_PRINCIPAL),
        ("action", errors_pb2.INVALID_ACTION),
        ("resource", errors_pb2.INVALID_RESOURCE),
    ):
        value = getattr(request, field)
        if not value:
            raise invalid(reason, field, "is required")
        if len(value) > _MAX_FIELD:
            raise invalid(
                errors_pb2.REQUEST_TOO_LARGE, field, f"is longer than {_MAX_FIELD} characters"
            )


def context_from_wire(
    context: Mapping[str, authorizer_pb2.ContextValues],
) -> dict[str, str | list[str]]:
    """One value is a string; several are a list (a key's type comes from the operator).

    Keys, values and UTF-8 bytes are counted as they are converted, and conversion stops at the
    first bound passed: a key with millions of empty strings is refused before any is copied."""
    if len(context) > MAX_CONTEXT_KEYS:
        raise _too_large(f"has more than {MAX_CONTEXT_KEYS} keys")
    # A character is at most 4 UTF-8 bytes: while 4 x the characters fit the byte bound, the
    # exact count cannot pass it, and only characters are counted. Past that (or past the
    # number of values), the exact conversion below decides, from the first key again.
    count = chars = 0
    quick: dict[str, str | list[str]] = {}
    for key in context:
        values = context[key].values
        count += len(values)
        if count > MAX_CONTEXT_VALUES:
            return _context_exactly(context)
        if len(values) == 1:
            value = values[0]
            chars += len(key) + len(value)
            quick[key] = value
        else:
            listed = list(values)
            chars += len(key) + sum(map(len, listed))
            quick[key] = listed
        if chars > _QUICK_CHARS:
            return _context_exactly(context)
    return quick


_QUICK_CHARS = MAX_CONTEXT_BYTES // 4


def _context_exactly(
    context: Mapping[str, authorizer_pb2.ContextValues],
) -> dict[str, str | list[str]]:
    count = size = 0
    result: dict[str, str | list[str]] = {}
    for key in context:  # keys, then lookups: `items()` is a Python-level generator here
        values = context[key].values
        count += len(values)
        if count > MAX_CONTEXT_VALUES:
            raise _too_large(f"has more than {MAX_CONTEXT_VALUES} values")
        size += encoded_size(key)
        if len(values) == 1:  # the usual case, on every request: no list made
            value = values[0]
            size += encoded_size(value)
            result[key] = value
        else:
            listed = list(values)
            size += sum(map(encoded_size, listed))
            result[key] = listed
        if size > MAX_CONTEXT_BYTES:
            raise _too_large(f"is larger than {MAX_CONTEXT_BYTES} bytes")
    return result


def _too_large(message: str) -> ServiceError:
    return invalid(errors_pb2.REQUEST_TOO_LARGE, "context", message)


def reasons_to_wire(reasons: Iterable[Reason]) -> list[authorizer_pb2.Reason]:
    wire = []
    for reason in reasons:
        message = authorizer_pb2.Reason(
            phase=str(reason.phase),
            detail=reason.detail,
            effect=str(reason.effect) if reason.effect else "",
            policy=reason.policy or "",
            sid=reason.sid or "",
        )
        if reason.statement is not None:
            message.statement = reason.statement
        wire.append(message)
    return wire


def decision_to_wire(
    decision: Decision, revision: int, explain: bool
) -> authorizer_pb2.AuthorizeResponse:
    return authorizer_pb2.AuthorizeResponse(
        outcome=OUTCOMES[decision.outcome],
        reasons=reasons_to_wire(decision.reasons) if explain else (),
        errors=decision.errors,
        revision=revision,
    )


def fill_decision(
    message: authorizer_pb2.AuthorizeResponse, decision: Decision, revision: int, explain: bool
) -> None:
    """`decision_to_wire` into a message that already exists (a batch result's, in place)."""
    message.outcome = OUTCOMES[decision.outcome]
    if explain and decision.reasons:
        message.reasons.extend(reasons_to_wire(decision.reasons))
    if decision.errors:
        message.errors.extend(decision.errors)
    message.revision = revision


def simulation_case_from_wire(request: authorizer_pb2.SimulateRequest) -> dict[str, Any]:
    """The case as the JSON Lines format spells it, so `simulate` decides it exactly as the CLI."""

    def document(text: str, field: str) -> Any:
        try:
            return load_json(text)
        except ValueError as problem:
            raise invalid(errors_pb2.INVALID_CASE, field, f"is not JSON: {problem}") from None

    inner = request.request
    case: dict[str, Any] = {
        "id": request.id or "case",
        "request": {
            "principal": inner.principal,
            "action": inner.action,
            "resource": inner.resource,
            "context": context_from_wire(inner.context),
        },
        "identityPolicies": [
            document(t, f"identity_policies[{i}]") for i, t in enumerate(request.identity_policies)
        ],
        "principalTags": dict(request.principal_tags),
        "resourceTags": dict(request.resource_tags),
    }
    if request.HasField("resource_policy"):
        case["resourcePolicy"] = document(request.resource_policy, "resource_policy")
    if request.HasField("permissions_boundary"):
        case["permissionsBoundary"] = document(request.permissions_boundary, "permissions_boundary")
    if request.HasField("session_policy"):
        case["sessionPolicy"] = document(request.session_policy, "session_policy")
    if request.has_service_control_policies:
        case["serviceControlPolicies"] = [
            [document(t, f"service_control_policies[{i}]") for t in level.policies]
            for i, level in enumerate(request.service_control_policies)
        ]
    if request.has_resource_control_policies:
        case["resourceControlPolicies"] = [
            [document(t, f"resource_control_policies[{i}]") for t in level.policies]
            for i, level in enumerate(request.resource_control_policies)
        ]
    if request.expect:
        case["expect"] = request.expect
    return case
