"""What the client returns: frozen dataclasses, never protobuf."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

__all__ = [
    "Access",
    "AccessChange",
    "AccessFinding",
    "ConditionalStatement",
    "Decision",
    "Outcome",
    "Reason",
    "SimulationResult",
]


class Outcome(StrEnum):
    """The outcome as AWS spells it."""

    ALLOWED = "Allowed"
    IMPLICITLY_DENIED = "ImplicitlyDenied"
    EXPLICITLY_DENIED = "ExplicitlyDenied"


@dataclass(frozen=True, slots=True)
class Reason:
    """A statement that decided (policy, index, Sid, effect), or a gate nothing passed."""

    phase: str
    detail: str
    effect: str | None = None
    policy: str | None = None
    statement: int | None = None
    sid: str | None = None


@dataclass(frozen=True, slots=True)
class Decision:
    outcome: Outcome
    revision: int
    reasons: tuple[Reason, ...] = ()
    """only when asked for with `explain=True`"""
    errors: tuple[str, ...] = ()
    """condition values that did not convert (each made its condition false)"""

    @property
    def allowed(self) -> bool:
        return self.outcome is Outcome.ALLOWED


@dataclass(frozen=True, slots=True)
class SimulationResult:
    id: str
    decision: str
    """an Outcome's spelling, or `Error` for a case whose input is rejected"""
    expect: str | None
    ok: bool
    reasons: tuple[Reason, ...] = ()
    error: str | None = None
    errors: tuple[str, ...] = ()


class Access(StrEnum):
    """An analysis's answer for one (principal, action, repository): the outcome's spellings, and
    `Conditional` (allowed in some request contexts only)."""

    ALLOWED = "Allowed"
    CONDITIONAL = "Conditional"
    IMPLICITLY_DENIED = "ImplicitlyDenied"
    EXPLICITLY_DENIED = "ExplicitlyDenied"

    @property
    def grants(self) -> bool:
        """Allowed, in every context or in some."""
        return self in (Access.ALLOWED, Access.CONDITIONAL)


@dataclass(frozen=True, slots=True)
class ConditionalStatement:
    """A statement whose conditions read what the caller sends."""

    policy: str
    statement: int
    sid: str | None
    effect: str
    condition: Mapping[str, Mapping[str, tuple[str, ...]]]
    """operator → key → values, as written"""
    keys: tuple[str, ...]
    """the keys the caller must send, lower-cased"""


@dataclass(frozen=True, slots=True)
class AccessFinding:
    """The access `principal` has to perform `action` on `repository` (`*`: an action without
    one). `decided` False: a repository policy's grant shown as written (to `*`, an account, a
    principal the store does not hold)."""

    principal: str
    type: str
    action: str
    repository: str
    access: Access
    revision: int
    reasons: tuple[Reason, ...] = ()
    conditions: tuple[ConditionalStatement, ...] = ()
    example: Mapping[str, str | tuple[str, ...]] | None = None
    """a context the server allows, for a `Conditional` finding, when one was found"""
    decided: bool = True


@dataclass(frozen=True, slots=True)
class AccessChange:
    """One (principal, action, repository) whose access a proposal would change."""

    principal: str
    type: str
    action: str
    repository: str
    before: Access
    after: Access
    new_access: bool
    revision: int
    reasons: tuple[Reason, ...] = ()
    conditions: tuple[ConditionalStatement, ...] = ()
    decided: bool = True
