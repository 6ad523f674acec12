"""The SQLite store: the source of truth, one revision number raised by every write.

WAL journal with `synchronous=FULL`: an acknowledged write survives a crash or power loss, and
readers never block the writer. Every write validates first and runs in one transaction, so a
refused or interrupted write leaves the store exactly at its previous revision.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import urllib.parse
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dockgate_server.private_files import make_private_dirs, tighten
from dockgate_server.store.model import (
    Document,
    Fleet,
    Group,
    ManagedPolicy,
    Organization,
    OrgNode,
    Repository,
    Role,
    User,
    owner_key,
)
from dockgate_server.store.schema import MIGRATIONS, SCHEMA_VERSION
from dockgate_server.store.validate import StoreError, check_repository, validate_fleet

__all__ = ["Change", "MissingStoreError", "Store"]

_CHANGES_KEPT = 10_000
"""Revisions whose change records are kept; a reader further behind rebuilds from scratch."""


class MissingStoreError(StoreError):
    """A store opened without `create` that does not exist."""


@dataclass(frozen=True, slots=True)
class Change:
    """What one write touched, so a snapshot rebuilds only that."""

    revision: int
    principals: frozenset[str] = frozenset()
    """owner keys (`user/ACCOUNT/NAME`, `role/ACCOUNT/name`) whose policies or tags changed"""
    repositories: frozenset[str] = frozenset()
    organization: bool = False
    everything: bool = False
    sessions: frozenset[str] = frozenset()
    """session ARNs issued, replaced, revoked or swept"""
    credentials: bool = False
    """signing keys or revoked login tokens changed"""

    @staticmethod
    def merge(changes: list[Change]) -> Change:
        """One change that touches what all of `changes` touched, at the last one's revision."""
        return Change(
            changes[-1].revision,
            frozenset().union(*(c.principals for c in changes)),
            frozenset().union(*(c.repositories for c in changes)),
            any(c.organization for c in changes),
            any(c.everything for c in changes),
            frozenset().union(*(c.sessions for c in changes)),
            any(c.credentials for c in changes),
        )


@dataclass(slots=True)
class _Touched:
    principals: set[str] = field(default_factory=set)
    repositories: set[str] = field(default_factory=set)
    organization: bool = False
    everything: bool = False
    sessions: set[str] = field(default_factory=set)
    credentials: bool = False


class Store:
    """A fleet in one SQLite file. Not shared across threads: open one per thread or process."""

    def __init__(self, path: str | Path, *, create: bool = True) -> None:
        """Open the store at `path`; with `create`, make it (and its folders, mode 0700) first.

        Without `create` a missing store raises `MissingStoreError` and nothing is made: the
        read-only commands must not leave an empty store (or its folders) behind a typo.
        """
        self.path = Path(path)
        self._db = _connect(self.path, create=create)
        try:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute("PRAGMA foreign_keys=ON")
            self._migrate()
        except sqlite3.DatabaseError as problem:  # not a database, or one that is damaged
            self._db.close()
            raise StoreError(f"store `{self.path}`: cannot open: {problem}") from None
        except BaseException:
            self._db.close()
            raise

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # -- schema and revision ----------------------------------------------------------------

    def _migrate(self) -> None:
        version = self._db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"store `{self.path}` has schema {version}, newer than this dockgate ({SCHEMA_VERSION})"
            )
        for number in range(version, SCHEMA_VERSION):
            self._db.execute("BEGIN IMMEDIATE")
            try:
                for statement in _statements(MIGRATIONS[number]):
                    self._db.execute(statement)
                self._db.execute(f"PRAGMA user_version = {number + 1}")
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    @property
    def revision(self) -> int:
        return int(self._db.execute("SELECT value FROM meta WHERE key = 'revision'").fetchone()[0])

    @contextmanager
    def _write(self) -> Iterator[_Touched]:
        """One transaction that raises the revision by one, or changes nothing at all."""
        touched = _Touched()
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield touched
            self._db.execute(
                "UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'revision'"
            )
            revision = self.revision
            self._db.execute(
                "INSERT INTO changes (revision, principals, repositories, organization, everything, sessions, credentials) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    revision,
                    _dump(sorted(touched.principals)),
                    _dump(sorted(touched.repositories)),
                    int(touched.organization),
                    int(touched.everything),
                    _dump(sorted(touched.sessions)),
                    int(touched.credentials),
                ),
            )
            self._db.execute("DELETE FROM changes WHERE revision <= ?", (revision - _CHANGES_KEPT,))
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise

    def _changed(self, touched: _Touched) -> Change:
        return Change(
            self.revision,
            frozenset(touched.principals),
            frozenset(touched.repositories),
            touched.organization,
            touched.everything,
            frozenset(touched.sessions),
            touched.credentials,
        )

    @contextmanager
    def reading(self) -> Iterator[int]:
        """A consistent view across several reads; yields the revision it sees. Re-entrant."""
        if self._db.in_transaction:
            yield self.revision
            return
        self._db.execute("BEGIN")
        try:
            yield self.revision
        finally:
            self._db.execute("COMMIT")

    # -- writes -----------------------------------------------------------------------------

    def put_user(self, user: User) -> Change:
        self._validate(Fleet(users=(user,)), groups=self._group_names(user.account))
        with self._write() as touched:
            self._insert_user(user)
            touched.principals.add(user.key)
        return self._changed(touched)

    def delete_user(self, account: str, name: str) -> Change:
        key = owner_key("user", account, name)
        with self._write() as touched:
            self._require(
                self._db.execute(
                    "DELETE FROM users WHERE account = ? AND name = ?", (account, name)
                ),
                f"user `{name}` of account {account}",
            )
            self._db.execute(
                "DELETE FROM group_members WHERE account = ? AND user_name = ?", (account, name)
            )
            self._delete_owned(key)
            touched.principals.add(key)
        return self._changed(touched)

    def put_group(self, group: Group) -> Change:
        self._validate(Fleet(groups=(group,)))
        with self._write() as touched:
            self._insert_group(group)
            touched.principals.update(self._member_keys(group.account, group.name))
        return self._changed(touched)

    def delete_group(self, account: str, name: str) -> Change:
        if self._member_keys(account, name):
            raise StoreError(f"group `{name}` of account {account} still has members")
        with self._write() as touched:
            self._require(
                self._db.execute(
                    "DELETE FROM groups WHERE account = ? AND name = ?", (account, name)
                ),
                f"group `{name}` of account {account}",
            )
            self._delete_owned(owner_key("group", account, name))
        return self._changed(touched)

    def put_role(self, role: Role) -> Change:
        self._validate(Fleet(roles=(role,)))
        with self._write() as touched:
            self._insert_role(role)
            touched.principals.add(role.key)
        return self._changed(touched)

    def delete_role(self, account: str, name: str) -> Change:
        key = owner_key("role", account, name)
        with self._write() as touched:
            self._require(
                self._db.execute(
                    "DELETE FROM roles WHERE account = ? AND folded = ?", (account, name.lower())
                ),
                f"role `{name}` of account {account}",
            )
            self._delete_owned(key)
            touched.principals.add(key)
        return self._changed(touched)

    def put_policy(self, policy: ManagedPolicy) -> Change:
        """Create a customer managed policy, or replace its versions and default version."""
        self._validate(Fleet(policies=(policy,)))
        with self._write() as touched:
            self._insert_policy(policy)
            touched.principals.update(self._policy_principals(policy.arn))
        return self._changed(touched)

    def delete_policy(self, arn: str) -> Change:
        if (
            self._policy_principals(arn)
            or self._db.execute("SELECT 1 FROM attachments WHERE policy_arn = ?", (arn,)).fetchone()
        ):
            raise StoreError(f"managed policy `{arn}` is still attached or used as a boundary")
        with self._write() as touched:
            self._require(
                self._db.execute("DELETE FROM managed_policies WHERE arn = ?", (arn,)),
                f"managed policy `{arn}`",
            )
            self._db.execute("DELETE FROM policy_versions WHERE arn = ?", (arn,))
        return self._changed(touched)

    def put_repository(self, repository: Repository) -> Change:
        check_repository(repository)
        with self._write() as touched:
            self._insert_repository(repository)
            touched.repositories.add(repository.arn)
        return self._changed(touched)

    def set_repository_policy(self, arn: str, document: Document | None) -> Change:
        current = self.load_repository(arn)
        if current is None:
            raise StoreError(f"repository `{arn}` does not exist")
        return self.put_repository(Repository(arn, current.tags, document))

    def delete_repository(self, arn: str) -> Change:
        with self._write() as touched:
            self._require(
                self._db.execute("DELETE FROM repositories WHERE arn = ?", (arn,)),
                f"repository `{arn}`",
            )
            touched.repositories.add(arn)
        return self._changed(touched)

    def set_organization(self, organization: Organization | None) -> Change:
        self._validate(Fleet(organization=organization))
        with self._write() as touched:
            self._db.execute("DELETE FROM organization")
            if organization is not None:
                self._db.execute(
                    "INSERT INTO organization (singleton, tree) VALUES (1, ?)",
                    (json.dumps(_node_to_json(organization.root) | {"orgId": organization.id}),),
                )
            touched.organization = True
        return self._changed(touched)

    def import_fleet(self, fleet: Fleet, *, replace: bool = False) -> Change:
        """Validate all of `fleet`, then land it in one transaction.

        Merge (default): entities in the fleet replace their stored versions. `replace`: the fleet
        is the whole truth for the accounts it names.
        """
        known = set() if replace else {p.arn for p in self._all_policies()}
        stored_groups = set() if replace else {(g.account, g.name) for g in self._all_groups()}
        self._validate(fleet, known, stored_groups)
        with self._write() as touched:
            if replace:
                for account in _fleet_accounts(fleet):
                    self._delete_account(account)
            for account in _fleet_accounts(fleet):
                self._db.execute("INSERT OR IGNORE INTO accounts (account) VALUES (?)", (account,))
            for policy in fleet.policies:
                self._insert_policy(policy)
            for group in fleet.groups:
                self._insert_group(group)
            for user in fleet.users:
                self._insert_user(user)
            for role in fleet.roles:
                self._insert_role(role)
            for repository in fleet.repositories:
                self._insert_repository(repository)
            if fleet.organization is not None:
                self._db.execute("DELETE FROM organization")
                self._db.execute(
                    "INSERT INTO organization (singleton, tree) VALUES (1, ?)",
                    (
                        json.dumps(
                            _node_to_json(fleet.organization.root)
                            | {"orgId": fleet.organization.id}
                        ),
                    ),
                )
            touched.everything = True
        return self._changed(touched)

    # -- write helpers ----------------------------------------------------------------------

    def _validate(
        self,
        fleet: Fleet,
        known: set[str] | None = None,
        groups: set[tuple[str, str]] | None = None,
    ) -> None:
        known_policies = known if known is not None else {p.arn for p in self._all_policies()}
        if groups:
            fleet = Fleet(*_with_groups(fleet, groups))
        validate_fleet(fleet, known_policies)

    def _group_names(self, account: str) -> set[tuple[str, str]]:
        rows = self._db.execute("SELECT account, name FROM groups WHERE account = ?", (account,))
        return {(row[0], row[1]) for row in rows}

    @staticmethod
    def _require(cursor: sqlite3.Cursor, what: str) -> None:
        if cursor.rowcount == 0:
            raise StoreError(f"{what} does not exist")

    def _account(self, account: str) -> None:
        self._db.execute("INSERT OR IGNORE INTO accounts (account) VALUES (?)", (account,))

    def _insert_user(self, user: User) -> None:
        self._account(user.account)
        self._db.execute(
            "INSERT OR REPLACE INTO users (account, name, path, arn, user_id, tags, boundary, partition)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                user.account,
                user.name,
                user.path,
                user.arn,
                user.user_id,
                _dump(user.tags),
                user.boundary,
                user.partition,
            ),
        )
        self._db.execute(
            "DELETE FROM group_members WHERE account = ? AND user_name = ?",
            (user.account, user.name),
        )
        self._db.executemany(
            "INSERT INTO group_members (account, group_name, user_name) VALUES (?, ?, ?)",
            [(user.account, group, user.name) for group in user.groups],
        )
        self._replace_owned(user.key, user.inline, user.attached)

    def _insert_group(self, group: Group) -> None:
        self._account(group.account)
        self._db.execute(
            "INSERT OR REPLACE INTO groups (account, name, path, arn, group_id, partition) VALUES (?, ?, ?, ?, ?, ?)",
            (group.account, group.name, group.path, group.arn, group.group_id, group.partition),
        )
        self._replace_owned(group.key, group.inline, group.attached)

    def _insert_role(self, role: Role) -> None:
        self._account(role.account)
        self._db.execute(
            "INSERT OR REPLACE INTO roles (account, name, folded, path, arn, role_id, trust_policy, tags,"
            " boundary, max_session_duration, partition) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                role.account,
                role.name,
                role.name.lower(),
                role.path,
                role.arn,
                role.role_id,
                None if role.trust_policy is None else _dump(role.trust_policy),
                _dump(role.tags),
                role.boundary,
                role.max_session_duration,
                role.partition,
            ),
        )
        self._replace_owned(role.key, role.inline, role.attached)

    def _insert_policy(self, policy: ManagedPolicy) -> None:
        if policy.account is not None:
            self._account(policy.account)
        self._db.execute(
            "INSERT OR REPLACE INTO managed_policies (arn, account, name, path, policy_id, default_version)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (
                policy.arn,
                policy.account,
                policy.name,
                policy.path,
                policy.policy_id,
                policy.default_version,
            ),
        )
        self._db.execute("DELETE FROM policy_versions WHERE arn = ?", (policy.arn,))
        self._db.executemany(
            "INSERT INTO policy_versions (arn, version_id, document) VALUES (?, ?, ?)",
            [
                (policy.arn, version, _dump(document))
                for version, document in policy.versions.items()
            ],
        )

    def _insert_repository(self, repository: Repository) -> None:
        self._account(repository.account)
        self._db.execute(
            "INSERT OR REPLACE INTO repositories (arn, account, region, name, tags, policy) VALUES (?, ?, ?, ?, ?, ?)",
            (
                repository.arn,
                repository.account,
                repository.region,
                repository.name,
                _dump(repository.tags),
                None if repository.policy is None else _dump(repository.policy),
            ),
        )

    def _replace_owned(
        self, key: str, inline: Mapping[str, Document], attached: tuple[str, ...]
    ) -> None:
        self._delete_owned(key)
        self._db.executemany(
            "INSERT INTO inline_policies (owner, name, document) VALUES (?, ?, ?)",
            [(key, name, _dump(document)) for name, document in inline.items()],
        )
        self._db.executemany(
            "INSERT INTO attachments (owner, policy_arn) VALUES (?, ?)",
            [(key, arn) for arn in attached],
        )

    def _delete_owned(self, key: str) -> None:
        self._db.execute("DELETE FROM inline_policies WHERE owner = ?", (key,))
        self._db.execute("DELETE FROM attachments WHERE owner = ?", (key,))

    def _delete_account(self, account: str) -> None:
        owners = f"%/{account}/%"
        self._db.execute("DELETE FROM inline_policies WHERE owner LIKE ?", (owners,))
        self._db.execute("DELETE FROM attachments WHERE owner LIKE ?", (owners,))
        for table in (
            "users",
            "groups",
            "group_members",
            "roles",
            "managed_policies",
            "repositories",
        ):
            self._db.execute(f"DELETE FROM {table} WHERE account = ?", (account,))
        self._db.execute(
            "DELETE FROM policy_versions WHERE arn LIKE ?", (f"arn:%:iam::{account}:policy/%",)
        )

    def _member_keys(self, account: str, group: str) -> set[str]:
        rows = self._db.execute(
            "SELECT user_name FROM group_members WHERE account = ? AND group_name = ?",
            (account, group),
        )
        return {owner_key("user", account, row[0]) for row in rows}

    def _policy_principals(self, arn: str) -> set[str]:
        """Users and roles whose permissions depend on managed policy `arn`."""
        keys: set[str] = set()
        for (owner,) in self._db.execute(
            "SELECT owner FROM attachments WHERE policy_arn = ?", (arn,)
        ):
            kind, account, name = owner.split("/", 2)
            if kind == "group":
                keys |= self._member_keys(account, name)
            else:
                keys.add(owner)
        for account, name in self._db.execute(
            "SELECT account, name FROM users WHERE boundary = ?", (arn,)
        ):
            keys.add(owner_key("user", account, name))
        for account, name in self._db.execute(
            "SELECT account, name FROM roles WHERE boundary = ?", (arn,)
        ):
            keys.add(owner_key("role", account, name))
        return keys

    # -- reads ------------------------------------------------------------------------------

    def changes_since(self, revision: int) -> list[Change] | None:
        """What every write after `revision` touched, in order; None when the log no longer
        reaches back that far (then only a full rebuild is right)."""
        with self.reading() as current:
            rows = self._db.execute(
                "SELECT revision, principals, repositories, organization, everything, sessions,"
                " credentials FROM changes WHERE revision > ? ORDER BY revision",
                (revision,),
            ).fetchall()
        if current > revision and (not rows or rows[0][0] != revision + 1):
            return None
        return [
            Change(
                number,
                frozenset(json.loads(principals)),
                frozenset(json.loads(repositories)),
                bool(organization),
                bool(everything),
                frozenset(json.loads(sessions)),
                bool(credentials),
            )
            for number, principals, repositories, organization, everything, sessions, credentials in rows
        ]

    def accounts(self) -> tuple[str, ...]:
        return tuple(
            row[0] for row in self._db.execute("SELECT account FROM accounts ORDER BY account")
        )

    def load_fleet(self) -> Fleet:
        with self.reading():
            return Fleet(
                self.accounts(),
                tuple(self._users("1 = 1", ())),
                tuple(self._all_groups()),
                tuple(self._roles("1 = 1", ())),
                tuple(self._all_policies()),
                tuple(self._repositories("1 = 1", ())),
                self.load_organization(),
            )

    def load_user(self, account: str, name: str) -> User | None:
        found = self._users("account = ? AND name = ?", (account, name))
        return found[0] if found else None

    def load_role(self, account: str, name: str) -> Role | None:
        found = self._roles("account = ? AND folded = ?", (account, name.lower()))
        return found[0] if found else None

    def load_group(self, account: str, name: str) -> Group | None:
        found = self._groups("account = ? AND name = ?", (account, name))
        return found[0] if found else None

    def load_policy(self, arn: str) -> ManagedPolicy | None:
        found = self._policies("arn = ?", (arn,))
        return found[0] if found else None

    def load_repository(self, arn: str) -> Repository | None:
        found = self._repositories("arn = ?", (arn,))
        return found[0] if found else None

    def load_organization(self) -> Organization | None:
        row = self._db.execute("SELECT tree FROM organization").fetchone()
        if row is None:
            return None
        tree = json.loads(row[0])
        return Organization(tree["orgId"], _node_from_json(tree))

    def _owned(self, key: str) -> tuple[dict[str, Document], tuple[str, ...]]:
        inline = {
            name: json.loads(document)
            for name, document in self._db.execute(
                "SELECT name, document FROM inline_policies WHERE owner = ? ORDER BY rowid", (key,)
            )
        }
        attached = tuple(
            row[0]
            for row in self._db.execute(
                "SELECT policy_arn FROM attachments WHERE owner = ? ORDER BY rowid", (key,)
            )
        )
        return inline, attached

    def _users(self, where: str, arguments: tuple[Any, ...]) -> list[User]:
        users = []
        rows = self._db.execute(
            f"SELECT account, name, path, user_id, tags, boundary, partition FROM users WHERE {where}"
            " ORDER BY account, name",
            arguments,
        ).fetchall()
        for account, name, path, user_id, tags, boundary, partition in rows:
            groups = tuple(
                row[0]
                for row in self._db.execute(
                    "SELECT group_name FROM group_members WHERE account = ? AND user_name = ? ORDER BY rowid",
                    (account, name),
                )
            )
            inline, attached = self._owned(owner_key("user", account, name))
            users.append(
                User(
                    account,
                    name,
                    path,
                    user_id,
                    json.loads(tags),
                    boundary,
                    groups,
                    inline,
                    attached,
                    partition,
                )
            )
        return users

    def _groups(self, where: str, arguments: tuple[Any, ...]) -> list[Group]:
        groups = []
        rows = self._db.execute(
            f"SELECT account, name, path, group_id, partition FROM groups WHERE {where}"
            " ORDER BY account, name",
            arguments,
        ).fetchall()
        for account, name, path, group_id, partition in rows:
            inline, attached = self._owned(owner_key("group", account, name))
            groups.append(Group(account, name, path, group_id, inline, attached, partition))
        return groups

    def _all_groups(self) -> list[Group]:
        return self._groups("1 = 1", ())

    def _roles(self, where: str, arguments: tuple[Any, ...]) -> list[Role]:
        roles = []
        rows = self._db.execute(
            "SELECT account, name, path, role_id, trust_policy, tags, boundary, max_session_duration, partition"
            f" FROM roles WHERE {where} ORDER BY account, folded",
            arguments,
        ).fetchall()
        for account, name, path, role_id, trust, tags, boundary, duration, partition in rows:
            inline, attached = self._owned(owner_key("role", account, name))
            roles.append(
                Role(
                    account,
                    name,
                    path,
                    role_id,
                    None if trust is None else json.loads(trust),
                    json.loads(tags),
                    boundary,
                    duration,
                    inline,
                    attached,
                    partition,
                )
            )
        return roles

    def _policies(self, where: str, arguments: tuple[Any, ...]) -> list[ManagedPolicy]:
        policies = []
        rows = self._db.execute(
            f"SELECT arn, name, path, default_version, policy_id FROM managed_policies WHERE {where}"
            " ORDER BY arn",
            arguments,
        ).fetchall()
        for arn, name, path, default_version, policy_id in rows:
            versions = {
                version: json.loads(document)
                for version, document in self._db.execute(
                    "SELECT version_id, document FROM policy_versions WHERE arn = ? ORDER BY rowid",
                    (arn,),
                )
            }
            policies.append(ManagedPolicy(arn, name, path, default_version, versions, policy_id))
        return policies

    def _all_policies(self) -> list[ManagedPolicy]:
        return self._policies("1 = 1", ())

    def _repositories(self, where: str, arguments: tuple[Any, ...]) -> list[Repository]:
        rows = self._db.execute(
            f"SELECT arn, tags, policy FROM repositories WHERE {where} ORDER BY arn", arguments
        )
        return [
            Repository(arn, json.loads(tags), None if policy is None else json.loads(policy))
            for arn, tags, policy in rows
        ]


def _connect(path: Path, *, create: bool) -> sqlite3.Connection:
    """A connection to the store file, which only its owner may read or write.

    The file is made 0600 before SQLite opens it: SQLite gives its `-wal` and `-shm` files the
    mode of the database file, so they are 0600 too (SQLite alone would make all three 0644).
    A store an older version left readable is tightened when it is ours.
    """
    try:
        if create:
            make_private_dirs(path.parent)
            with contextlib.suppress(FileExistsError):
                os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        elif not path.is_file():
            raise MissingStoreError(f"store `{path}` does not exist")
        for name in (path, _sibling(path, "-wal"), _sibling(path, "-shm")):
            with contextlib.suppress(FileNotFoundError):
                tighten(name, 0o600)
        # mode=rw: an existing file only; SQLite must not make one where the check above saw one
        uri = f"file:{urllib.parse.quote(str(path.absolute()))}?mode=rw"
        return sqlite3.connect(uri, uri=True, isolation_level=None, timeout=30)
    except (OSError, sqlite3.Error) as problem:
        if not create and not path.exists():
            raise MissingStoreError(f"store `{path}` does not exist") from None
        reason = problem.strerror if isinstance(problem, OSError) else str(problem)
        raise StoreError(f"store `{path}`: cannot open: {reason}") from None


def _sibling(path: Path, suffix: str) -> Path:
    return path.with_name(path.name + suffix)


def _statements(script: str) -> list[str]:
    return [part.strip() for part in script.split(";") if part.strip()]


def _dump(value: object) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _fleet_accounts(fleet: Fleet) -> list[str]:
    accounts = dict.fromkeys(fleet.accounts)
    entities: list[User | Group | Role] = [*fleet.users, *fleet.groups, *fleet.roles]
    for entity in entities:
        accounts[entity.account] = None
    for repository in fleet.repositories:
        accounts[repository.account] = None
    for policy in fleet.policies:
        if policy.account is not None:
            accounts[policy.account] = None
    return list(accounts)


def _with_groups(fleet: Fleet, groups: set[tuple[str, str]]) -> tuple[Any, ...]:
    """The fleet plus stand-ins for stored groups, so a user's memberships validate."""
    listed = {(group.account, group.name) for group in fleet.groups}
    stand_ins = tuple(Group(account, name) for account, name in groups - listed)
    return (
        fleet.accounts,
        fleet.users,
        fleet.groups + stand_ins,
        fleet.roles,
        fleet.policies,
        fleet.repositories,
        fleet.organization,
    )


def _node_to_json(node: OrgNode) -> dict[str, Any]:
    return {
        "id": node.id,
        "serviceControlPolicies": list(node.service_control),
        "resourceControlPolicies": list(node.resource_control),
        "accounts": list(node.accounts),
        "children": [_node_to_json(child) for child in node.children],
    }


def _node_from_json(raw: Mapping[str, Any]) -> OrgNode:
    return OrgNode(
        raw["id"],
        tuple(raw.get("serviceControlPolicies", ())),
        tuple(raw.get("resourceControlPolicies", ())),
        tuple(raw.get("accounts", ())),
        tuple(_node_from_json(child) for child in raw.get("children", ())),
    )
