"""The IAM policy language as typed, validated, normalised data (what `parse` produces)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from dockgate_server.policy.principal import PrincipalEntry

__all__ = [
    "VARIABLES_VERSION",
    "ConditionClause",
    "Effect",
    "Policy",
    "PolicyKind",
    "SetQualifier",
    "Statement",
]

VARIABLES_VERSION = "2012-10-17"
"""The one `Version` under which `${…}` is a policy variable."""


class PolicyKind(StrEnum):
    IDENTITY = "identity"
    REPOSITORY = "repository"
    BOUNDARY = "boundary"
    SESSION = "session"
    SCP = "scp"
    RCP = "rcp"

    @property
    def is_resource_based(self) -> bool:
        return self in (PolicyKind.REPOSITORY, PolicyKind.RCP)


class Effect(StrEnum):
    ALLOW = "Allow"
    DENY = "Deny"


class SetQualifier(StrEnum):
    FOR_ALL_VALUES = "ForAllValues"
    FOR_ANY_VALUE = "ForAnyValue"


@dataclass(frozen=True, slots=True)
class ConditionClause:
    """One key under one operator: `{"ForAnyValue:StringLikeIfExists": {"aws:TagKeys": [...]}}`."""

    operator: str
    """canonical base operator name, without qualifier or `IfExists`: `StringLike`"""
    qualifier: SetQualifier | None
    if_exists: bool
    key: str
    """the key as written (lookups lower-case it)"""
    values: tuple[str, ...]
    """JSON scalars as text: `true` is `"true"`, `10` is `"10"`"""
    spelled: str
    """the operator as written, for messages"""


@dataclass(frozen=True, slots=True)
class Statement:
    index: int
    sid: str | None
    effect: Effect
    actions: tuple[str, ...]
    not_action: bool
    resources: tuple[str, ...] | None
    """None when omitted (a repository policy statement covers its own repository)"""
    not_resource: bool
    principals: tuple[PrincipalEntry, ...] | None
    """None in policies that take no principal"""
    not_principal: bool
    conditions: tuple[ConditionClause, ...]


@dataclass(frozen=True, slots=True)
class Policy:
    name: str
    """how messages and decisions name it: `identityPolicies[1]`, `ci-push`"""
    kind: PolicyKind
    version: str | None
    id: str | None
    statements: tuple[Statement, ...]

    @property
    def has_variables(self) -> bool:
        return self.version == VARIABLES_VERSION
