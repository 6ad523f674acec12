"""Who and what a snapshot holds, arranged for the questions: principals by account and by the
user or role they act for, repositories by account and by name, and who repository policies name.

Built once per snapshot (`directory_of` keeps the last few), in time linear in the entities and
repository-policy statements: the questions then look up, never scan the fleet.
"""

from __future__ import annotations

import bisect
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from dockgate_server.analysis.finding import PrincipalType
from dockgate_server.engine.compile import CompiledStatement
from dockgate_server.engine.snapshot import PrincipalView, Snapshot
from dockgate_server.policy.model import Effect
from dockgate_server.policy.principal import EntryKind, PrincipalEntry

__all__ = ["Directory", "Principal", "directory_of", "named_key"]

_KEPT = 4
"""directories kept: a server answers against its current snapshot and the one before"""


@dataclass(frozen=True, slots=True)
class Principal:
    arn: str
    type: PrincipalType
    account: str
    view: PrincipalView | None = None
    """the user or role it is, or acts for; None for a root user or a service"""


@dataclass(slots=True)
class Directory:
    snapshot: Snapshot
    now: float
    principals: dict[str, Principal] = field(default_factory=dict)
    """every principal the store knows, by ARN (services: by name)"""
    by_account: dict[str, list[Principal]] = field(default_factory=dict)
    identities: list[Principal] = field(default_factory=list)
    """the users and roles"""
    roots: list[Principal] = field(default_factory=list)
    services: list[Principal] = field(default_factory=list)
    """the service principals repository policies name (a grant to `*` reaches them too)"""
    acting_for: dict[str, list[Principal]] = field(default_factory=dict)
    """owner key of a user or role → the live sessions Dockgate issued for it"""
    repositories_by_account: dict[str, list[str]] = field(default_factory=dict)
    by_resource: list[tuple[str, str]] = field(default_factory=list)
    """(`repository/NAME`, ARN) sorted: a pattern's literal prefix is a range of it"""
    named: dict[str, set[str]] = field(default_factory=dict)
    """who a repository policy's Allow statement names → those repositories' ARNs: `*` for a
    wildcard or NotPrincipal, the account ID, or the ARN (a role's lower-cased `role/ACCT/name`
    key, a service's name)"""

    def principal(self, arn: str) -> Principal | None:
        return self.principals.get(arn)

    def repositories_from(self, prefix: str) -> Iterable[str]:
        """The repository ARNs whose resource part (`repository/NAME`) starts with `prefix`."""
        start = bisect.bisect_left(self.by_resource, (prefix, ""))
        for resource, arn in self.by_resource[start:]:
            if not resource.startswith(prefix):
                break
            yield arn

    def repositories_naming(self, keys: Iterable[str]) -> set[str]:
        found: set[str] = set()
        for key in keys:
            found |= self.named.get(key, set())
        return found


_LOCK = threading.Lock()
_DIRECTORIES: list[Directory] = []


def directory_of(snapshot: Snapshot, now: float | None = None) -> Directory:
    """The directory of `snapshot`, built on first use; sessions live at `now` (the wall clock
    when None: a directory built for another time is rebuilt)."""
    with _LOCK:
        for found in _DIRECTORIES:
            if found.snapshot is snapshot and (now is None or found.now == now):
                return found
    built = _build(snapshot, time.time() if now is None else now)
    with _LOCK:
        _DIRECTORIES.insert(0, built)
        del _DIRECTORIES[_KEPT:]
    return built


def _build(snapshot: Snapshot, now: float) -> Directory:
    directory = Directory(snapshot, now)

    def add(principal: Principal) -> None:
        directory.principals[principal.arn] = principal
        directory.by_account.setdefault(principal.account, []).append(principal)

    for view in snapshot.users.values():
        add(Principal(view.arn, PrincipalType.USER, _account(view.key), view))
    for view in snapshot.roles.values():
        add(Principal(view.arn, PrincipalType.ROLE, _account(view.key), view))
    directory.identities = list(directory.principals.values())
    for session in snapshot.credentials.sessions.values():
        if session.is_expired(now):
            continue
        base = snapshot.users.get(session.base) or snapshot.roles.get(session.base)
        if base is None:
            continue  # its role or user is gone: `decide` does not know it either
        kind = (
            PrincipalType.SESSION
            if ":assumed-role/" in session.arn
            else PrincipalType.FEDERATED_USER
        )
        principal = Principal(session.arn, kind, _account(session.base), base)
        add(principal)
        directory.acting_for.setdefault(session.base, []).append(principal)
    for account in sorted(snapshot.accounts):
        partition = snapshot.partition_of(account)
        root = Principal(f"arn:{partition}:iam::{account}:root", PrincipalType.ROOT, account)
        add(root)
        directory.roots.append(root)
    for arn, repository in snapshot.repositories.items():
        parts = arn.split(":", 5)
        if len(parts) != 6:
            continue
        directory.repositories_by_account.setdefault(parts[4], []).append(arn)
        directory.by_resource.append((parts[5], arn))
        if repository.policy is None:
            continue
        for statement in repository.policy.statements:
            for key, entry_kind in _named(statement):
                if statement.effect is Effect.ALLOW:
                    directory.named.setdefault(key, set()).add(arn)
                if entry_kind is EntryKind.SERVICE and key not in directory.principals:
                    service = Principal(key, PrincipalType.SERVICE, "")
                    add(service)
                    directory.services.append(service)
    directory.by_resource.sort()
    return directory


def _named(statement: CompiledStatement) -> list[tuple[str, EntryKind]]:
    """The keys of `Directory.named` an Allow statement's principals stand for."""
    if statement.principals is None or statement.not_principal:
        # IAM: an Allow with NotPrincipal grants to every caller it does not exempt
        return [("*", EntryKind.WILDCARD)]
    return [
        (named_key(entry), entry.kind)
        for entry in statement.principals
        if entry.kind is not EntryKind.NOTHING
    ]


def named_key(entry: PrincipalEntry) -> str:
    """How `Directory.named` files a principal entry."""
    kind = entry.kind
    if kind is EntryKind.WILDCARD:
        return "*"
    if kind is EntryKind.ACCOUNT:
        return entry.account
    if kind is EntryKind.ROLE:
        return f"role/{entry.account}/{entry.name.lower()}"
    if kind is EntryKind.SERVICE:
        return entry.name
    return entry.text


def _account(owner_key: str) -> str:
    return owner_key.split("/", 2)[1]
