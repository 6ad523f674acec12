"""Issuing sessions as AWS STS does: AssumeRole and GetFederationToken, checked by the engine.

Pure given a snapshot and a clock reading: the caller stores the `Session` it returns.
"""

from __future__ import annotations

import json
import re
import secrets
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field

from dockgate_server.engine.decide import principal_view
from dockgate_server.engine.decision import Decision, Outcome
from dockgate_server.engine.request import RawContext
from dockgate_server.engine.snapshot import Snapshot
from dockgate_server.policy.arn import split_arn
from dockgate_server.policy.model import PolicyKind
from dockgate_server.policy.parse import parse_policy
from dockgate_server.policy.principal import Caller, CallerKind, parse_caller
from dockgate_server.store.model import Document, Session

__all__ = [
    "AccessDeniedError",
    "AssumeRoleInput",
    "CredentialInputError",
    "FederationInput",
    "assume_role",
    "check_login",
    "get_federation_token",
]

# IAM and STS quotas (semantics §2.5; the STS API reference)
MIN_DURATION = 900
CHAINED_MAX_DURATION = 3600
"""a session that assumes another role (role chaining) gets at most one hour"""
FEDERATION_DEFAULT_DURATION = 43_200
FEDERATION_MAX_DURATION = 129_600
MAX_SESSION_POLICY = 2048
MAX_TAGS = 50
_SESSION_NAME = re.compile(r"[\w+=,.@-]{2,64}", re.ASCII)
_FEDERATED_NAME = re.compile(r"[\w+=,.@-]{2,32}", re.ASCII)
_TAG_PUNCTUATION = frozenset("_.:/=+-@")


class CredentialInputError(ValueError):
    """A request STS would reject as malformed; `field` names the part."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class AccessDeniedError(PermissionError):
    """The policies do not allow the call; `decision` says why."""

    def __init__(self, message: str, decision: Decision) -> None:
        super().__init__(message)
        self.decision = decision


@dataclass(frozen=True, slots=True)
class AssumeRoleInput:
    caller: str
    role_arn: str
    session_name: str
    duration: int = 0
    """seconds; 0 takes the default, one hour"""
    policy: Document | None = None
    tags: Mapping[str, str] = field(default_factory=dict)
    source_identity: str | None = None
    external_id: str | None = None
    context: RawContext = field(default_factory=dict)
    """the caller's request context (`aws:SourceIp`, `aws:MultiFactorAuthPresent`, …)"""


@dataclass(frozen=True, slots=True)
class FederationInput:
    caller: str
    """the IAM user who asks"""
    name: str
    duration: int = 0
    """seconds; 0 takes the default, 12 hours"""
    policy: Document | None = None
    tags: Mapping[str, str] = field(default_factory=dict)
    context: RawContext = field(default_factory=dict)


def assume_role(snapshot: Snapshot, given: AssumeRoleInput, now: float) -> Session:
    """The new session, or `CredentialInputError` / `AccessDeniedError`."""
    caller = _caller(given.caller)
    if caller.kind not in (CallerKind.USER, CallerKind.SESSION, CallerKind.SERVICE):
        # STS: root cannot assume roles; federation-token sessions cannot call STS
        raise CredentialInputError(
            "caller",
            f"`{given.caller}` cannot assume a role: only users, role sessions and services can",
        )
    role = split_arn(given.role_arn)
    view = None
    if role is not None and role.service == "iam" and role.resource.startswith("role/"):
        name = role.resource.rsplit("/", 1)[-1]
        view = snapshot.roles.get(f"role/{role.account}/{name.lower()}")
    if view is None or view.arn != given.role_arn or role is None:
        raise CredentialInputError("role_arn", f"role `{given.role_arn}` does not exist")
    if not _SESSION_NAME.fullmatch(given.session_name):
        raise CredentialInputError(
            "session_name",
            f"session name `{given.session_name}` must be 2 to 64 of `[A-Za-z0-9_+=,.@-]`",
        )
    chained = caller.kind is CallerKind.SESSION
    ceiling = (
        min(view.max_session_duration, CHAINED_MAX_DURATION)
        if chained
        else view.max_session_duration
    )
    duration = _duration(given.duration, 3600, ceiling)
    inherited = _source_identity_of(snapshot, caller)
    source_identity = given.source_identity or inherited
    if given.source_identity:
        _check_source_identity(given.source_identity, inherited)
    _check_session_policy(given.policy)
    tags = _check_tags(given.tags)
    context = _sts_context(given.context, tags)
    context["sts:rolesessionname"] = given.session_name
    if given.external_id is not None:
        context["sts:externalid"] = given.external_id
    if source_identity:
        context["sts:sourceidentity"] = source_identity
    trust = view.trust
    actions = ["sts:AssumeRole"]
    if tags:
        actions.append("sts:TagSession")
    if given.source_identity and given.source_identity != inherited:
        actions.append("sts:SetSourceIdentity")
    for action in actions:
        decision = (
            snapshot.authorize(given.caller, action, view.arn, context, trust_policy=trust, now=now)
            if trust is not None
            else None
        )
        if decision is None or decision.outcome is not Outcome.ALLOWED:
            why = "the role has no trust policy" if decision is None else _clause(decision)
            raise AccessDeniedError(
                f"`{given.caller}` is not authorized to perform: {action} on resource: "
                f"`{view.arn}` ({why})",
                decision or Decision(Outcome.IMPLICITLY_DENIED, ()),
            )
    role_name = view.arn.rsplit("/", 1)[-1]
    arn = f"arn:{role.partition}:sts::{role.account}:assumed-role/{role_name}/{given.session_name}"
    return Session(
        arn,
        secrets.token_hex(16),
        view.key,
        given.caller,
        now,
        now + duration,
        given.policy,
        tags,
        source_identity,
    )


def get_federation_token(snapshot: Snapshot, given: FederationInput, now: float) -> Session:
    """The new federated-user session, or `CredentialInputError` / `AccessDeniedError`."""
    caller = _caller(given.caller)
    # a user's view never depends on an issued session: there is none to look up
    view = principal_view(snapshot, caller, None) if caller.kind is CallerKind.USER else None
    if view is None:
        raise CredentialInputError(
            "caller", f"`{given.caller}` is not an IAM user of the store: only users federate"
        )
    if not _FEDERATED_NAME.fullmatch(given.name):
        raise CredentialInputError(
            "name", f"federated user name `{given.name}` must be 2 to 32 of `[A-Za-z0-9_+=,.@-]`"
        )
    duration = _duration(given.duration, FEDERATION_DEFAULT_DURATION, FEDERATION_MAX_DURATION)
    _check_session_policy(given.policy)
    tags = _check_tags(given.tags)
    arn = f"arn:{caller.partition}:sts::{caller.account}:federated-user/{given.name}"
    context = _sts_context(given.context, tags)
    actions = ["sts:GetFederationToken"] + (["sts:TagSession"] if tags else [])
    for action in actions:
        decision = snapshot.authorize(given.caller, action, arn, context, now=now)
        if decision.outcome is not Outcome.ALLOWED:
            raise AccessDeniedError(
                f"`{given.caller}` is not authorized to perform: {action} on resource: "
                f"`{arn}` ({_clause(decision)})",
                decision,
            )
    return Session(
        arn, secrets.token_hex(16), view.key, given.caller, now, now + duration, given.policy, tags
    )


def check_login(snapshot: Snapshot, principal: str, context: RawContext, now: float) -> None:
    """ECR: issuing a login token needs `ecr:GetAuthorizationToken` on `*` (identity-based)."""
    decision = snapshot.authorize(principal, "ecr:GetAuthorizationToken", "*", context, now=now)
    if decision.outcome is not Outcome.ALLOWED:
        raise AccessDeniedError(
            f"`{principal}` is not authorized to perform: ecr:GetAuthorizationToken on "
            f"resource: `*` ({_clause(decision)})",
            decision,
        )


# -- checks -----------------------------------------------------------------------------------


def _caller(text: str) -> Caller:
    try:
        return parse_caller(text)
    except ValueError as problem:
        raise CredentialInputError("caller", str(problem)) from None


def _duration(asked: int, default: int, ceiling: int) -> int:
    duration = asked or default
    if not MIN_DURATION <= duration <= ceiling:
        raise CredentialInputError(
            "duration_seconds", f"duration {duration} s must be {MIN_DURATION} to {ceiling} s"
        )
    return duration


def _check_session_policy(document: Document | None) -> None:
    if document is None:
        return
    size = len(json.dumps(document, separators=(",", ":")))
    if size > MAX_SESSION_POLICY:
        raise CredentialInputError(
            "policy", f"session policy has {size} characters, more than {MAX_SESSION_POLICY}"
        )
    parse_policy(document, kind=PolicyKind.SESSION, name="session policy")  # raises PolicyError


def _check_tags(tags: Mapping[str, str]) -> dict[str, str]:
    if len(tags) > MAX_TAGS:
        raise CredentialInputError("tags", f"{len(tags)} session tags, more than {MAX_TAGS}")
    seen: set[str] = set()
    for key, value in tags.items():
        where = f"tags/{key}"
        if not 1 <= len(key) <= 128 or not _is_tag_text(key) or key.lower().startswith("aws:"):
            raise CredentialInputError(where, f"tag key `{key}` is not a valid session tag key")
        if len(value) > 256 or not _is_tag_text(value):
            raise CredentialInputError(where, f"tag `{key}` has an invalid value")
        if key.lower() in seen:  # STS: keys are unique ignoring case
            raise CredentialInputError(where, f"tag key `{key}` repeats ignoring case")
        seen.add(key.lower())
    return dict(tags)


def _is_tag_text(text: str) -> bool:
    """STS: letters, numbers, space separators and `_.:/=+-@` (`[\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]`)."""
    return all(
        ch.isalnum() or ch in _TAG_PUNCTUATION or unicodedata.category(ch) == "Zs" for ch in text
    )


def _check_source_identity(given: str, inherited: str | None) -> None:
    if not _SESSION_NAME.fullmatch(given) or given.lower().startswith("aws:"):
        raise CredentialInputError(
            "source_identity", f"source identity `{given}` must be 2 to 64 of `[A-Za-z0-9_+=,.@-]`"
        )
    if inherited and given != inherited:
        # STS: a source identity persists through role chaining and cannot be changed
        raise CredentialInputError(
            "source_identity", f"source identity is `{inherited}` for this caller and cannot change"
        )


def _source_identity_of(snapshot: Snapshot, caller: Caller) -> str | None:
    session = snapshot.credentials.sessions.get(caller.arn)
    value = session.keys.get("aws:sourceidentity") if session is not None else None
    return value if isinstance(value, str) else None


def _sts_context(context: RawContext, tags: Mapping[str, str]) -> dict[str, str | list[str]]:
    merged: dict[str, str | list[str]] = {
        key: value if isinstance(value, str) else list(value) for key, value in context.items()
    }
    for key, value in tags.items():
        merged[f"aws:RequestTag/{key}"] = value
    if tags:
        merged["aws:TagKeys"] = list(tags)
    return merged


def _clause(decision: Decision) -> str:
    if decision.outcome is Outcome.EXPLICITLY_DENIED:
        return "explicitly denied"
    detail = "; ".join(reason.detail for reason in decision.reasons if reason.detail)
    return f"not allowed: {detail}" if detail else "no policy allows it"
