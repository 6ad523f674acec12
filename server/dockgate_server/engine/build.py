"""Compiling a fleet into a snapshot, and a delta into the next one: pure functions, no I/O.

A change to one user, role or repository recompiles only that entry: the rest of the maps are
shared with the previous snapshot. Compiled managed policies are shared by every principal that
attaches them, across snapshots, through a `PolicyMemo` the caller keeps.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from types import MappingProxyType

from cachetools import LRUCache

from dockgate_server.engine.compile import CompiledPolicy, compile_policy
from dockgate_server.engine.index import StatementIndex
from dockgate_server.engine.sessions import CredentialState, compile_session
from dockgate_server.engine.snapshot import (
    Levels,
    PrincipalView,
    RepositoryView,
    Snapshot,
    partitions_of,
)
from dockgate_server.policy.model import PolicyKind
from dockgate_server.policy.parse import parse_policy
from dockgate_server.store.model import (
    Credentials,
    Delta,
    Document,
    Fleet,
    Group,
    ManagedPolicy,
    Organization,
    Role,
    User,
)

__all__ = ["PolicyMemo", "apply_delta", "build_snapshot", "compile_credentials"]

_MANAGED_KEPT = 20_000
"""Compiled managed policies kept across snapshots (IAM allows 5,000 per account by default)."""


class PolicyMemo:
    """Compiled managed policies, keyed by content: a version's document can be replaced under
    the same version id. Only saves work: a snapshot built with or without it is the same."""

    def __init__(self, size: int = _MANAGED_KEPT) -> None:
        self._compiled: LRUCache[tuple[str, str, PolicyKind], CompiledPolicy] = LRUCache(
            maxsize=size
        )

    def compile(self, arn: str, document: Document, kind: PolicyKind) -> CompiledPolicy:
        key = (arn, json.dumps(document, sort_keys=True), kind)
        compiled = self._compiled.get(key)
        if compiled is None:
            compiled = compile_policy(parse_policy(document, kind=kind, name=arn))
            self._compiled[key] = compiled
        return compiled


def build_snapshot(
    fleet: Fleet, credentials: Credentials, revision: int, memo: PolicyMemo | None = None
) -> Snapshot:
    """The snapshot of `fleet` and `credentials` at `revision`."""
    memo = memo or PolicyMemo()
    policies = {policy.arn: policy for policy in fleet.policies}
    groups = {(group.account, group.name): group for group in fleet.groups}
    users = {user.key: _user_view(user, groups, policies, memo) for user in fleet.users}
    roles = {role.key: _role_view(role, policies, memo) for role in fleet.roles}
    repositories = {
        repo.arn: _repository_view(repo.arn, repo.policy, repo.tags) for repo in fleet.repositories
    }
    scps, rcps, paths = _organization(fleet.organization)
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
        compile_credentials(credentials),
        partitions_of(users, roles, repositories),
    )


def compile_credentials(credentials: Credentials) -> CredentialState:
    return CredentialState(
        MappingProxyType({s.arn: compile_session(s) for s in credentials.sessions}),
        MappingProxyType({key.key_id: key for key in credentials.signing_keys}),
        credentials.revoked_tokens,
    )


def apply_delta(snapshot: Snapshot, delta: Delta, memo: PolicyMemo | None = None) -> Snapshot:
    """The snapshot at `delta.revision`: `snapshot` with the entries the delta names rebuilt."""
    memo = memo or PolicyMemo()
    change = delta.change
    users = dict(snapshot.users)
    roles = dict(snapshot.roles)
    repositories = dict(snapshot.repositories)
    for key, user in delta.users.items():
        users.pop(key, None)
        if user is not None:
            users[key] = _user_view(user, delta.groups, delta.policies, memo)
    for key, role in delta.roles.items():
        roles.pop(key, None)
        if role is not None:
            roles[key] = _role_view(role, delta.policies, memo)
    for arn, repository in delta.repositories.items():
        repositories.pop(arn, None)
        if repository is not None:
            repositories[arn] = _repository_view(arn, repository.policy, repository.tags)
    scps, rcps, paths = (
        _organization(delta.organization)
        if change.organization
        else (snapshot.service_control, snapshot.resource_control, snapshot.organization_paths)
    )
    return Snapshot(
        delta.revision,
        frozenset(delta.accounts),
        MappingProxyType(users),
        MappingProxyType({view.arn: key for key, view in users.items()}),
        MappingProxyType(roles),
        MappingProxyType(repositories),
        MappingProxyType(dict(scps)),
        MappingProxyType(dict(rcps)),
        MappingProxyType(dict(paths)),
        _credentials(snapshot.credentials, delta),
        partitions_of(users, roles, repositories)
        if change.principals or change.repositories
        else snapshot.partitions,
    )


def _credentials(previous: CredentialState, delta: Delta) -> CredentialState:
    """`previous` with the sessions the delta names replaced, and its keys if it read them."""
    state = previous
    if delta.sessions:
        sessions = dict(previous.sessions)
        for arn, stored in delta.sessions.items():
            sessions.pop(arn, None)
            if stored is not None:
                sessions[arn] = compile_session(stored)
        state = dataclasses.replace(state, sessions=MappingProxyType(sessions))
    if delta.signing_keys is not None:
        state = dataclasses.replace(
            state, signing_keys=MappingProxyType({k.key_id: k for k in delta.signing_keys})
        )
    if delta.revoked_tokens is not None:
        state = dataclasses.replace(state, revoked_tokens=delta.revoked_tokens)
    return state


# -- compiling entities -------------------------------------------------------------------------


def _user_view(
    user: User,
    groups: Mapping[tuple[str, str], Group],
    policies: Mapping[str, ManagedPolicy],
    memo: PolicyMemo,
) -> PrincipalView:
    compiled = [_inline(f"{user.arn}#{name}", document) for name, document in user.inline.items()]
    compiled += [_attached(arn, policies, PolicyKind.IDENTITY, memo) for arn in user.attached]
    for group_name in user.groups:
        group = groups.get((user.account, group_name))
        if group is None:
            continue
        compiled += [_inline(f"{group.arn}#{name}", d) for name, d in group.inline.items()]
        compiled += [_attached(arn, policies, PolicyKind.IDENTITY, memo) for arn in group.attached]
    return PrincipalView(
        user.key,
        user.arn,
        StatementIndex(compiled),
        _boundary(user.boundary, policies, memo),
        MappingProxyType(dict(user.tags)),
        partition=user.partition,
    )


def _role_view(
    role: Role, policies: Mapping[str, ManagedPolicy], memo: PolicyMemo
) -> PrincipalView:
    compiled = [_inline(f"{role.arn}#{name}", document) for name, document in role.inline.items()]
    compiled += [_attached(arn, policies, PolicyKind.IDENTITY, memo) for arn in role.attached]
    trust = None
    if role.trust_policy is not None:
        trust = compile_policy(
            parse_policy(role.trust_policy, kind=PolicyKind.REPOSITORY, name=f"{role.arn}#trust")
        )
    return PrincipalView(
        role.key,
        role.arn,
        StatementIndex(compiled),
        _boundary(role.boundary, policies, memo),
        MappingProxyType(dict(role.tags)),
        trust,
        role.max_session_duration,
        role.partition,
    )


def _repository_view(
    arn: str, document: Document | None, tags: Mapping[str, str]
) -> RepositoryView:
    policy = None
    if document is not None:
        policy = compile_policy(
            parse_policy(document, kind=PolicyKind.REPOSITORY, name=f"{arn}#policy")
        )
    return RepositoryView(arn, policy, MappingProxyType(dict(tags)))


def _boundary(
    arn: str | None, policies: Mapping[str, ManagedPolicy], memo: PolicyMemo
) -> StatementIndex | None:
    if arn is None:
        return None
    return StatementIndex([_attached(arn, policies, PolicyKind.BOUNDARY, memo)])


def _inline(name: str, document: Document) -> CompiledPolicy:
    return compile_policy(parse_policy(document, kind=PolicyKind.IDENTITY, name=name))


def _attached(
    arn: str, policies: Mapping[str, ManagedPolicy], kind: PolicyKind, memo: PolicyMemo
) -> CompiledPolicy:
    return memo.compile(arn, policies[arn].document, kind)


def _organization(
    organization: Organization | None,
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
