"""The one entry point into the engine: a question and a snapshot in, a decision out.

Each piece of work happens once per call: the context is normalized when the question is built,
the session looked up once, the caller, the action and the resource parsed once (and those
parses memoized: they depend on their text alone), and the statements come from the snapshot's
index already narrowed to the action, so the evaluator checks only resources, principals and
conditions for them. The decision cache (`engine/cache.py`) is a wrapper around `decide`.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator, Mapping, MutableSet, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING

from dockgate_server.conditions.keys import ContextValue
from dockgate_server.engine.authorize import PolicySet, authorize
from dockgate_server.engine.compile import CompiledPolicy
from dockgate_server.engine.decision import Decision, Outcome, Phase, Reason
from dockgate_server.engine.index import StatementIndex
from dockgate_server.engine.request import (
    RawContext,
    Request,
    assemble_request,
    check_target,
    normalize_context,
    parse_principal,
    parse_target,
)
from dockgate_server.engine.sessions import SessionView
from dockgate_server.policy.arn import Arn
from dockgate_server.policy.model import PolicyKind
from dockgate_server.policy.principal import Caller, CallerKind

if TYPE_CHECKING:  # the snapshot's `authorize` calls `decide`: imported for the types alone
    from dockgate_server.engine.snapshot import PrincipalView, Snapshot

__all__ = ["ContextReads", "Question", "decide", "decide_as", "prepare", "principal_view"]

_EMPTY: Mapping[str, ContextValue] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class Question:
    """What a caller asks: its principal, action, resource and normalized context.

    `session_policy` stands in for a session's own (an `AssumeRole` policy being tried);
    `trust_policy` for the repository policy (deciding `sts:AssumeRole`, where it must allow).
    """

    principal: str
    action: str
    resource: str
    context: Mapping[str, ContextValue] = dataclasses.field(default_factory=lambda: _EMPTY)
    """lower-cased keys, values as `normalize_value` reads them"""
    session_policy: CompiledPolicy | None = None
    trust_policy: CompiledPolicy | None = None

    @classmethod
    def of(
        cls,
        principal: str,
        action: str,
        resource: str,
        context: RawContext | None = None,
        *,
        session_policy: CompiledPolicy | None = None,
        trust_policy: CompiledPolicy | None = None,
    ) -> Question:
        """A question with its context normalized; `RequestError` when the context is malformed
        or past the bounds."""
        normalized = normalize_context(context) if context else _EMPTY
        return cls(principal, action, resource, normalized, session_policy, trust_policy)


def decide(
    snapshot: Snapshot,
    question: Question,
    *,
    now: float | None = None,
    indexed: bool = True,
    reads: MutableSet[str] | None = None,
) -> Decision:
    """Decide `question` against `snapshot` exactly as IAM would; the decision carries the
    snapshot's revision. Raises `RequestError` for malformed input.

    `now` (seconds since the epoch; the wall clock when None) decides whether a session Dockgate
    issued has expired. `indexed` False scans every statement instead of the index's candidates
    (the tests' reference path). `reads`, when given, collects each context key the decision
    looked up, present or not (what the decision cache keys on)."""
    session = snapshot.credentials.sessions.get(question.principal)
    return decide_as(snapshot, question, session, now=now, indexed=indexed, reads=reads)


def decide_as(
    snapshot: Snapshot,
    question: Question,
    session: SessionView | None,
    *,
    now: float | None = None,
    indexed: bool = True,
    reads: MutableSet[str] | None = None,
) -> Decision:
    """`decide` with the caller's issued session already looked up (None: not issued here), for
    a wrapper that needed it first (the cache checks expiry before any lookup)."""
    prepared = prepare(snapshot, question, session, now=now, indexed=indexed)
    if isinstance(prepared, Decision):
        return dataclasses.replace(prepared, revision=snapshot.revision)
    request, policies = prepared
    if reads is not None:
        request = dataclasses.replace(request, context=ContextReads(request.context, reads))
    return authorize(request, policies, revision=snapshot.revision)


def prepare(
    snapshot: Snapshot,
    question: Question,
    session: SessionView | None,
    *,
    now: float | None = None,
    indexed: bool = True,
) -> tuple[Request, PolicySet] | Decision:
    """The typed request and the policies bearing on it, or the answer for an unknown or
    expired caller."""
    principal, action, resource = question.principal, question.action, question.resource
    caller = parse_principal(principal)
    session_policy = question.session_policy
    if session is not None:
        if session.is_expired(time.time() if now is None else now):
            return session.expired_decision()
        if session_policy is None:
            session_policy = session.policy
    view = principal_view(snapshot, caller, session)
    if session is not None and view is not None and caller.kind is CallerKind.FEDERATED_USER:
        caller = dataclasses.replace(caller, federating_user=view.arn)
    if view is None and caller.kind is not CallerKind.SERVICE and not _is_root(snapshot, caller):
        check_target(action, resource)  # malformed input is refused, known caller or not
        return Decision(
            Outcome.IMPLICITLY_DENIED,
            (Reason(Phase.REQUEST, f"unknown principal `{principal}`: not in the store"),),
        )
    target = parse_target(action, resource)
    repository = snapshot.repositories.get(resource)
    store_keys = _organization_keys(snapshot, caller, target.resource_arn)
    principal_tags = view.tags if view else None
    if session is not None:
        store_keys.update(session.keys)
        principal_tags = _with_session_tags(principal_tags or {}, session)
    request = assemble_request(
        caller,
        action,
        resource,
        target,
        dict(question.context) if question.context else {},
        principal_tags=principal_tags,
        resource_tags=repository.tags if repository else None,
        principal_arn=view.arn
        if view and caller.kind in (CallerKind.SESSION, CallerKind.ROLE)
        else None,
        store_keys=store_keys,
        from_store=True,
        issued_session=session is not None,
    )

    scp = snapshot.service_control.get(caller.account or "")
    rcp = snapshot.resource_control.get(request.resource_account or "")
    policies = PolicySet(
        identity=_pick(view.identity, request, indexed) if view else (),
        resource=question.trust_policy or (repository.policy if repository else None),
        resource_required=question.trust_policy is not None,
        boundary=_merged(_pick(view.boundary, request, indexed))
        if view and view.boundary
        else None,
        session=session_policy,
        service_control=_pick_levels(scp, request, indexed) if scp is not None else None,
        resource_control=_pick_levels(rcp, request, indexed) if rcp is not None else None,
        # the index's slices are exact by action (`StatementIndex.candidates`)
        actions_matched=indexed,
    )
    return request, policies


def _pick(index: StatementIndex, request: Request, indexed: bool) -> tuple[CompiledPolicy, ...]:
    """The index's candidates for `request`, or every statement (the tests' reference path)."""
    return index.candidates(request) if indexed else index.all()


def _pick_levels(
    levels: Sequence[StatementIndex], request: Request, indexed: bool
) -> tuple[tuple[CompiledPolicy, ...], ...]:
    # a list built by a loop, not a generator: no generator object on every call
    picked = [_pick(level, request, indexed) for level in levels]
    return tuple(picked)


class ContextReads(Mapping[str, ContextValue]):
    """The request context, recording each key a decision looks up."""

    __slots__ = ("_context", "read")

    def __init__(
        self, context: Mapping[str, ContextValue], read: MutableSet[str] | None = None
    ) -> None:
        self._context = context
        self.read: MutableSet[str] = set() if read is None else read

    def __getitem__(self, key: str) -> ContextValue:
        self.read.add(key)
        return self._context[key]

    def get(self, key: str, default: object = None) -> ContextValue | None:  # type: ignore[override]
        self.read.add(key)
        value = self._context.get(key)
        return value if value is not None else default  # type: ignore[return-value]

    def __iter__(self) -> Iterator[str]:
        self.read |= set(self._context)  # whoever iterates has read everything
        return iter(self._context)

    def __len__(self) -> int:
        return len(self._context)


def principal_view(
    snapshot: Snapshot, caller: Caller, session: SessionView | None
) -> PrincipalView | None:
    """The stored user or role `caller` is (or acts for), in the caller's partition; `session`
    is the caller's issued session, already looked up."""
    view = _principal_view(snapshot, caller, session)
    if view is not None and view.partition != caller.partition:
        return None  # IAM: `arn:aws-cn:…` is never a principal of the `aws` account
    return view


def _principal_view(
    snapshot: Snapshot, caller: Caller, session: SessionView | None
) -> PrincipalView | None:
    account = caller.account or ""
    if caller.kind is CallerKind.USER:
        key = snapshot.user_arns.get(caller.arn)
        return snapshot.users.get(key) if key else None
    if session is not None:  # issued here: the store knows its role or federating user
        return snapshot.users.get(session.base) or snapshot.roles.get(session.base)
    if caller.kind is CallerKind.FEDERATED_USER:
        # the federating IAM user, by name: the federated ARN carries no path (semantics §3.5)
        return snapshot.users.get(f"user/{account}/{caller.name}")
    if caller.kind in (CallerKind.SESSION, CallerKind.ROLE):
        view = snapshot.roles.get(f"role/{account}/{caller.name.lower()}")
        if view is not None and caller.kind is CallerKind.ROLE and view.arn != caller.arn:
            return None  # a bare role ARN must name the role with its real path
        return view
    return None


def _is_root(snapshot: Snapshot, caller: Caller) -> bool:
    """Whether `caller` is the root user of an account in the store, in its partition."""
    account = caller.account
    return (
        caller.kind is CallerKind.ROOT
        and account in snapshot.accounts
        and caller.partition == snapshot.partition_of(account)
    )


def _organization_keys(
    snapshot: Snapshot, caller: Caller, arn: Arn | None
) -> dict[str, ContextValue]:
    """`aws:PrincipalOrgID`/`…OrgPaths` for a caller in the organization, and
    `aws:ResourceOrgID`/`…OrgPaths` for a repository whose account is (semantics §6.1)."""
    keys: dict[str, ContextValue] = {}
    paths = snapshot.organization_paths
    if not paths:
        return keys
    member = paths.get(caller.account or "")
    if member is not None and caller.kind is not CallerKind.SERVICE:
        keys["aws:principalorgid"], path = member
        keys["aws:principalorgpaths"] = (path,)
    owner = paths.get(arn.account) if arn is not None else None
    if owner is not None:
        keys["aws:resourceorgid"], path = owner
        keys["aws:resourceorgpaths"] = (path,)
    return keys


def _with_session_tags(tags: Mapping[str, str], session: SessionView) -> dict[str, str]:
    """IAM: session tags override the role's or user's tags with the same key, ignoring case."""
    overridden = {key.lower() for key in session.tags}
    merged = {key: value for key, value in tags.items() if key.lower() not in overridden}
    merged.update(session.tags)
    return merged


def _merged(policies: tuple[CompiledPolicy, ...]) -> CompiledPolicy:
    """A boundary is one policy; narrowed to nothing it is still present (and allows nothing)."""
    if len(policies) == 1:
        return policies[0]
    statements = tuple(s for policy in policies for s in policy.statements)
    return CompiledPolicy("permissionsBoundary", PolicyKind.BOUNDARY, statements)
