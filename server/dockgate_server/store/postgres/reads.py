"""Reading the fleet from PostgreSQL: whole, by entity, or everything one change touched.

Every read is batched: the users of a change, their groups, memberships, inline policies,
attachments and managed policies come in a fixed number of queries (`= ANY(array)`), whatever
their number, never one per entity. Rows are sorted here rather than by the database's
collation, so both backends list a fleet in the same order.
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
from dockgate_server.store.postgres.credentials import CredentialTables

__all__ = ["FleetReads", "node_from_json"]

Pair = tuple[str, str]
Owned = tuple[dict[str, dict[str, Document]], dict[str, list[str]]]
"""inline policies and attached policy ARNs, by owner key"""


class FleetReads(CredentialTables):
    """The read half of the fleet tables (on top of the credential tables a delta reads too)."""

    def accounts(self) -> tuple[str, ...]:
        with self._reads() as cursor:
            return tuple(sorted(row[0] for row in cursor.execute("SELECT account FROM accounts")))

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
            user_keys: list[Pair] = []
            role_keys: list[Pair] = []
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
            sessions = {s.arn: s for s in self._sessions_of(sorted(change.sessions))}
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
                {policy.arn: policy for policy in self._policies(sorted(arns))},
                {arn: repositories.get(arn) for arn in change.repositories},
                self.load_organization() if change.organization else None,
                {arn: sessions.get(arn) for arn in change.sessions},
                tuple(self.signing_keys()) if change.credentials else None,
                self.revoked_tokens() if change.credentials else None,
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
        found = self._policies([arn])
        return found[0] if found else None

    def load_repository(self, arn: str) -> Repository | None:
        found = self._repositories([arn])
        return found[0] if found else None

    def load_organization(self) -> Organization | None:
        with self._reads() as cursor:
            row = cursor.execute("SELECT tree FROM organization").fetchone()
        if row is None:
            return None
        tree = json.loads(row[0])
        return Organization(tree["orgId"], node_from_json(tree))

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
        inline: dict[str, dict[str, Document]] = defaultdict(dict)
        attached: dict[str, list[str]] = defaultdict(list)
        rows = self._select(
            "SELECT owner, name, document, ordinal FROM inline_policies", ("owner",), keys
        )
        for owner, name, document, _ in sorted(rows, key=lambda row: (row[0], row[3])):
            inline[owner][name] = json.loads(document)
        rows = self._select("SELECT owner, policy_arn, ordinal FROM attachments", ("owner",), keys)
        for owner, arn, _ in sorted(rows, key=lambda row: (row[0], row[2])):
            attached[owner].append(arn)
        return inline, attached

    def _users(self, keys: Sequence[Pair] | None, owned: Owned | None = None) -> list[User]:
        rows = self._select(
            "SELECT account, name, path, user_id, tags, boundary, arn_partition FROM users",
            ("account", "name"),
            keys,
        )
        found = [(row[0], row[1]) for row in rows]
        members: dict[Pair, list[str]] = defaultdict(list)
        memberships = self._select(
            "SELECT account, user_name, group_name, ordinal FROM group_members",
            ("account", "user_name"),
            None if keys is None else found,
        )
        for account, user, group, _ in sorted(memberships, key=lambda r: (r[0], r[1], r[3])):
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

    def _groups(self, keys: Sequence[Pair] | None, owned: Owned | None = None) -> list[Group]:
        rows = self._select(
            "SELECT account, name, path, group_id, arn_partition FROM iam_groups",
            ("account", "name"),
            keys,
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

    def _roles(self, keys: Sequence[Pair] | None, owned: Owned | None = None) -> list[Role]:
        """`keys`: (account, name) pairs; role names match ignoring case, as IAM's do."""
        folded = None if keys is None else [(account, name.lower()) for account, name in keys]
        rows = self._select(
            "SELECT account, folded, name, path, role_id, trust_policy, tags, boundary,"
            " max_session_duration, arn_partition FROM roles",
            ("account", "folded"),
            folded,
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

    def _policies(self, arns: Sequence[str] | None) -> list[ManagedPolicy]:
        keys = None if arns is None else [(arn,) for arn in arns]
        rows = self._select(
            "SELECT arn, name, path, default_version, policy_id FROM managed_policies",
            ("arn",),
            keys,
        )
        versions: dict[str, dict[str, Document]] = defaultdict(dict)
        found = self._select(
            "SELECT arn, version_id, document, ordinal FROM policy_versions",
            ("arn",),
            None if keys is None else [(row[0],) for row in rows],
        )
        for arn, version, document, _ in sorted(found, key=lambda row: (row[0], row[3])):
            versions[arn][version] = json.loads(document)
        return [
            ManagedPolicy(arn, name, path, default_version, dict(versions[arn]), policy_id)
            for arn, name, path, default_version, policy_id in sorted(rows)
        ]

    def _repositories(self, arns: Sequence[str] | None) -> list[Repository]:
        rows = self._select(
            "SELECT arn, tags, policy FROM repositories",
            ("arn",),
            None if arns is None else [(arn,) for arn in arns],
        )
        return [
            Repository(arn, json.loads(tags), None if policy is None else json.loads(policy))
            for arn, tags, policy in sorted(rows, key=lambda row: str(row[0]))
        ]


def node_from_json(raw: dict[str, Any]) -> OrgNode:
    return OrgNode(
        raw["id"],
        tuple(raw.get("serviceControlPolicies", ())),
        tuple(raw.get("resourceControlPolicies", ())),
        tuple(raw.get("accounts", ())),
        tuple(node_from_json(child) for child in raw.get("children", ())),
    )
