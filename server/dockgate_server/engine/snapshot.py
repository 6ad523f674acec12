"""An immutable, compiled, indexed view of the store at one revision, and the questions it answers.

Writers build the next snapshot aside (`engine/build.py`) and swap one reference; readers never see
half an update.
"""

from __future__ import annotations

import dataclasses
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from dockgate_server.conditions.keys import ContextValue
from dockgate_server.engine.authorize import PolicySet, authorize
from dockgate_server.engine.compile import CompiledPolicy
from dockgate_server.engine.decision import Decision, Outcome, Phase, Reason
from dockgate_server.engine.index import StatementIndex
from dockgate_server.engine.request import (
    RawContext,
    Request,
    RequestError,
    build_request,
    check_target,
)
from dockgate_server.engine.sessions import CredentialState, SessionView
from dockgate_server.policy.arn import split_arn
from dockgate_server.policy.model import PolicyKind
from dockgate_server.policy.principal import Caller, CallerKind, parse_caller

__all__ = ["Levels", "PrincipalView", "RepositoryView", "Snapshot", "partitions_of"]


@dataclass(frozen=True, slots=True)
class PrincipalView:
    """A user's or role's policies, compiled and indexed: its own plus its groups'."""

    key: str
    arn: str
    identity: StatementIndex
    boundary: StatementIndex | None
    tags: Mapping[str, str]
    trust: CompiledPolicy | None = None
    """a role's trust policy, compiled as the resource policy of `sts:AssumeRole`"""
    max_session_duration: int = 3600
    partition: str = "aws"


@dataclass(frozen=True, slots=True)
class RepositoryView:
    arn: str
    policy: CompiledPolicy | None
    tags: Mapping[str, str]


Levels = tuple[StatementIndex, ...]


@dataclass(frozen=True, slots=True)
class Snapshot:
    revision: int
    accounts: frozenset[str]
    users: Mapping[str, PrincipalView]
    """by owner key `user/ACCOUNT/NAME`"""
    user_arns: Mapping[str, str]
    """user ARN → owner key"""
    roles: Mapping[str, PrincipalView]
    """by owner key `role/ACCOUNT/name` (folded)"""
    repositories: Mapping[str, RepositoryView]
    service_control: Mapping[str, Levels]
    """account → SCP levels from the root down; accounts outside the organization are absent"""
    resource_control: Mapping[str, Levels]
    organization_paths: Mapping[str, tuple[str, str]]
    """account → (organization ID, `o-…/r-…/ou-…/` path) for the accounts in the organization"""
    credentials: CredentialState = field(default_factory=CredentialState)
    """the sessions Dockgate issued, and the keys that sign login tokens"""
    partitions: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    """account → the partition its identities and repositories live in (`aws` for the rest):
    the same twelve digits in another partition are another account"""

    def partition_of(self, account: str) -> str:
        return self.partitions.get(account, _DEFAULT_PARTITION)

    def authorize(
        self,
        principal: str,
        action: str,
        resource: str,
        context: RawContext | None = None,
        *,
        session_policy: CompiledPolicy | None = None,
        trust_policy: CompiledPolicy | None = None,
        indexed: bool = True,
        now: float | None = None,
    ) -> Decision:
        """Decide a request against this snapshot; raises `RequestError` for malformed input.

        `now` (seconds since the epoch; the wall clock when None) decides whether a session
        Dockgate issued has expired. `trust_policy`: a role's trust policy, standing in for the
        resource policy when deciding `sts:AssumeRole` (and required to allow)."""
        prepared = self.prepare(
            principal,
            action,
            resource,
            context,
            session_policy=session_policy,
            trust_policy=trust_policy,
            indexed=indexed,
            now=now,
        )
        if isinstance(prepared, Decision):
            return prepared
        request, policies = prepared
        return authorize(request, policies)

    def expired_session(self, principal: str, now: float) -> Decision | None:
        """The denial for a caller whose issued session has expired at `now`, else None."""
        session = self.credentials.sessions.get(principal)
        if session is not None and session.is_expired(now):
            return session.expired_decision()
        return None

    def prepare(
        self,
        principal: str,
        action: str,
        resource: str,
        context: RawContext | None = None,
        *,
        session_policy: CompiledPolicy | None = None,
        trust_policy: CompiledPolicy | None = None,
        indexed: bool = True,
        now: float | None = None,
    ) -> tuple[Request, PolicySet] | Decision:
        """The typed request and the policies bearing on it, or the answer for an unknown or
        expired caller."""
        try:
            caller = parse_caller(principal)
        except ValueError as problem:
            raise RequestError(str(problem), "principal") from None
        session = self.credentials.sessions.get(caller.arn)
        if session is not None:
            if session.is_expired(time.time() if now is None else now):
                return session.expired_decision()
            if session_policy is None:
                session_policy = session.policy
        view = self.principal_view(caller)
        if session is not None and view is not None and caller.kind is CallerKind.FEDERATED_USER:
            caller = dataclasses.replace(caller, federating_user=view.arn)
        if view is None and caller.kind is not CallerKind.SERVICE and not self._is_root(caller):
            check_target(action, resource)  # malformed input is refused, known caller or not
            return Decision(
                Outcome.IMPLICITLY_DENIED,
                (Reason(Phase.REQUEST, f"unknown principal `{principal}`: not in the store"),),
            )
        repository = self.repositories.get(resource)
        store_keys = self._organization_keys(caller, resource)
        principal_tags = view.tags if view else None
        if session is not None:
            store_keys.update(session.keys)
            principal_tags = _with_session_tags(principal_tags or {}, session)
        request = build_request(
            caller,
            action,
            resource,
            context,
            principal_tags=principal_tags,
            resource_tags=repository.tags if repository else None,
            principal_arn=view.arn
            if view and caller.kind in (CallerKind.SESSION, CallerKind.ROLE)
            else None,
            store_keys=store_keys,
            from_store=True,
            issued_session=session is not None,
        )

        def pick(index: StatementIndex) -> tuple[CompiledPolicy, ...]:
            return index.candidates(request) if indexed else index.all()

        scp = self.service_control.get(caller.account or "")
        rcp = self.resource_control.get(request.resource_account or "")
        policies = PolicySet(
            identity=pick(view.identity) if view else (),
            resource=trust_policy or (repository.policy if repository else None),
            resource_required=trust_policy is not None,
            boundary=_merged(pick(view.boundary)) if view and view.boundary else None,
            session=session_policy,
            service_control=tuple(pick(level) for level in scp) if scp is not None else None,
            resource_control=tuple(pick(level) for level in rcp) if rcp is not None else None,
        )
        return request, policies

    def _is_root(self, caller: Caller) -> bool:
        """Whether `caller` is the root user of an account in the store, in its partition."""
        account = caller.account
        return (
            caller.kind is CallerKind.ROOT
            and account in self.accounts
            and caller.partition == self.partition_of(account)
        )

    def _organization_keys(self, caller: Caller, resource: str) -> dict[str, ContextValue]:
        """`aws:PrincipalOrgID`/`…OrgPaths` for a caller in the organization, and
        `aws:ResourceOrgID`/`…OrgPaths` for a repository whose account is (semantics §6.1)."""
        keys: dict[str, ContextValue] = {}
        member = self.organization_paths.get(caller.account or "")
        if member is not None and caller.kind is not CallerKind.SERVICE:
            keys["aws:principalorgid"], path = member
            keys["aws:principalorgpaths"] = (path,)
        arn = split_arn(resource) if resource != "*" else None
        owner = self.organization_paths.get(arn.account) if arn is not None else None
        if owner is not None:
            keys["aws:resourceorgid"], path = owner
            keys["aws:resourceorgpaths"] = (path,)
        return keys

    def principal_view(self, caller: Caller) -> PrincipalView | None:
        """The stored user or role `caller` is (or acts for), in the caller's partition."""
        view = self._principal_view(caller)
        if view is not None and view.partition != caller.partition:
            return None  # IAM: `arn:aws-cn:…` is never a principal of the `aws` account
        return view

    def _principal_view(self, caller: Caller) -> PrincipalView | None:
        account = caller.account or ""
        if caller.kind is CallerKind.USER:
            key = self.user_arns.get(caller.arn)
            return self.users.get(key) if key else None
        session = self.credentials.sessions.get(caller.arn)
        if session is not None:  # issued here: the store knows its role or federating user
            return self.users.get(session.base) or self.roles.get(session.base)
        if caller.kind is CallerKind.FEDERATED_USER:
            # the federating IAM user, by name: the federated ARN carries no path (semantics §3.5)
            return self.users.get(f"user/{account}/{caller.name}")
        if caller.kind in (CallerKind.SESSION, CallerKind.ROLE):
            view = self.roles.get(f"role/{account}/{caller.name.lower()}")
            if view is not None and caller.kind is CallerKind.ROLE and view.arn != caller.arn:
                return None  # a bare role ARN must name the role with its real path
            return view
        return None


_DEFAULT_PARTITION = "aws"


def partitions_of(
    users: Mapping[str, PrincipalView],
    roles: Mapping[str, PrincipalView],
    repositories: Mapping[str, RepositoryView],
) -> Mapping[str, str]:
    """Each account's partition, as its identities and repositories name it (a bundle has one
    partition; the most common one wins in a store merged from several)."""
    counts: dict[str, Counter[str]] = {}
    for key, view in (*users.items(), *roles.items()):
        counts.setdefault(key.split("/", 2)[1], Counter())[view.partition] += 1
    for arn in repositories:
        parts = arn.split(":", 5)
        if len(parts) == 6:
            counts.setdefault(parts[4], Counter())[parts[1]] += 1
    return MappingProxyType(
        {
            account: found.most_common(1)[0][0]
            for account, found in counts.items()
            if found.most_common(1)[0][0] != _DEFAULT_PARTITION
        }
    )


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
