"""Writing the fleet to SQLite: each write validates, then lands in one transaction."""

from __future__ import annotations

from collections.abc import Mapping

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
from dockgate_server.store.sqlite.reads import FleetReads
from dockgate_server.store.validate import check_repository, validate_write

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
            self._replace_organization(organization)
            touched.organization = True
        return self._changed(touched)

    def import_fleet(self, fleet: Fleet, *, replace: bool = False) -> Change:
        """Validate all of `fleet`, then land it in one transaction.

        Merge (default): entities in the fleet replace their stored versions. `replace`: the fleet
        is the whole truth for the accounts it names.
        """
        known = set() if replace else {p.arn for p in self._policies(None)}
        stored_groups = set() if replace else {(g.account, g.name) for g in self._groups(None)}
        self._validate(fleet, known, stored_groups)
        with self._write() as touched:
            if replace:
                for account in fleet_accounts(fleet):
                    self._delete_account(account)
            for account in fleet_accounts(fleet):
                self._account(account)
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
                self._replace_organization(fleet.organization)
            touched.everything = True
        return self._changed(touched)

    # -- write helpers ----------------------------------------------------------------------

    def _validate(
        self,
        fleet: Fleet,
        known: set[str] | None = None,
        groups: set[tuple[str, str]] | None = None,
    ) -> None:
        known_policies = known if known is not None else {p.arn for p in self._policies(None)}
        validate_write(fleet, known_policies, groups)

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
            user_row(user),
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
            group_row(group),
        )
        self._replace_owned(group.key, group.inline, group.attached)

    def _insert_role(self, role: Role) -> None:
        self._account(role.account)
        self._db.execute(
            "INSERT OR REPLACE INTO roles (account, name, folded, path, arn, role_id, trust_policy, tags,"
            " boundary, max_session_duration, partition) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            role_row(role),
        )
        self._replace_owned(role.key, role.inline, role.attached)

    def _insert_policy(self, policy: ManagedPolicy) -> None:
        if policy.account is not None:
            self._account(policy.account)
        self._db.execute(
            "INSERT OR REPLACE INTO managed_policies (arn, account, name, path, policy_id, default_version)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            policy_row(policy),
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
            repository_row(repository),
        )

    def _replace_organization(self, organization: Organization | None) -> None:
        self._db.execute("DELETE FROM organization")
        if organization is not None:
            self._db.execute(
                "INSERT INTO organization (singleton, tree) VALUES (1, ?)",
                (organization_to_json(organization),),
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
