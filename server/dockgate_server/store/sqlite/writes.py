"""Writing the fleet to SQLite: each write validates, then lands in one transaction."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from dockgate_server.store.errors import NotFound, Refused
from dockgate_server.store.model import (
    Change,
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
from dockgate_server.store.sqlite.base import dump
from dockgate_server.store.sqlite.reads import FleetReads
from dockgate_server.store.validate import check_repository, validate_fleet

__all__ = ["FleetWrites"]


class FleetWrites(FleetReads):
    """The write half of the fleet tables."""

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
            raise Refused(f"group `{name}` of account {account} still has members")
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
            raise Refused(f"managed policy `{arn}` is still attached or used as a boundary")
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
            raise NotFound(f"repository `{arn}` does not exist")
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
                dump(user.tags),
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
                None if role.trust_policy is None else dump(role.trust_policy),
                dump(role.tags),
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
                (policy.arn, version, dump(document))
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
                dump(repository.tags),
                None if repository.policy is None else dump(repository.policy),
            ),
        )

    def _replace_owned(
        self, key: str, inline: Mapping[str, Document], attached: tuple[str, ...]
    ) -> None:
        self._delete_owned(key)
        self._db.executemany(
            "INSERT INTO inline_policies (owner, name, document) VALUES (?, ?, ?)",
            [(key, name, dump(document)) for name, document in inline.items()],
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
