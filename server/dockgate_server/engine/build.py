"""Compiling a fleet into a snapshot, and a delta into the next one: pure functions, no I/O.

A change to one user, role or repository recompiles only that entry: the rest of the maps are
shared with the previous snapshot. Each distinct policy document (by kind and canonical JSON) is
parsed and compiled once and shared by every entity that holds it, across snapshots, through a
`PolicyMemo` the caller keeps: a fleet repeats the same repository-policy shapes thousands of
times.
"""

from __future__ import annotations

import dataclasses
import gc
import hashlib
import json
import marshal
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from types import MappingProxyType
from typing import TypeVar

from cachetools import LRUCache

from dockgate_server.engine.compile import CompiledPolicy, compile_policy, renamed
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

__all__ = [
    "PolicyMemo",
    "apply_delta",
    "build_snapshot",
    "collection_paused",
    "compile_credentials",
]

_K = TypeVar("_K")
_V = TypeVar("_V")
_E = TypeVar("_E")

_DOCUMENTS_KEPT = 50_000
"""Distinct compiled documents kept across snapshots: a bound on the memo's memory; past it a
document is compiled again, which only costs time."""


class PolicyMemo:
    """Compiled policy documents, keyed by kind and content (the document decides the compiled
    form; the name only labels it, see `renamed`). Only saves work: a snapshot built with or
    without it is the same.

    Two keys, both collision-resistant digests (the memo holds 32 bytes per document, not the
    document again): the document's `marshal` bytes, a few microseconds, which tell a repeat
    written the same way; on a miss its canonical JSON, which also tells one written with its
    keys in another order. `marshal` refuses anything but plain JSON values, such as the
    dictionaries `load_json` marks with duplicate keys: those compile without the memo.
    """

    def __init__(self, size: int = _DOCUMENTS_KEPT) -> None:
        self._compiled: LRUCache[tuple[PolicyKind, bytes], CompiledPolicy] = LRUCache(maxsize=size)

    def compile(self, document: Document, kind: PolicyKind, name: str) -> CompiledPolicy:
        try:
            if not isinstance(document, dict):
                raise ValueError("not a plain JSON object")
            quick = (kind, _digest(b"marshal", marshal.dumps(document)))
        except ValueError:
            return compile_policy(parse_policy(document, kind=kind, name=name))
        compiled = self._compiled.get(quick)
        if compiled is None:
            text = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
            canonical = (kind, _digest(b"json", text.encode("utf-8", "surrogatepass")))
            compiled = self._compiled.get(canonical)
            if compiled is None:
                compiled = compile_policy(parse_policy(document, kind=kind, name=name))
                self._compiled[canonical] = compiled
            self._compiled[quick] = compiled
        return renamed(compiled, name)


def _digest(label: bytes, data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=32, person=label).digest()


@contextmanager
def collection_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while a snapshot's millions of objects are made.

    Compiled objects form no garbage cycles, yet every few thousand allocations the collector
    would traverse the whole growing heap (a third of a full compile's time): reference
    counting frees what a build discards either way.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def build_snapshot(
    fleet: Fleet, credentials: Credentials, revision: int, memo: PolicyMemo | None = None
) -> Snapshot:
    """The snapshot of `fleet` and `credentials` at `revision`."""
    memo = memo if memo is not None else PolicyMemo()
    with collection_paused():
        policies = {policy.arn: policy for policy in fleet.policies}
        groups = {(group.account, group.name): group for group in fleet.groups}
        users = {user.key: _user_view(user, groups, policies, memo) for user in fleet.users}
        roles = {role.key: _role_view(role, policies, memo) for role in fleet.roles}
        repositories = {
            repo.arn: _repository_view(repo.arn, repo.policy, repo.tags, memo)
            for repo in fleet.repositories
        }
        scps, rcps, paths = _organization(fleet.organization, memo)
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
    memo = memo if memo is not None else PolicyMemo()
    with collection_paused():
        users = _patched(
            snapshot.users,
            delta.users,
            lambda _, user: _user_view(user, delta.groups, delta.policies, memo),
        )
        roles = _patched(
            snapshot.roles, delta.roles, lambda _, role: _role_view(role, delta.policies, memo)
        )
        repositories = _patched(
            snapshot.repositories,
            delta.repositories,
            lambda arn, repo: _repository_view(arn, repo.policy, repo.tags, memo),
        )
        organization = (
            _organization(delta.organization, memo) if delta.change.organization else None
        )
    scps, rcps, paths = (
        (snapshot.service_control, snapshot.resource_control, snapshot.organization_paths)
        if organization is None
        else (
            MappingProxyType(organization[0]),
            MappingProxyType(organization[1]),
            MappingProxyType(organization[2]),
        )
    )
    return Snapshot(
        delta.revision,
        frozenset(delta.accounts),
        users,
        snapshot.user_arns
        if users is snapshot.users
        else MappingProxyType({view.arn: key for key, view in users.items()}),
        roles,
        repositories,
        scps,
        rcps,
        paths,
        _credentials(snapshot.credentials, delta),
        snapshot.partitions
        if _same_partitions(snapshot, delta)
        else partitions_of(users, roles, repositories),
    )


def _patched(
    previous: Mapping[_K, _V], changes: Mapping[_K, _E | None], build: Callable[[_K, _E], _V]
) -> Mapping[_K, _V]:
    """`previous` with the entries `changes` names rebuilt or removed; itself when none."""
    if not changes:
        return previous
    entries = dict(previous)
    for key, changed in changes.items():
        entries.pop(key, None)  # a re-added key goes last, as a fresh build orders it
        if changed is not None:
            entries[key] = build(key, changed)
    return MappingProxyType(entries)


def _same_partitions(snapshot: Snapshot, delta: Delta) -> bool:
    """Whether the delta leaves every account's count of entries per partition as it was (the
    common change: a policy or tags replaced), so `partitions_of` would answer the same."""
    before: Counter[tuple[str, str]] = Counter()
    after: Counter[tuple[str, str]] = Counter()
    for key, user in delta.users.items():
        old = snapshot.users.get(key)
        if old is not None:
            before[_account_of(key), old.partition] += 1
        if user is not None:
            after[_account_of(key), user.partition] += 1
    for key, role in delta.roles.items():
        old = snapshot.roles.get(key)
        if old is not None:
            before[_account_of(key), old.partition] += 1
        if role is not None:
            after[_account_of(key), role.partition] += 1
    for arn, repository in delta.repositories.items():
        parts = arn.split(":", 5)
        if len(parts) != 6:
            continue  # partitions_of counts only well-formed ARNs
        if arn in snapshot.repositories:
            before[parts[4], parts[1]] += 1
        if repository is not None:
            after[parts[4], parts[1]] += 1
    return before == after


def _account_of(key: str) -> str:
    """The account of an owner key `user/ACCOUNT/NAME` or `role/ACCOUNT/name`."""
    return key.split("/", 2)[1]


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
    compiled = [
        _inline(f"{user.arn}#{name}", document, memo) for name, document in user.inline.items()
    ]
    compiled += [_attached(arn, policies, PolicyKind.IDENTITY, memo) for arn in user.attached]
    for group_name in user.groups:
        group = groups.get((user.account, group_name))
        if group is None:
            continue
        compiled += [_inline(f"{group.arn}#{name}", d, memo) for name, d in group.inline.items()]
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
    compiled = [
        _inline(f"{role.arn}#{name}", document, memo) for name, document in role.inline.items()
    ]
    compiled += [_attached(arn, policies, PolicyKind.IDENTITY, memo) for arn in role.attached]
    trust = None
    if role.trust_policy is not None:
        trust = memo.compile(role.trust_policy, PolicyKind.REPOSITORY, f"{role.arn}#trust")
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
    arn: str, document: Document | None, tags: Mapping[str, str], memo: PolicyMemo
) -> RepositoryView:
    policy = None
    if document is not None:
        policy = memo.compile(document, PolicyKind.REPOSITORY, f"{arn}#policy")
    return RepositoryView(arn, policy, MappingProxyType(dict(tags)))


def _boundary(
    arn: str | None, policies: Mapping[str, ManagedPolicy], memo: PolicyMemo
) -> StatementIndex | None:
    if arn is None:
        return None
    return StatementIndex([_attached(arn, policies, PolicyKind.BOUNDARY, memo)])


def _inline(name: str, document: Document, memo: PolicyMemo) -> CompiledPolicy:
    return memo.compile(document, PolicyKind.IDENTITY, name)


def _attached(
    arn: str, policies: Mapping[str, ManagedPolicy], kind: PolicyKind, memo: PolicyMemo
) -> CompiledPolicy:
    return memo.compile(policies[arn].document, kind, arn)


def _organization(
    organization: Organization | None, memo: PolicyMemo
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
                    _level(node.service_control, PolicyKind.SCP, f"{node.id}#scp", memo),
                    _level(node.resource_control, PolicyKind.RCP, f"{node.id}#rcp", memo),
                )
        scps[account] = tuple(nodes[node.id][0] for node in path)
        rcps[account] = tuple(nodes[node.id][1] for node in path)
        # AWS spells it `o-a1b2c3d4e5/r-ab12/ou-ab12-11111111/`
        paths[account] = (
            organization.id,
            "".join(f"{n}/" for n in (organization.id, *(x.id for x in path))),
        )
    return scps, rcps, paths


def _level(
    documents: tuple[Document, ...], kind: PolicyKind, name: str, memo: PolicyMemo
) -> StatementIndex:
    return StatementIndex(
        memo.compile(document, kind, f"{name}[{i}]") for i, document in enumerate(documents)
    )


def _accounts_in(organization: Organization) -> list[str]:
    accounts: list[str] = []
    pending = [organization.root]
    while pending:
        node = pending.pop()
        accounts += node.accounts
        pending += node.children
    return accounts
