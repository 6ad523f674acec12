"""What a verified registry login is, and why a password was refused."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

__all__ = ["Login", "LoginRejected", "Rejection"]


@dataclass(frozen=True, slots=True)
class Login:
    """A login token that verified: the principal it stands for, until when."""

    principal: str
    """the ARN every registry call is authorized as (user, role, or session)"""
    expires_at: float
    """seconds since the epoch"""


class Rejection(StrEnum):
    MALFORMED = "malformed"
    TAMPERED = "tampered"
    UNKNOWN_KEY = "unknown-key"
    EXPIRED = "expired"
    REVOKED = "revoked"


class LoginRejected(ValueError):  # noqa: N818 (a verdict, not a bug)
    """A password that is not a valid login token; the message never contains the token."""

    def __init__(self, rejection: Rejection, message: str) -> None:
        super().__init__(message)
        self.rejection = rejection
