"""Reading the fleet from SQLite: whole, by entity, or everything one change touched.

Every read is batched: the users of a change, their groups, memberships, inline policies,
attachments and managed policies come in a few queries whatever their number, never one per entity.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from dockgate_server.store.model import (
    Change,
    Delta,
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
from dockgate_server.store.sqlite.credentials import CredentialTables

__all__ = ["FleetReads", "node_from_json"]

_CHUNK = 400
"""keys per `IN (…)` list: far below SQLite's limit on bound variables"""

Key = tuple[str, ...]
Owned = tuple[dict[str, dict[str, Document]], dict[str, list[str]]]
"""inline policies and attached policy ARNs, by owner key"""


class FleetReads(CredentialTables):
    """The read half of the fleet tables (on top of the credential tables a delta reads too)."""

    def accounts(self) -> tuple[str, ...]:
        return tuple(
            row[0] for row in self._db.execute("SELECT account FROM accounts ORDER BY account")
        )

    def load_fleet(self) -> Fleet:
        with self.reading():
            owned = self._owned(None)
            return Fleet(
                self.accounts(),
                tuple(self._users(None, owned)),
                tuple(self._groups(None, owned)),
                tuple(self._roles(None, owned)),
                tuple(self._policies(None)),
                tuple(self._repositories(None)),
                self.load_organization(),
            )

    def load_delta(self, change: Change) -> Delta:
        if change.everything:
            raise ValueError("a change that touched everything has no delta: load the fleet")
        with self.reading() as revision:
            user_keys: list[Key] = []
            role_keys: list[Key] = []
            for key in sorted(change.principals):
                kind, account, name = key.split("/", 2)
                (user_keys if kind == "user" else role_keys).append((account, name))
            users = self._users(user_keys)
            roles = self._roles(role_keys)
            groups = self._groups(sorted({(u.account, g) for u in users for g in u.groups}))
            owners: list[User | Group | Role] = [*users, *groups, *roles]
            arns = {arn for owner in owners for arn in owner.attached}
            bounded: list[User | Role] = [*users, *roles]
            arns |= {p.boundary for p in bounded if p.boundary is not None}
            repositories = {r.arn: r for r in self._repositories(sorted(change.repositories))}
            found_users = {user.key: user for user in users}
            found_roles = {role.key: role for role in roles}
            sessions = {s.arn: s for s in self._load_sessions_of(sorted(change.sessions))}
            return Delta(
                change,
                revision,
                self.accounts(),
                {key: found_users.get(key) for key in change.principals if key.startswith("user/")},
                {
                    key: found_roles.get(key)
                    for key in change.principals
                    if not key.startswith("user/")
                },
                {(group.account, group.name): group for group in groups},
                {policy.arn: policy for policy in self._policies([(a,) for a in sorted(arns)])},
                {arn: repositories.get(arn) for arn in change.repositories},
                self.load_organization() if change.organization else None,
                {arn: sessions.get(arn) for arn in change.sessions},
                tuple(self._signing_keys()) if change.credentials else None,
                self._revoked_tokens() if change.credentials else None,
            )

    def load_user(self, account: str, name: str) -> User | None:
        found = self._users([(account, name)])
        return found[0] if found else None

    def load_role(self, account: str, name: str) -> Role | None:
        found = self._roles([(account, name)])
        return found[0] if found else None

    def load_group(self, account: str, name: str) -> Group | None:
        found = self._groups([(account, name)])
        return found[0] if found else None

    def load_policy(self, arn: str) -> ManagedPolicy | None:
        found = self._policies([(arn,)])
        return found[0] if found else None

    def load_repository(self, arn: str) -> Repository | None:
        found = self._repositories([arn])
        return found[0] if found else None

    def load_organization(self) -> Organization | None:
        row = self._db.execute("SELECT tree FROM organization").fetchone()
        if row is None:
            return None
        tree = json.loads(row[0])
        return Organization(tree["orgId"], node_from_json(tree))

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
        inline: dict[str, dict[str, Document]] = defaultdict(dict)
        attached: dict[str, list[str]] = defaultdict(list)
        for owner, name, document in self._rows(
            "SELECT owner, name, document FROM inline_policies", "owner", keys, "rowid"
        ):
            inline[owner][name] = json.loads(document)
        for owner, arn in self._rows(
            "SELECT owner, policy_arn FROM attachments", "owner", keys, "rowid"
        ):
            attached[owner].append(arn)
        return inline, attached

    def _users(self, keys: Sequence[Key] | None, owned: Owned | None = None) -> list[User]:
        rows = self._rows(
            "SELECT account, name, path, user_id, tags, boundary, partition FROM users",
            "account, name",
            keys,
            "account, name",
        )
        found = [(row[0], row[1]) for row in rows]
        members: dict[tuple[str, str], list[str]] = defaultdict(list)
        for account, user, group in self._rows(
            "SELECT account, user_name, group_name FROM group_members",
            "account, user_name",
            None if keys is None else found,
            "rowid",
        ):
            members[(account, user)].append(group)
        inline, attached = owned or self._owned([owner_key("user", *pair) for pair in found])
        users = []
        for account, name, path, user_id, tags, boundary, partition in sorted(rows):
            key = owner_key("user", account, name)
            users.append(
                User(
                    account,
                    name,
                    path,
                    user_id,
                    json.loads(tags),
                    boundary,
                    tuple(members.get((account, name), ())),
                    dict(inline.get(key, {})),
                    tuple(attached.get(key, ())),
                    partition,
                )
            )
        return users

    def _groups(self, keys: Sequence[Key] | None, owned: Owned | None = None) -> list[Group]:
        rows = self._rows(
            "SELECT account, name, path, group_id, partition FROM groups",
            "account, name",
            keys,
            "account, name",
        )
        inline, attached = owned or self._owned([owner_key("group", r[0], r[1]) for r in rows])
        groups = []
        for account, name, path, group_id, partition in sorted(rows):
            key = owner_key("group", account, name)
            groups.append(
                Group(
                    account,
                    name,
                    path,
                    group_id,
                    dict(inline.get(key, {})),
                    tuple(attached.get(key, ())),
                    partition,
                )
            )
        return groups

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
        inline, attached = owned or self._owned([owner_key("role", r[0], r[2]) for r in rows])
        roles = []
        for account, _, name, path, role_id, trust, tags, boundary, duration, partition in sorted(
            rows
        ):
            key = owner_key("role", account, name)
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
                    dict(inline.get(key, {})),
                    tuple(attached.get(key, ())),
                    partition,
                )
            )
        return roles

    def _policies(self, keys: Sequence[Key] | None) -> list[ManagedPolicy]:
        rows = self._rows(
            "SELECT arn, name, path, default_version, policy_id FROM managed_policies",
            "arn",
            keys,
            "arn",
        )
        versions: dict[str, dict[str, Document]] = defaultdict(dict)
        for arn, version, document in self._rows(
            "SELECT arn, version_id, document FROM policy_versions",
            "arn",
            None if keys is None else [(row[0],) for row in rows],
            "rowid",
        ):
            versions[arn][version] = json.loads(document)
        return [
            ManagedPolicy(arn, name, path, default_version, dict(versions[arn]), policy_id)
            for arn, name, path, default_version, policy_id in sorted(rows)
        ]

    def _all_policies(self) -> list[ManagedPolicy]:
        return self._policies(None)

    def _all_groups(self) -> list[Group]:
        return self._groups(None)

    def _repositories(self, arns: Sequence[str] | None) -> list[Repository]:
        rows = self._rows(
            "SELECT arn, tags, policy FROM repositories",
            "arn",
            None if arns is None else [(arn,) for arn in arns],
            "arn",
        )
        return [
            Repository(arn, json.loads(tags), None if policy is None else json.loads(policy))
            for arn, tags, policy in sorted(rows)
        ]


def node_from_json(raw: dict[str, Any]) -> OrgNode:
    return OrgNode(
        raw["id"],
        tuple(raw.get("serviceControlPolicies", ())),
        tuple(raw.get("resourceControlPolicies", ())),
        tuple(raw.get("accounts", ())),
        tuple(node_from_json(child) for child in raw.get("children", ())),
    )
