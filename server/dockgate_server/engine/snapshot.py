"""An immutable, compiled, indexed view of the store at one revision, and how it is rebuilt.

Writers build the next snapshot aside and swap one reference; readers never see half an update.
A change to one user, role or repository recompiles only that entry: the rest of the maps are
shared with the previous snapshot.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from cachetools import LRUCache

from dockgate_server.conditions.keys import ContextValue
from dockgate_server.engine.authorize import PolicySet, authorize
from dockgate_server.engine.compile import CompiledPolicy, compile_policy
from dockgate_server.engine.decision import Decision, Outcome, Phase, Reason
from dockgate_server.engine.index import StatementIndex
from dockgate_server.engine.request import (
    RawContext,
    Request,
    RequestError,
    build_request,
    check_target,
)
from dockgate_server.engine.sessions import CredentialState, SessionView, compile_session
from dockgate_server.policy.arn import split_arn
from dockgate_server.policy.model import PolicyKind
from dockgate_server.policy.parse import parse_policy
from dockgate_server.policy.principal import Caller, CallerKind, parse_caller
from dockgate_server.store.credentials import CredentialStore
from dockgate_server.store.model import (
    Document,
    Fleet,
    Group,
    ManagedPolicy,
    Organization,
    Role,
    User,
)
from dockgate_server.store.sqlite import Change, Store

__all__ = ["PrincipalView", "RepositoryView", "Snapshot", "SnapshotBuilder"]

_MANAGED_KEPT = 20_000
"""Compiled managed policies kept across snapshots (IAM allows 5,000 per account by default)."""


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


def _partitions(
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


class SnapshotBuilder:
    """Builds snapshots from a store, recompiling only what a change touched.

    Compiled managed policies are shared by every principal that attaches them, across snapshots.
    """

    def __init__(self, store: Store) -> None:
        self.store = store
        # keyed by content: a version's document can be replaced under the same version id
        self._managed: LRUCache[tuple[str, str, PolicyKind], CompiledPolicy] = LRUCache(
            maxsize=_MANAGED_KEPT
        )

    def build(self) -> Snapshot:
        with self.store.reading() as revision:
            fleet = self.store.load_fleet()
            credentials = self._credentials(None, None)
        return dataclasses.replace(self.build_fleet(fleet, revision), credentials=credentials)

    def build_fleet(self, fleet: Fleet, revision: int) -> Snapshot:
        policies = {policy.arn: policy for policy in fleet.policies}
        groups = {(group.account, group.name): group for group in fleet.groups}
        users = {user.key: self._user_view(user, groups, policies) for user in fleet.users}
        roles = {role.key: self._role_view(role, policies) for role in fleet.roles}
        repositories = {
            repo.arn: RepositoryView(
                repo.arn,
                self._repository_policy(repo.arn, repo.policy),
                MappingProxyType(dict(repo.tags)),
            )
            for repo in fleet.repositories
        }
        scps, rcps, paths = self._organization(fleet.organization)
        return Snapshot(
            revision,
            frozenset(fleet.accounts),
            MappingProxyType(users),
            MappingProxyType({view.arn: key for key, view in users.items()}),
            MappingProxyType(roles),
            MappingProxyType(repositories),
            MappingProxyType(scps),
            MappingProxyType(rcps),
            MappingProxyType(paths),
            partitions=_partitions(users, roles, repositories),
        )

    def refresh(self, snapshot: Snapshot) -> Snapshot:
        """The snapshot at the store's current revision, rebuilding only what changed since
        `snapshot` (how a process that did not make the writes catches up); `snapshot` itself
        when nothing changed."""
        with self.store.reading() as revision:
            if revision == snapshot.revision:
                return snapshot
            changes = self.store.changes_since(snapshot.revision)
            if not changes or revision < snapshot.revision:
                return self.build()
            return self.update(snapshot, Change.merge(changes))

    def update(self, snapshot: Snapshot, change: Change) -> Snapshot:
        """The snapshot at `change.revision`, rebuilding only the entries the change names."""
        if change.everything:
            return self.build()
        store = self.store
        with store.reading() as revision:
            users = dict(snapshot.users)
            roles = dict(snapshot.roles)
            repositories = dict(snapshot.repositories)
            for key in change.principals:
                kind, account, name = key.split("/", 2)
                if kind == "user":
                    user = store.load_user(account, name)
                    users.pop(key, None)
                    if user is not None:
                        users[key] = self._user_view(
                            user, self._groups_of(user), self._policies_of_user(user)
                        )
                else:
                    role = store.load_role(account, name)
                    roles.pop(key, None)
                    if role is not None:
                        roles[key] = self._role_view(
                            role, self._policies_of(role.attached, role.boundary)
                        )
            for arn in change.repositories:
                repository = store.load_repository(arn)
                repositories.pop(arn, None)
                if repository is not None:
                    repositories[arn] = RepositoryView(
                        arn,
                        self._repository_policy(arn, repository.policy),
                        MappingProxyType(dict(repository.tags)),
                    )
            scps, rcps, paths = (
                self._organization(store.load_organization())
                if change.organization
                else (
                    snapshot.service_control,
                    snapshot.resource_control,
                    snapshot.organization_paths,
                )
            )
            accounts = frozenset(store.accounts())
            credentials = (
                self._credentials(snapshot.credentials, change)
                if change.sessions or change.credentials
                else snapshot.credentials
            )
        return Snapshot(
            revision,
            accounts,
            MappingProxyType(users),
            MappingProxyType({view.arn: key for key, view in users.items()}),
            MappingProxyType(roles),
            MappingProxyType(repositories),
            MappingProxyType(dict(scps)),
            MappingProxyType(dict(rcps)),
            MappingProxyType(dict(paths)),
            credentials,
            _partitions(users, roles, repositories)
            if change.principals or change.repositories
            else snapshot.partitions,
        )

    def _credentials(
        self, previous: CredentialState | None, change: Change | None
    ) -> CredentialState:
        """Sessions and keys from the store: all of them, or only what `change` names."""
        store = CredentialStore(self.store)
        if previous is None or change is None:
            sessions = {s.arn: compile_session(s) for s in store.load_sessions()}
        else:
            sessions = dict(previous.sessions)
            for arn in change.sessions:
                stored = store.load_session(arn)
                sessions.pop(arn, None)
                if stored is not None:
                    sessions[arn] = compile_session(stored)
        if previous is None or change is None or change.credentials:
            return CredentialState(
                MappingProxyType(sessions),
                MappingProxyType({key.key_id: key for key in store.signing_keys()}),
                store.revoked_tokens(),
            )
        return dataclasses.replace(previous, sessions=MappingProxyType(sessions))

    # -- compiling entities -----------------------------------------------------------------

    def _user_view(
        self,
        user: User,
        groups: Mapping[tuple[str, str], Group],
        policies: Mapping[str, ManagedPolicy],
    ) -> PrincipalView:
        compiled = [
            self._inline(f"{user.arn}#{name}", document) for name, document in user.inline.items()
        ]
        compiled += [self._attached(arn, policies, PolicyKind.IDENTITY) for arn in user.attached]
        for group_name in user.groups:
            group = groups.get((user.account, group_name))
            if group is None:
                continue
            compiled += [self._inline(f"{group.arn}#{name}", d) for name, d in group.inline.items()]
            compiled += [
                self._attached(arn, policies, PolicyKind.IDENTITY) for arn in group.attached
            ]
        boundary = self._boundary(user.boundary, policies)
        return PrincipalView(
            user.key,
            user.arn,
            StatementIndex(compiled),
            boundary,
            MappingProxyType(dict(user.tags)),
            partition=user.partition,
        )

    def _role_view(self, role: Role, policies: Mapping[str, ManagedPolicy]) -> PrincipalView:
        compiled = [
            self._inline(f"{role.arn}#{name}", document) for name, document in role.inline.items()
        ]
        compiled += [self._attached(arn, policies, PolicyKind.IDENTITY) for arn in role.attached]
        boundary = self._boundary(role.boundary, policies)
        trust = None
        if role.trust_policy is not None:
            trust = compile_policy(
                parse_policy(
                    role.trust_policy, kind=PolicyKind.REPOSITORY, name=f"{role.arn}#trust"
                )
            )
        return PrincipalView(
            role.key,
            role.arn,
            StatementIndex(compiled),
            boundary,
            MappingProxyType(dict(role.tags)),
            trust,
            role.max_session_duration,
            role.partition,
        )

    def _boundary(
        self, arn: str | None, policies: Mapping[str, ManagedPolicy]
    ) -> StatementIndex | None:
        if arn is None:
            return None
        return StatementIndex([self._attached(arn, policies, PolicyKind.BOUNDARY)])

    @staticmethod
    def _inline(name: str, document: Document) -> CompiledPolicy:
        return compile_policy(parse_policy(document, kind=PolicyKind.IDENTITY, name=name))

    def _attached(
        self, arn: str, policies: Mapping[str, ManagedPolicy], kind: PolicyKind
    ) -> CompiledPolicy:
        policy = policies[arn]
        key = (arn, json.dumps(policy.document, sort_keys=True), kind)
        compiled = self._managed.get(key)
        if compiled is None:
            compiled = compile_policy(parse_policy(policy.document, kind=kind, name=arn))
            self._managed[key] = compiled
        return compiled

    @staticmethod
    def _repository_policy(arn: str, document: Document | None) -> CompiledPolicy | None:
        if document is None:
            return None
        return compile_policy(
            parse_policy(document, kind=PolicyKind.REPOSITORY, name=f"{arn}#policy")
        )

    def _organization(
        self, organization: Organization | None
    ) -> tuple[dict[str, Levels], dict[str, Levels], dict[str, tuple[str, str]]]:
        """Each member account's SCP and RCP levels, and its organization path."""
        scps: dict[str, Levels] = {}
        rcps: dict[str, Levels] = {}
        paths: dict[str, tuple[str, str]] = {}
        if organization is None:
            return scps, rcps, paths
        # each node's policies compile once, however many accounts sit below it
        nodes: dict[str, tuple[StatementIndex, StatementIndex]] = {}
        for account in _accounts_in(organization):
            path = organization.path_to(account) or ()
            for node in path:
                if node.id not in nodes:
                    nodes[node.id] = (
                        _level(node.service_control, PolicyKind.SCP, f"{node.id}#scp"),
                        _level(node.resource_control, PolicyKind.RCP, f"{node.id}#rcp"),
                    )
            scps[account] = tuple(nodes[node.id][0] for node in path)
            rcps[account] = tuple(nodes[node.id][1] for node in path)
            # AWS spells it `o-a1b2c3d4e5/r-ab12/ou-ab12-11111111/`
            paths[account] = (
                organization.id,
                "".join(f"{n}/" for n in (organization.id, *(x.id for x in path))),
            )
        return scps, rcps, paths

    # -- incremental reads ------------------------------------------------------------------

    def _groups_of(self, user: User) -> dict[tuple[str, str], Group]:
        found = {}
        for name in user.groups:
            group = self.store.load_group(user.account, name)
            if group is not None:
                found[(user.account, name)] = group
        return found

    def _policies_of_user(self, user: User) -> dict[str, ManagedPolicy]:
        arns = list(user.attached)
        for group in self._groups_of(user).values():
            arns += group.attached
        return self._policies_of(tuple(arns), user.boundary)

    def _policies_of(self, arns: tuple[str, ...], boundary: str | None) -> dict[str, ManagedPolicy]:
        found = {}
        for arn in (*arns, *([boundary] if boundary else [])):
            policy = self.store.load_policy(arn)
            if policy is not None:
                found[arn] = policy
        return found


def _level(documents: tuple[Document, ...], kind: PolicyKind, name: str) -> StatementIndex:
    return StatementIndex(
        compile_policy(parse_policy(document, kind=kind, name=f"{name}[{i}]"))
        for i, document in enumerate(documents)
    )


def _accounts_in(organization: Organization) -> list[str]:
    accounts: list[str] = []
    pending = [organization.root]
    while pending:
        node = pending.pop()
        accounts += node.accounts
        pending += node.children
    return accounts
