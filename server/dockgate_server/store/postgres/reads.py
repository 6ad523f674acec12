"""Reading the fleet from PostgreSQL: whole, by entity, or everything one change touched.

Every read is batched: the users of a change, their groups, memberships, inline policies,
attachments and managed policies come in a fixed number of queries (`= ANY(array)`), whatever
their number, never one per entity. Rows are sorted here rather than by the database's
collation, so both backends list a fleet in the same order.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from dockgate_server.store.loading import FleetLoading
from dockgate_server.store.model import (
    Group,
    ManagedPolicy,
    Organization,
    Repository,
    Role,
    User,
    owner_key,
)
from dockgate_server.store.postgres.credentials import CredentialTables
from dockgate_server.store.rows import (
    Owned,
    groups_from_rows,
    organization_from_json,
    owned_from_rows,
    policies_from_rows,
    repositories_from_rows,
    roles_from_rows,
    users_from_rows,
)

__all__ = ["FleetReads"]

Pair = tuple[str, str]


class FleetReads(CredentialTables, FleetLoading):
    """The read half of the fleet tables (on top of the credential tables a delta reads too)."""

    def accounts(self) -> tuple[str, ...]:
        with self._reads() as cursor:
            return tuple(sorted(row[0] for row in cursor.execute("SELECT account FROM accounts")))

    def load_organization(self) -> Organization | None:
        with self._reads() as cursor:
            row = cursor.execute("SELECT tree FROM organization").fetchone()
        return None if row is None else organization_from_json(row[0])

    # -- batched entity reads: `keys` None reads every row ----------------------------------

    def _select(
        self, select: str, columns: tuple[str, ...], keys: Sequence[tuple[str, ...]] | None
    ) -> list[tuple[Any, ...]]:
        """Rows of `select` whose `columns` equal one of `keys` (all rows for None).

        Each column is matched against the array of its values and the rows are then kept
        only for the exact tuples asked: one query, and an index lookup on the primary key.
        """
        if keys is not None and not keys:
            return []
        with self._reads() as cursor:
            if keys is None:
                return cursor.execute(select).fetchall()
            where = " AND ".join(f"{column} = ANY(%s)" for column in columns)
            arrays = [sorted({key[i] for key in keys}) for i in range(len(columns))]
            rows = cursor.execute(f"{select} WHERE {where}", arrays).fetchall()
        if len(columns) == 1:
            return rows
        wanted = set(keys)
        return [row for row in rows if tuple(row[: len(columns)]) in wanted]

    def _owned(self, owners: Sequence[str] | None) -> Owned:
        keys = None if owners is None else [(owner,) for owner in owners]
        inline = self._select(
            "SELECT owner, name, document, ordinal FROM inline_policies", ("owner",), keys
        )
        attached = self._select(
            "SELECT owner, policy_arn, ordinal FROM attachments", ("owner",), keys
        )
        return owned_from_rows(
            sorted(inline, key=lambda row: (row[0], row[3])),
            sorted(attached, key=lambda row: (row[0], row[2])),
        )

    def _users(self, keys: Sequence[Pair] | None, owned: Owned | None = None) -> list[User]:
        rows = self._select(
            "SELECT account, name, path, user_id, tags, boundary, arn_partition FROM users",
            ("account", "name"),
            keys,
        )
        found = [(row[0], row[1]) for row in rows]
        memberships = self._select(
            "SELECT account, user_name, group_name, ordinal FROM group_members",
            ("account", "user_name"),
            None if keys is None else found,
        )
        owned = owned or self._owned([owner_key("user", *pair) for pair in found])
        return users_from_rows(rows, sorted(memberships, key=lambda r: (r[0], r[1], r[3])), owned)

    def _groups(self, keys: Sequence[Pair] | None, owned: Owned | None = None) -> list[Group]:
        rows = self._select(
            "SELECT account, name, path, group_id, arn_partition FROM iam_groups",
            ("account", "name"),
            keys,
        )
        owned = owned or self._owned([owner_key("group", r[0], r[1]) for r in rows])
        return groups_from_rows(rows, owned)

    def _roles(self, keys: Sequence[Pair] | None, owned: Owned | None = None) -> list[Role]:
        """`keys`: (account, name) pairs; role names match ignoring case, as IAM's do."""
        folded = None if keys is None else [(account, name.lower()) for account, name in keys]
        rows = self._select(
            "SELECT account, folded, name, path, role_id, trust_policy, tags, boundary,"
            " max_session_duration, arn_partition FROM roles",
            ("account", "folded"),
            folded,
        )
        owned = owned or self._owned([owner_key("role", r[0], r[2]) for r in rows])
        return roles_from_rows(rows, owned)

    def _policies(self, arns: Sequence[str] | None) -> list[ManagedPolicy]:
        keys = None if arns is None else [(arn,) for arn in arns]
        rows = self._select(
            "SELECT arn, name, path, default_version, policy_id FROM managed_policies",
            ("arn",),
            keys,
        )
        versions = self._select(
            "SELECT arn, version_id, document, ordinal FROM policy_versions",
            ("arn",),
            None if keys is None else [(row[0],) for row in rows],
        )
        return policies_from_rows(rows, sorted(versions, key=lambda row: (row[0], row[3])))

    def _repositories(self, arns: Sequence[str] | None) -> list[Repository]:
        rows = self._select(
            "SELECT arn, tags, policy FROM repositories",
            ("arn",),
            None if arns is None else [(arn,) for arn in arns],
        )
        return repositories_from_rows(rows)
