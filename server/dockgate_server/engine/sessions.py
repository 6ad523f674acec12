"""Sessions and login-token keys as a snapshot holds them: compiled, and checked against a clock."""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from dockgate_server.conditions.keys import ContextValue
from dockgate_server.engine.compile import CompiledPolicy, compile_policy
from dockgate_server.engine.decision import Decision, Outcome, Phase, Reason
from dockgate_server.policy.model import PolicyKind
from dockgate_server.policy.parse import parse_policy
from dockgate_server.store.model import Session, SigningKey

__all__ = ["CredentialState", "SessionView", "compile_session", "format_time"]


@dataclass(frozen=True, slots=True)
class SessionView:
    """A session Dockgate issued, ready for the request path."""

    arn: str
    session_id: str
    base: str
    """owner key of the role, or of the IAM user behind a federated session"""
    issued_at: float
    expires_at: float
    policy: CompiledPolicy | None
    tags: Mapping[str, str]
    keys: Mapping[str, ContextValue]
    """`aws:TokenIssueTime` and `aws:SourceIdentity`, as the request context carries them"""
    ended: str | None = None
    """`expired` or `revoked`: a tombstone, refused whatever the clock says"""
    ended_at: float | None = None

    def is_expired(self, now: float) -> bool:
        return self.ended is not None or now >= self.expires_at

    def expired_decision(self) -> Decision:
        if self.ended == "revoked":
            detail = f"session `{self.arn}` was revoked at {format_time(self.ended_at or 0)}"
        else:
            detail = f"session `{self.arn}` expired at {format_time(self.expires_at)}"
        return Decision(Outcome.IMPLICITLY_DENIED, (Reason(Phase.REQUEST, detail),))


@dataclass(frozen=True, slots=True)
class CredentialState:
    sessions: Mapping[str, SessionView] = field(default_factory=lambda: MappingProxyType({}))
    """by session ARN"""
    signing_keys: Mapping[str, SigningKey] = field(default_factory=lambda: MappingProxyType({}))
    """every key that still verifies, by key ID"""
    revoked_tokens: frozenset[str] = frozenset()

    @property
    def current_key(self) -> str | None:
        """The key that signs new tokens: the one not retired."""
        return next((k.key_id for k in self.signing_keys.values() if k.retired_at is None), None)


def compile_session(session: Session) -> SessionView:
    policy = None
    if session.policy is not None and session.ended is None:
        name = f"session policy of `{session.arn}`"
        policy = compile_policy(parse_policy(session.policy, kind=PolicyKind.SESSION, name=name))
    keys: dict[str, ContextValue] = {"aws:tokenissuetime": format_time(session.issued_at)}
    if session.source_identity:
        keys["aws:sourceidentity"] = session.source_identity
    return SessionView(
        session.arn,
        session.session_id,
        session.base,
        session.issued_at,
        session.expires_at,
        policy,
        MappingProxyType(dict(session.tags)),
        MappingProxyType(keys),
        session.ended,
        session.ended_at,
    )


def format_time(seconds: float) -> str:
    """ISO 8601 in UTC, as AWS writes times in the request context."""
    moment = datetime.datetime.fromtimestamp(int(seconds), datetime.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
