"""Simulation cases (the spec's JSON Lines format) in, decisions out; CLI and RPC share it."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from dockgate_server.engine.authorize import PolicySet, authorize
from dockgate_server.engine.compile import CompiledPolicy, compile_policy
from dockgate_server.engine.decision import Outcome, Reason
from dockgate_server.engine.request import Request, RequestError, build_request
from dockgate_server.policy.findings import PolicyError
from dockgate_server.policy.model import PolicyKind
from dockgate_server.policy.parse import load_json, parse_policy
from dockgate_server.policy.principal import CallerKind

__all__ = [
    "ERROR",
    "CaseError",
    "CaseResult",
    "SimulationCase",
    "load_case",
    "run_case",
    "simulate_lines",
]

ERROR = "Error"
"""The decision of a case whose input is rejected, and the `expect` of a case that must be."""

_EXPECTATIONS = frozenset({*(str(o) for o in Outcome), ERROR})
_CASE_FIELDS = frozenset(
    {
        "id",
        "note",
        "request",
        "identityPolicies",
        "resourcePolicy",
        "permissionsBoundary",
        "sessionPolicy",
        "serviceControlPolicies",
        "resourceControlPolicies",
        "principalTags",
        "resourceTags",
        "expect",
    }
)
_REQUEST_FIELDS = frozenset({"principal", "action", "resource", "context"})


class CaseError(ValueError):
    """A case that cannot be decided; the message names the place (a field, a policy pointer)."""


@dataclass(frozen=True, slots=True)
class SimulationCase:
    id: str
    request: Request
    policies: PolicySet
    expect: str | None
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class CaseResult:
    id: str
    decision: str
    expect: str | None
    reasons: tuple[Reason, ...] = ()
    error: str | None = None
    errors: tuple[str, ...] = ()
    warnings: tuple[str, ...] = field(default=())

    @property
    def ok(self) -> bool:
        if self.expect is None:  # a question, not a test: only a rejected case fails
            return self.decision != ERROR
        return self.decision == self.expect

    def to_json(self) -> dict[str, Any]:
        result: dict[str, Any] = {
            "id": self.id,
            "decision": self.decision,
            "expect": self.expect,
            "ok": self.ok,
            "matched": [reason.to_json() for reason in self.reasons],
        }
        if self.error is not None:
            result["error"] = self.error
        if self.errors:
            result["errors"] = list(self.errors)
        if self.warnings:
            result["warnings"] = list(self.warnings)
        return result


def simulate_lines(lines: Iterable[str]) -> Iterator[CaseResult]:
    """One result per non-blank line of a JSON Lines corpus."""
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            raw = load_json(line)
        except ValueError as problem:
            yield CaseResult(
                f"line {number}", ERROR, None, error=f"line {number}: invalid JSON: {problem}"
            )
            continue
        yield run_case(raw, fallback_id=f"line {number}")


def run_case(raw: object, *, fallback_id: str = "case") -> CaseResult:
    case_id = fallback_id
    expect: str | None = None
    if isinstance(raw, dict):
        given_id, given_expect = raw.get("id"), raw.get("expect")
        case_id = given_id if isinstance(given_id, str) else fallback_id
        expect = given_expect if given_expect in _EXPECTATIONS else None
    try:
        case = load_case(raw, fallback_id=fallback_id)
    except CaseError as problem:
        return CaseResult(case_id, ERROR, expect, error=f"case `{case_id}`: {problem}")
    decision = authorize(case.request, case.policies)
    return CaseResult(
        case.id,
        str(decision.outcome),
        case.expect,
        decision.reasons,
        errors=decision.errors,
        warnings=case.warnings,
    )


def load_case(raw: object, *, fallback_id: str = "case") -> SimulationCase:
    """Validate a case and compile its policies; raises `CaseError` naming the place."""
    if not isinstance(raw, dict):
        raise CaseError("a case must be a JSON object")
    unknown = sorted(set(raw) - _CASE_FIELDS)
    if unknown:
        raise CaseError(f"unknown field `{unknown[0]}`")
    case_id = raw.get("id", fallback_id)
    if not isinstance(case_id, str):
        raise CaseError("`id` must be a string")
    expect = raw.get("expect")
    if expect is not None and expect not in _EXPECTATIONS:
        raise CaseError(
            f"`expect` must be one of {', '.join(sorted(_EXPECTATIONS))}, got `{expect}`"
        )
    request = _load_request(raw)
    warnings: list[str] = []
    identity = [
        _compile(document, PolicyKind.IDENTITY, f"identityPolicies[{index}]")
        for index, document in enumerate(_list_field(raw, "identityPolicies"))
    ]
    if request.caller.kind is CallerKind.ROOT and (identity or raw.get("permissionsBoundary")):
        warnings.append(
            "identity policies and boundaries cannot be attached to the root user: ignored"
        )
    policies = PolicySet(
        identity=tuple(identity),
        resource=_optional(raw, "resourcePolicy", PolicyKind.REPOSITORY),
        boundary=_optional(raw, "permissionsBoundary", PolicyKind.BOUNDARY),
        session=_optional(raw, "sessionPolicy", PolicyKind.SESSION),
        service_control=_levels(raw, "serviceControlPolicies", PolicyKind.SCP),
        resource_control=_levels(raw, "resourceControlPolicies", PolicyKind.RCP),
    )
    return SimulationCase(case_id, request, policies, expect, tuple(warnings))


def _load_request(raw: Mapping[str, Any]) -> Request:
    body = raw.get("request")
    if not isinstance(body, dict):
        raise CaseError("`request` must be an object")
    unknown = sorted(set(body) - _REQUEST_FIELDS)
    if unknown:
        raise CaseError(f"unknown field `request.{unknown[0]}`")
    for name in ("principal", "action", "resource"):
        if not isinstance(body.get(name), str):
            raise CaseError(f"`request.{name}` must be a string")
    context = body.get("context") or {}
    if not isinstance(context, dict):
        raise CaseError("`request.context` must be an object")
    try:
        return build_request(
            body["principal"],
            body["action"],
            body["resource"],
            context,
            principal_tags=_tags(raw, "principalTags"),
            resource_tags=_tags(raw, "resourceTags"),
        )
    except RequestError as problem:
        raise CaseError(f"request: {problem}") from None


def _tags(raw: Mapping[str, Any], name: str) -> dict[str, str]:
    tags = raw.get(name) or {}
    if not isinstance(tags, dict) or not all(isinstance(v, str) for v in tags.values()):
        raise CaseError(f"`{name}` must be an object of strings")
    return tags


def _list_field(raw: Mapping[str, Any], name: str) -> list[Any]:
    value = raw.get(name) or []
    if not isinstance(value, list):
        raise CaseError(f"`{name}` must be a list of policies")
    return value


def _compile(document: object, kind: PolicyKind, name: str) -> CompiledPolicy:
    try:
        return compile_policy(parse_policy(document, kind=kind, name=name))
    except PolicyError as problem:
        raise CaseError(str(problem)) from None


def _optional(raw: Mapping[str, Any], name: str, kind: PolicyKind) -> CompiledPolicy | None:
    document = raw.get(name)
    return None if document is None else _compile(document, kind, name)


def _levels(
    raw: Mapping[str, Any], name: str, kind: PolicyKind
) -> tuple[tuple[CompiledPolicy, ...], ...] | None:
    levels = raw.get(name)
    if levels is None:
        return None
    if not isinstance(levels, list) or not all(isinstance(level, list) for level in levels):
        raise CaseError(f"`{name}` must be a list of levels, each a list of policies")
    return tuple(
        tuple(_compile(document, kind, f"{name}[{i}][{j}]") for j, document in enumerate(level))
        for i, level in enumerate(levels)
    )
