"""What an analysis answers: one principal, action and repository, and the access it has."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType

from dockgate_server.conditions.keys import ContextValue
from dockgate_server.engine.compile import CompiledStatement
from dockgate_server.engine.decision import Outcome, Reason

__all__ = ["Access", "ConditionalStatement", "Finding", "PrincipalType"]


class Access(StrEnum):
    """`Decision.outcome`'s spellings, and `Conditional`: allowed in some contexts only."""

    ALLOWED = "Allowed"
    CONDITIONAL = "Conditional"
    IMPLICITLY_DENIED = "ImplicitlyDenied"
    EXPLICITLY_DENIED = "ExplicitlyDenied"

    @classmethod
    def of(cls, outcome: Outcome) -> Access:
        return cls(str(outcome))

    @property
    def grants(self) -> bool:
        """Allowed, in every context or in some."""
        return self in (Access.ALLOWED, Access.CONDITIONAL)


class PrincipalType(StrEnum):
    """Who a finding is about: a principal of the store (decided), or a repository policy's
    grant to principals the store does not list (shown as written, not decided)."""

    USER = "User"
    ROLE = "Role"
    SESSION = "AssumedRole"
    FEDERATED_USER = "FederatedUser"
    ROOT = "Root"
    SERVICE = "Service"
    ANY_PRINCIPAL = "AnyPrincipal"
    """a grant to `*`: every principal, of any account"""
    ACCOUNT = "Account"
    """a grant to an account: its principals whose own policies allow too"""
    EXTERNAL = "ExternalPrincipal"
    """a grant naming a user, role or session the store does not hold"""

    @property
    def decided(self) -> bool:
        return self not in _GRANTS


_GRANTS = frozenset({PrincipalType.ANY_PRINCIPAL, PrincipalType.ACCOUNT, PrincipalType.EXTERNAL})


@dataclass(frozen=True, slots=True)
class ConditionalStatement:
    """A statement whose conditions read what the caller sends: for an Allow, access needs them
    to hold; for a Deny, access needs them not to."""

    policy: str
    statement: int
    sid: str | None
    effect: str
    condition: Mapping[str, Mapping[str, tuple[str, ...]]]
    """the statement's Condition block, operator → key → values, as written"""
    keys: tuple[str, ...]
    """the keys the caller must send, lower-cased"""

    @classmethod
    def of(cls, statement: CompiledStatement, keys: tuple[str, ...]) -> ConditionalStatement:
        block: dict[str, dict[str, tuple[str, ...]]] = {}
        for condition in statement.conditions:
            clause = condition.clause
            block.setdefault(clause.spelled, {})[clause.key] = clause.values
        return cls(
            statement.policy,
            statement.index,
            statement.sid,
            str(statement.effect),
            MappingProxyType(block),
            keys,
        )

    def to_json(self) -> dict[str, object]:
        result: dict[str, object] = {"policy": self.policy, "statement": self.statement}
        if self.sid is not None:
            result["sid"] = self.sid
        result["effect"] = self.effect
        result["condition"] = {
            operator: {key: list(values) for key, values in keys.items()}
            for operator, keys in self.condition.items()
        }
        result["keys"] = list(self.keys)
        return result


@dataclass(frozen=True, slots=True)
class Finding:
    """The access `principal` has to perform `action` on `repository` (an ARN, or `*` for an
    action without one), at `revision`.

    `reasons` are the statements and gates that decide (for `Conditional`, those that allow when
    the conditions go for access); `conditions` the statements whose conditions the caller's
    context decides; `example` a context that `decide` allows, when one was found.
    """

    principal: str
    type: PrincipalType
    action: str
    repository: str
    access: Access
    revision: int
    reasons: tuple[Reason, ...] = ()
    conditions: tuple[ConditionalStatement, ...] = ()
    example: Mapping[str, ContextValue] | None = field(default=None)

    @property
    def key(self) -> tuple[str, str, str]:
        """(principal, repository, action): what results are ordered and paged by"""
        return (self.principal, self.repository, self.action)

    def to_json(self) -> dict[str, object]:
        result: dict[str, object] = {
            "principal": self.principal,
            "type": str(self.type),
            "action": self.action,
            "repository": self.repository,
            "access": str(self.access),
            "revision": self.revision,
            "reasons": [reason.to_json() for reason in self.reasons],
        }
        if not self.type.decided:
            result["decided"] = False
        if self.conditions:
            result["conditions"] = [found.to_json() for found in self.conditions]
        if self.example is not None:
            result["example"] = {
                key: list(value) if isinstance(value, tuple) else value
                for key, value in self.example.items()
            }
        return result
