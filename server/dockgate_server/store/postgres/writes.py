"""Writing the fleet to PostgreSQL: each write validates, lands in one transaction, or not at all.

Checks and validation run inside the write's transaction, after it holds the revision lock: what
they read (the stored policies a user attaches, a group's members) cannot change on another
replica before the write commits. Rows go in batches (one statement per table, pipelined), so an
import of thousands of entities is a handful of round trips.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from dockgate_server.store.errors import NotFound, Refused
from dockgate_server.store.model import (
    Change,
    Document,
    Fleet,
    Group,
    ManagedPolicy,
    Organization,
    Repository,
    Role,
    User,
    owner_key,
)
from dockgate_server.store.postgres.connection import Cursor
from dockgate_server.store.postgres.reads import FleetReads
from dockgate_server.store.rows import (
    dump,
    fleet_accounts,
    group_row,
    organization_to_json,
    policy_row,
    repository_row,
    role_row,
    user_row,
)
from dockgate_server.store.validate import check_repository, validate_write

__all__ = ["FleetWrites"]


class FleetWrites(FleetReads):
    """The write half of the fleet tables."""

    def put_user(self, user: User) -> Change:
        with self._write() as touched, self._reads() as cursor:
            self._validate(cursor, Fleet(users=(user,)), groups=_group_names(cursor, user.account))
            _insert_users(cursor, [user])
            touched.principals.add(user.key)
        return self._changed(touched)

    def delete_user(self, account: str, name: str) -> Change:
        key = owner_key("user", account, name)
        with self._write() as touched, self._reads() as cursor:
            cursor.execute("DELETE FROM users WHERE account = %s AND name = %s", (account, name))
            _require(cursor, f"user `{name}` of account {account}")
            cursor.execute(
                "DELETE FROM group_members WHERE account = %s AND user_name = %s", (account, name)
            )
            _delete_owned(cursor, [key])
            touched.principals.add(key)
        return self._changed(touched)

    def put_group(self, group: Group) -> Change:
        with self._write() as touched, self._reads() as cursor:
            self._validate(cursor, Fleet(groups=(group,)))
            _insert_groups(cursor, [group])
            touched.principals.update(_member_keys(cursor, group.account, group.name))
        return self._changed(touched)

    def delete_group(self, account: str, name: str) -> Change:
        with self._write() as touched, self._reads() as cursor:
            if _member_keys(cursor, account, name):
                raise Refused(f"group `{name}` of account {account} still has members")
            cursor.execute(
                "DELETE FROM iam_groups WHERE account = %s AND name = %s", (account, name)
            )
            _require(cursor, f"group `{name}` of account {account}")
            _delete_owned(cursor, [owner_key("group", account, name)])
        return self._changed(touched)

    def put_role(self, role: Role) -> Change:
        with self._write() as touched, self._reads() as cursor:
            self._validate(cursor, Fleet(roles=(role,)))
            _insert_roles(cursor, [role])
            touched.principals.add(role.key)
        return self._changed(touched)

    def delete_role(self, account: str, name: str) -> Change:
        key = owner_key("role", account, name)
        with self._write() as touched, self._reads() as cursor:
            cursor.execute(
                "DELETE FROM roles WHERE account = %s AND folded = %s", (account, name.lower())
            )
            _require(cursor, f"role `{name}` of account {account}")
            _delete_owned(cursor, [key])
            touched.principals.add(key)
        return self._changed(touched)

    def put_policy(self, policy: ManagedPolicy) -> Change:
        """Create a customer managed policy, or replace its versions and default version."""
        with self._write() as touched, self._reads() as cursor:
            self._validate(cursor, Fleet(policies=(policy,)))
            _insert_policies(cursor, [policy])
            touched.principals.update(_policy_principals(cursor, policy.arn))
        return self._changed(touched)

    def delete_policy(self, arn: str) -> Change:
        with self._write() as touched, self._reads() as cursor:
            attached = cursor.execute(
                "SELECT 1 FROM attachments WHERE policy_arn = %s LIMIT 1", (arn,)
            ).fetchone()
            if attached or _policy_principals(cursor, arn):
                raise Refused(f"managed policy `{arn}` is still attached or used as a boundary")
            cursor.execute("DELETE FROM managed_policies WHERE arn = %s", (arn,))
            _require(cursor, f"managed policy `{arn}`")
            cursor.execute("DELETE FROM policy_versions WHERE arn = %s", (arn,))
        return self._changed(touched)

    def put_repository(self, repository: Repository) -> Change:
        check_repository(repository)
        with self._write() as touched, self._reads() as cursor:
            _insert_repositories(cursor, [repository])
            touched.repositories.add(repository.arn)
        return self._changed(touched)

    def set_repository_policy(self, arn: str, document: Document | None) -> Change:
        with self._write() as touched, self._reads() as cursor:
            current = self.load_repository(arn)
            if current is None:
                raise NotFound(f"repository `{arn}` does not exist")
            repository = Repository(arn, current.tags, document)
            check_repository(repository)
            _insert_repositories(cursor, [repository])
            touched.repositories.add(arn)
        return self._changed(touched)

    def delete_repository(self, arn: str) -> Change:
        with self._write() as touched, self._reads() as cursor:
            cursor.execute("DELETE FROM repositories WHERE arn = %s", (arn,))
            _require(cursor, f"repository `{arn}`")
            touched.repositories.add(arn)
        return self._changed(touched)

    def set_organization(self, organization: Organization | None) -> Change:
        with self._write() as touched, self._reads() as cursor:
            self._validate(cursor, Fleet(organization=organization))
            _replace_organization(cursor, organization)
            touched.organization = True
        return self._changed(touched)

    def import_fleet(self, fleet: Fleet, *, replace: bool = False) -> Change:
        """Validate all of `fleet`, then land it in one transaction.

        Merge (default): entities in the fleet replace their stored versions. `replace`: the fleet
        is the whole truth for the accounts it names.
        """
        with self._write() as touched, self._reads() as cursor:
            known: set[str] = set() if replace else _policy_arns(cursor)
            stored_groups = set() if replace else _group_names(cursor, None)
            self._validate(cursor, fleet, known, stored_groups)
            accounts = fleet_accounts(fleet)
            if replace:
                for account in accounts:
                    _delete_account(cursor, account)
            _insert_accounts(cursor, accounts)
            _insert_policies(cursor, fleet.policies)
            _insert_groups(cursor, fleet.groups)
            _insert_users(cursor, fleet.users)
            _insert_roles(cursor, fleet.roles)
            _insert_repositories(cursor, fleet.repositories)
            if fleet.organization is not None:
                _replace_organization(cursor, fleet.organization)
            touched.everything = True
        return self._changed(touched)

    # -- write helpers ----------------------------------------------------------------------

    @staticmethod
    def _validate(
        cursor: Cursor,
        fleet: Fleet,
        known: set[str] | None = None,
        groups: set[tuple[str, str]] | None = None,
    ) -> None:
        known_policies = known if known is not None else _policy_arns(cursor)
        validate_write(fleet, known_policies, groups)


def _require(cursor: Cursor, what: str) -> None:
    if cursor.rowcount == 0:
        raise NotFound(f"{what} does not exist")


def _policy_arns(cursor: Cursor) -> set[str]:
    return {row[0] for row in cursor.execute("SELECT arn FROM managed_policies")}


def _group_names(cursor: Cursor, account: str | None) -> set[tuple[str, str]]:
    if account is None:
        rows = cursor.execute("SELECT account, name FROM iam_groups").fetchall()
    else:
        rows = cursor.execute(
            "SELECT account, name FROM iam_groups WHERE account = %s", (account,)
        ).fetchall()
    return {(row[0], row[1]) for row in rows}


def _member_keys(cursor: Cursor, account: str, group: str) -> set[str]:
    rows = cursor.execute(
        "SELECT user_name FROM group_members WHERE account = %s AND group_name = %s",
        (account, group),
    )
    return {owner_key("user", account, row[0]) for row in rows}


def _policy_principals(cursor: Cursor, arn: str) -> set[str]:
    """Users and roles whose permissions depend on managed policy `arn`."""
    keys: set[str] = set()
    owners = [
        row[0]
        for row in cursor.execute("SELECT owner FROM attachments WHERE policy_arn = %s", (arn,))
    ]
    groups: list[tuple[str, str]] = []
    for owner in owners:
        kind, account, name = owner.split("/", 2)
        if kind == "group":
            groups.append((account, name))
        else:
            keys.add(owner)
    if groups:
        wanted = set(groups)
        rows = cursor.execute(
            "SELECT account, group_name, user_name FROM group_members"
            " WHERE account = ANY(%s) AND group_name = ANY(%s)",
            (sorted({g[0] for g in groups}), sorted({g[1] for g in groups})),
        )
        keys |= {
            owner_key("user", account, user)
            for account, group, user in rows
            if (account, group) in wanted
        }
    for table, kind in (("users", "user"), ("roles", "role")):
        rows = cursor.execute(f"SELECT account, name FROM {table} WHERE boundary = %s", (arn,))
        keys |= {owner_key(kind, account, name) for account, name in rows}
    return keys


def _insert_accounts(cursor: Cursor, accounts: Iterable[str]) -> None:
    cursor.executemany(
        "INSERT INTO accounts (account) VALUES (%s) ON CONFLICT (account) DO NOTHING",
        [(account,) for account in dict.fromkeys(accounts)],
    )


def _upsert(table: str, columns: Sequence[str], key: Sequence[str]) -> str:
    """An INSERT that replaces the row with the same `key` (SQLite's INSERT OR REPLACE)."""
    updates = ", ".join(f"{column} = EXCLUDED.{column}" for column in columns if column not in key)
    return (
        f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join(['%s'] * len(columns))})"
        f" ON CONFLICT ({', '.join(key)}) DO UPDATE SET {updates}"
    )


def _insert_users(cursor: Cursor, users: Sequence[User]) -> None:
    if not users:
        return
    _insert_accounts(cursor, (user.account for user in users))
    cursor.executemany(
        _upsert(
            "users",
            ("account", "name", "path", "arn", "user_id", "tags", "boundary", "arn_partition"),
            ("account", "name"),
        ),
        [user_row(user) for user in users],
    )
    cursor.executemany(
        "DELETE FROM group_members WHERE account = %s AND user_name = %s",
        [(user.account, user.name) for user in users],
    )
    cursor.executemany(
        "INSERT INTO group_members (account, group_name, user_name, ordinal)"
        " VALUES (%s, %s, %s, %s)",
        [
            (user.account, group, user.name, ordinal)
            for user in users
            for ordinal, group in enumerate(dict.fromkeys(user.groups))
        ],
    )
    _replace_owned(cursor, [(user.key, user.inline, user.attached) for user in users])


def _insert_groups(cursor: Cursor, groups: Sequence[Group]) -> None:
    if not groups:
        return
    _insert_accounts(cursor, (group.account for group in groups))
    cursor.executemany(
        _upsert(
            "iam_groups",
            ("account", "name", "path", "arn", "group_id", "arn_partition"),
            ("account", "name"),
        ),
        [group_row(group) for group in groups],
    )
    _replace_owned(cursor, [(group.key, group.inline, group.attached) for group in groups])


def _insert_roles(cursor: Cursor, roles: Sequence[Role]) -> None:
    if not roles:
        return
    _insert_accounts(cursor, (role.account for role in roles))
    columns = (
        "account", "name", "folded", "path", "arn", "role_id", "trust_policy", "tags",
        "boundary", "max_session_duration", "arn_partition",
    )  # fmt: skip
    cursor.executemany(
        _upsert("roles", columns, ("account", "folded")),
        [role_row(role) for role in roles],
    )
    _replace_owned(cursor, [(role.key, role.inline, role.attached) for role in roles])


def _insert_policies(cursor: Cursor, policies: Sequence[ManagedPolicy]) -> None:
    if not policies:
        return
    _insert_accounts(cursor, (p.account for p in policies if p.account is not None))
    cursor.executemany(
        _upsert(
            "managed_policies",
            ("arn", "account", "name", "path", "policy_id", "default_version"),
            ("arn",),
        ),
        [policy_row(policy) for policy in policies],
    )
    cursor.execute("DELETE FROM policy_versions WHERE arn = ANY(%s)", ([p.arn for p in policies],))
    cursor.executemany(
        "INSERT INTO policy_versions (arn, version_id, document, ordinal) VALUES (%s, %s, %s, %s)",
        [
            (policy.arn, version, dump(document), ordinal)
            for policy in policies
            for ordinal, (version, document) in enumerate(policy.versions.items())
        ],
    )


def _insert_repositories(cursor: Cursor, repositories: Sequence[Repository]) -> None:
    if not repositories:
        return
    _insert_accounts(cursor, (repository.account for repository in repositories))
    cursor.executemany(
        _upsert("repositories", ("arn", "account", "region", "name", "tags", "policy"), ("arn",)),
        [repository_row(repository) for repository in repositories],
    )


def _replace_organization(cursor: Cursor, organization: Organization | None) -> None:
    cursor.execute("DELETE FROM organization")
    if organization is not None:
        cursor.execute(
            "INSERT INTO organization (singleton, tree) VALUES (1, %s)",
            (organization_to_json(organization),),
        )


def _replace_owned(cursor: Cursor, owners: Sequence[tuple[str, Any, tuple[str, ...]]]) -> None:
    """The inline policies and attachments of each owner: exactly those given, in that order."""
    _delete_owned(cursor, [key for key, _, _ in owners])
    cursor.executemany(
        "INSERT INTO inline_policies (owner, name, document, ordinal) VALUES (%s, %s, %s, %s)",
        [
            (key, name, dump(document), ordinal)
            for key, inline, _ in owners
            for ordinal, (name, document) in enumerate(inline.items())
        ],
    )
    cursor.executemany(
        "INSERT INTO attachments (owner, policy_arn, ordinal) VALUES (%s, %s, %s)",
        [
            (key, arn, ordinal)
            for key, _, attached in owners
            for ordinal, arn in enumerate(dict.fromkeys(attached))
        ],
    )


def _delete_owned(cursor: Cursor, keys: Sequence[str]) -> None:
    cursor.execute("DELETE FROM inline_policies WHERE owner = ANY(%s)", (list(keys),))
    cursor.execute("DELETE FROM attachments WHERE owner = ANY(%s)", (list(keys),))


def _delete_account(cursor: Cursor, account: str) -> None:
    owners = f"%/{account}/%"
    cursor.execute("DELETE FROM inline_policies WHERE owner LIKE %s", (owners,))
    cursor.execute("DELETE FROM attachments WHERE owner LIKE %s", (owners,))
    for table in (
        "users",
        "iam_groups",
        "group_members",
        "roles",
        "managed_policies",
        "repositories",
    ):
        cursor.execute(f"DELETE FROM {table} WHERE account = %s", (account,))
    cursor.execute(
        "DELETE FROM policy_versions WHERE arn LIKE %s", (f"arn:%:iam::{account}:policy/%",)
    )
