"""Loading the whole fleet, one entity or a change's delta from any backend's batched reads.

A backend supplies the batched entity reads (`_users`, `_roles`, … each a few queries whatever
the number of keys, `None` for every row); what a fleet, an entity lookup or a delta is made of
is decided here once. List this class after the backend's own bases, so their methods win.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager

from dockgate_server.store.model import (
    Change,
    Delta,
    Fleet,
    Group,
    ManagedPolicy,
    Organization,
    Repository,
    Role,
    Session,
    SigningKey,
    User,
)
from dockgate_server.store.rows import Owned

__all__ = ["FleetLoading"]

Pair = tuple[str, str]


class FleetLoading:
    """The loads of the store port, on top of a backend's batched reads."""

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

    # -- what the backend supplies ----------------------------------------------------------

    def reading(self) -> AbstractContextManager[int]:
        raise NotImplementedError

    def accounts(self) -> tuple[str, ...]:
        raise NotImplementedError

    def load_organization(self) -> Organization | None:
        raise NotImplementedError

    def signing_keys(self) -> list[SigningKey]:
        raise NotImplementedError

    def revoked_tokens(self) -> frozenset[str]:
        raise NotImplementedError

    def _owned(self, owners: Sequence[str] | None) -> Owned:
        raise NotImplementedError

    def _users(self, keys: Sequence[Pair] | None, owned: Owned | None = None) -> list[User]:
        raise NotImplementedError

    def _groups(self, keys: Sequence[Pair] | None, owned: Owned | None = None) -> list[Group]:
        raise NotImplementedError

    def _roles(self, keys: Sequence[Pair] | None, owned: Owned | None = None) -> list[Role]:
        """`keys`: (account, name) pairs; role names match ignoring case, as IAM's do."""
        raise NotImplementedError

    def _policies(self, arns: Sequence[str] | None) -> list[ManagedPolicy]:
        raise NotImplementedError

    def _repositories(self, arns: Sequence[str] | None) -> list[Repository]:
        raise NotImplementedError

    def _sessions_of(self, arns: Sequence[str]) -> list[Session]:
        raise NotImplementedError
