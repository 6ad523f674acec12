"""The answer: an outcome as AWS spells it, the statements or gates that decided, and errors."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from dockgate_server.policy.model import Effect

__all__ = ["Decision", "Outcome", "Phase", "Reason"]


class Outcome(StrEnum):
    ALLOWED = "Allowed"
    IMPLICITLY_DENIED = "ImplicitlyDenied"
    EXPLICITLY_DENIED = "ExplicitlyDenied"


class Phase(StrEnum):
    """Which part of IAM's evaluation flow a reason belongs to."""

    REQUEST = "Request"
    IDENTITY_POLICY = "IdentityPolicy"
    RESOURCE_POLICY = "ResourcePolicy"
    PERMISSIONS_BOUNDARY = "PermissionsBoundary"
    SESSION_POLICY = "SessionPolicy"
    SERVICE_CONTROL_POLICY = "ServiceControlPolicy"
    RESOURCE_CONTROL_POLICY = "ResourceControlPolicy"
    ROOT_USER = "RootUser"


@dataclass(frozen=True, slots=True)
class Reason:
    """A statement that decided (policy, index, Sid, effect), or a gate that nothing passed."""

    phase: Phase
    detail: str
    effect: Effect | None = None
    policy: str | None = None
    statement: int | None = None
    sid: str | None = None

    def to_json(self) -> dict[str, object]:
        result: dict[str, object] = {"phase": str(self.phase)}
        if self.policy is not None:
            result["policy"] = self.policy
            result["statement"] = self.statement
            if self.sid is not None:
                result["sid"] = self.sid
            result["effect"] = str(self.effect)
        result["detail"] = self.detail
        return result


@dataclass(frozen=True, slots=True)
class Decision:
    outcome: Outcome
    reasons: tuple[Reason, ...]
    errors: tuple[str, ...] = ()
    """condition values that did not convert: each made its condition false"""
    revision: int | None = field(default=None, compare=False)
    """the snapshot revision it was made against (None: decided outside a snapshot); not part
    of the answer, so two equal answers at different revisions compare equal"""

    @property
    def allowed(self) -> bool:
        return self.outcome is Outcome.ALLOWED
