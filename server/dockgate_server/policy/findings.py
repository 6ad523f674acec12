"""What validation says about a policy: findings with JSON pointers, and the error carrying them."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

__all__ = ["Finding", "PolicyError", "Severity", "escape_pointer"]


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True, slots=True)
class Finding:
    severity: Severity
    policy: str
    pointer: str
    """RFC 6901 JSON pointer into the policy document ("" is the whole document)"""
    message: str

    @property
    def location(self) -> str:
        """`policy `NAME` statement N at /Statement/N/Action`: where, before what."""
        where = f"policy `{self.policy}`"
        parts = self.pointer.split("/")
        if len(parts) > 2 and parts[1] == "Statement" and parts[2].isdigit():
            where += f" statement {parts[2]}"
        if self.pointer:
            where += f" at {self.pointer}"
        return where

    def __str__(self) -> str:
        return f"{self.location}: {self.message}"


class PolicyError(ValueError):
    """A policy that does not parse or validate; `findings` lists every error and warning."""

    def __init__(self, findings: tuple[Finding, ...]) -> None:
        self.findings = findings
        errors = self.errors
        first = str(errors[0]) if errors else "invalid policy"
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        super().__init__(first + more)

    @property
    def errors(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.severity is Severity.ERROR)


def escape_pointer(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")
