"""Reading the fleet from SQLite: whole, by entity, or everything one change touched.

Every read is batched: the users of a change, their groups, memberships, inline policies,
attachments and managed policies come in a few queries whatever their number, never one per entity.
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
from dockgate_server.store.sqlite.credentials import CredentialTables

__all__ = ["FleetReads"]

_CHUNK = 400
"""keys per `IN (…)` list: far below SQLite's limit on bound variables"""

Key = tuple[str, ...]


class FleetReads(CredentialTables, FleetLoading):
    """The read half of the fleet tables (on top of the credential tables a delta reads too)."""

    def accounts(self) -> tuple[str, ...]:
        return tuple(
            row[0] for row in self._db.execute("SELECT account FROM accounts ORDER BY account")
        )

    def load_organization(self) -> Organization | None:
        row = self._db.execute("SELECT tree FROM organization").fetchone()
        return None if row is None else organization_from_json(row[0])

    # -- batched entity reads: `keys` None reads every row ----------------------------------

    def _rows(
        self, select: str, columns: str, keys: Sequence[Key] | None, order: str
    ) -> list[tuple[Any, ...]]:
        if keys is None:
            return self._db.execute(f"{select} ORDER BY {order}").fetchall()
        rows: list[tuple[Any, ...]] = []
        for start in range(0, len(keys), _CHUNK):
            chunk = keys[start : start + _CHUNK]
            width = len(chunk[0])
            if width == 1:
                where = f"{columns} IN ({', '.join('?' * len(chunk))})"
            else:
                one = "(" + ", ".join("?" * width) + ")"
                where = f"({columns}) IN (VALUES {', '.join([one] * len(chunk))})"
            arguments = [value for key in chunk for value in key]
            rows += self._db.execute(f"{select} WHERE {where} ORDER BY {order}", arguments)
        return rows

    def _owned(self, owners: Sequence[str] | None) -> Owned:
        keys = None if owners is None else [(owner,) for owner in owners]
        return owned_from_rows(
            self._rows("SELECT owner, name, document FROM inline_policies", "owner", keys, "rowid"),
            self._rows("SELECT owner, policy_arn FROM attachments", "owner", keys, "rowid"),
        )

    def _users(self, keys: Sequence[Key] | None, owned: Owned | None = None) -> list[User]:
        rows = self._rows(
            "SELECT account, name, path, user_id, tags, boundary, partition FROM users",
            "account, name",
            keys,
            "account, name",
        )
        found = [(row[0], row[1]) for row in rows]
        memberships = self._rows(
            "SELECT account, user_name, group_name FROM group_members",
            "account, user_name",
            None if keys is None else found,
            "rowid",
        )
        owned = owned or self._owned([owner_key("user", *pair) for pair in found])
        return users_from_rows(rows, memberships, owned)

    def _groups(self, keys: Sequence[Key] | None, owned: Owned | None = None) -> list[Group]:
        rows = self._rows(
            "SELECT account, name, path, group_id, partition FROM groups",
            "account, name",
            keys,
            "account, name",
        )
        owned = owned or self._owned([owner_key("group", r[0], r[1]) for r in rows])
        return groups_from_rows(rows, owned)

    def _roles(self, keys: Sequence[Key] | None, owned: Owned | None = None) -> list[Role]:
        """`keys`: (account, name) pairs; role names match ignoring case, as IAM's do."""
        folded = None if keys is None else [(account, name.lower()) for account, name in keys]
        rows = self._rows(
            "SELECT account, folded, name, path, role_id, trust_policy, tags, boundary,"
            " max_session_duration, partition FROM roles",
            "account, folded",
            folded,
            "account, folded",
        )
        owned = owned or self._owned([owner_key("role", r[0], r[2]) for r in rows])
        return roles_from_rows(rows, owned)

    def _policies(self, arns: Sequence[str] | None) -> list[ManagedPolicy]:
        rows = self._rows(
            "SELECT arn, name, path, default_version, policy_id FROM managed_policies",
            "arn",
            None if arns is None else [(arn,) for arn in arns],
            "arn",
        )
        versions = self._rows(
            "SELECT arn, version_id, document FROM policy_versions",
            "arn",
            None if arns is None else [(row[0],) for row in rows],
            "rowid",
        )
        return policies_from_rows(rows, versions)

    def _repositories(self, arns: Sequence[str] | None) -> list[Repository]:
        rows = self._rows(
            "SELECT arn, tags, policy FROM repositories",
            "arn",
            None if arns is None else [(arn,) for arn in arns],
            "arn",
        )
        return repositories_from_rows(rows)
