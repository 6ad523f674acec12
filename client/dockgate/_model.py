"""What the client returns: frozen dataclasses, never protobuf."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

__all__ = ["Decision", "Outcome", "Reason", "SimulationResult"]


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
