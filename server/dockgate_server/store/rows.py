"""Rows to entities and entities to rows, the same for every backend (each keeps its own SQL).

A backend reads rows in its own way, in its own parameter style; what a row holds, and how it
becomes a `User`, a `Session` or a `Change` (or is made from one), is decided here once, so both
backends list a fleet in the same order and store it in the same shape.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

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
    Session,
    SigningKey,
    User,
    owner_key,
)

__all__ = [
    "SESSION_COLUMNS",
    "Owned",
    "Row",
    "change_from_row",
    "dump",
    "fleet_accounts",
    "group_row",
    "groups_from_rows",
    "node_from_json",
    "node_to_json",
    "organization_from_json",
    "organization_to_json",
    "owned_from_rows",
    "policies_from_rows",
    "policy_row",
    "repositories_from_rows",
    "repository_row",
    "role_row",
    "roles_from_rows",
    "session_from_row",
    "session_row",
    "signing_keys_from_rows",
    "user_row",
    "users_from_rows",
]

Row = Sequence[Any]
Owned = tuple[dict[str, dict[str, Document]], dict[str, list[str]]]
"""inline policies and attached policy ARNs, by owner key"""

SESSION_COLUMNS = (
    "arn, session_id, base, caller, issued_at, expires_at, policy, tags, source_identity,"
    " ended, ended_at"
)
"""the columns of a session row, in the order `session_row` and `session_from_row` use"""


# -- rows to entities: every list comes out sorted by its key ---------------------------------


def owned_from_rows(inline: Iterable[Row], attached: Iterable[Row]) -> Owned:
    """`inline`: (owner, name, document) rows, `attached`: (owner, policy ARN) rows, in order."""
    documents: dict[str, dict[str, Document]] = defaultdict(dict)
    arns: dict[str, list[str]] = defaultdict(list)
    for owner, name, document, *_ in inline:
        documents[owner][name] = json.loads(document)
    for owner, arn, *_ in attached:
        arns[owner].append(arn)
    return documents, arns


def users_from_rows(rows: Iterable[Row], memberships: Iterable[Row], owned: Owned) -> list[User]:
    """`rows`: (account, name, path, user_id, tags, boundary, partition); `memberships`:
    (account, user name, group name) in order."""
    members: dict[tuple[str, str], list[str]] = defaultdict(list)
    for account, user, group, *_ in memberships:
        members[(account, user)].append(group)
    inline, attached = owned
    users = []
    for account, name, path, user_id, tags, boundary, partition in sorted(map(tuple, rows)):
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


def groups_from_rows(rows: Iterable[Row], owned: Owned) -> list[Group]:
    """`rows`: (account, name, path, group_id, partition)."""
    inline, attached = owned
    groups = []
    for account, name, path, group_id, partition in sorted(map(tuple, rows)):
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


def roles_from_rows(rows: Iterable[Row], owned: Owned) -> list[Role]:
    """`rows`: (account, folded, name, path, role_id, trust_policy, tags, boundary,
    max_session_duration, partition)."""
    inline, attached = owned
    roles = []
    for account, _, name, path, role_id, trust, tags, boundary, duration, partition in sorted(
        map(tuple, rows)
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


def policies_from_rows(rows: Iterable[Row], versions: Iterable[Row]) -> list[ManagedPolicy]:
    """`rows`: (arn, name, path, default_version, policy_id); `versions`: (arn, version_id,
    document) in order."""
    documents: dict[str, dict[str, Document]] = defaultdict(dict)
    for arn, version, document, *_ in versions:
        documents[arn][version] = json.loads(document)
    return [
        ManagedPolicy(arn, name, path, default_version, dict(documents[arn]), policy_id)
        for arn, name, path, default_version, policy_id in sorted(map(tuple, rows))
    ]


def repositories_from_rows(rows: Iterable[Row]) -> list[Repository]:
    """`rows`: (arn, tags, policy)."""
    return [
        Repository(arn, json.loads(tags), None if policy is None else json.loads(policy))
        for arn, tags, policy in sorted(rows, key=lambda row: str(row[0]))
    ]


def session_from_row(row: Row) -> Session:
    """`row`: the `SESSION_COLUMNS`."""
    arn, session_id, base, caller, issued_at, expires_at, policy, tags, source, ended, ended_at = (
        row
    )
    return Session(
        arn,
        session_id,
        base,
        caller,
        issued_at,
        expires_at,
        None if policy is None else json.loads(policy),
        json.loads(tags),
        source,
        ended,
        ended_at,
    )


def signing_keys_from_rows(rows: Iterable[Row]) -> list[SigningKey]:
    """`rows`: (key_id, secret, created_at, retired_at); the current key (not retired) last."""
    keys = [
        SigningKey(key_id, bytes(secret), created, retired)
        for key_id, secret, created, retired in rows
    ]
    return sorted(keys, key=lambda k: (k.retired_at is None, k.created_at, k.key_id))


def change_from_row(row: Row) -> Change:
    """`row`: (revision, principals, repositories, organization, everything, sessions,
    credentials) of the change log."""
    number, principals, repositories, organization, everything, sessions, credentials = row
    return Change(
        int(number),
        frozenset(json.loads(principals)),
        frozenset(json.loads(repositories)),
        bool(organization),
        bool(everything),
        frozenset(json.loads(sessions)),
        bool(credentials),
    )


def organization_from_json(text: str) -> Organization:
    tree = json.loads(text)
    return Organization(tree["orgId"], node_from_json(tree))


def node_from_json(raw: dict[str, Any]) -> OrgNode:
    return OrgNode(
        raw["id"],
        tuple(raw.get("serviceControlPolicies", ())),
        tuple(raw.get("resourceControlPolicies", ())),
        tuple(raw.get("accounts", ())),
        tuple(node_from_json(child) for child in raw.get("children", ())),
    )


# -- entities to rows: the values of an INSERT, in its column order ---------------------------


def user_row(user: User) -> tuple[Any, ...]:
    """(account, name, path, arn, user_id, tags, boundary, partition)"""
    return (
        user.account,
        user.name,
        user.path,
        user.arn,
        user.user_id,
        dump(user.tags),
        user.boundary,
        user.partition,
    )


def group_row(group: Group) -> tuple[Any, ...]:
    """(account, name, path, arn, group_id, partition)"""
    return (group.account, group.name, group.path, group.arn, group.group_id, group.partition)


def role_row(role: Role) -> tuple[Any, ...]:
    """(account, name, folded, path, arn, role_id, trust_policy, tags, boundary,
    max_session_duration, partition)"""
    return (
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
    )


def policy_row(policy: ManagedPolicy) -> tuple[Any, ...]:
    """(arn, account, name, path, policy_id, default_version)"""
    return (
        policy.arn,
        policy.account,
        policy.name,
        policy.path,
        policy.policy_id,
        policy.default_version,
    )


def repository_row(repository: Repository) -> tuple[Any, ...]:
    """(arn, account, region, name, tags, policy)"""
    return (
        repository.arn,
        repository.account,
        repository.region,
        repository.name,
        dump(repository.tags),
        None if repository.policy is None else dump(repository.policy),
    )


def session_row(session: Session) -> tuple[Any, ...]:
    """The `SESSION_COLUMNS` of `session`."""
    return (
        session.arn,
        session.session_id,
        session.base,
        session.caller,
        session.issued_at,
        session.expires_at,
        None if session.policy is None else dump(session.policy),
        dump(dict(session.tags)),
        session.source_identity,
        session.ended,
        session.ended_at,
    )


def organization_to_json(organization: Organization) -> str:
    return json.dumps(node_to_json(organization.root) | {"orgId": organization.id})


def node_to_json(node: OrgNode) -> dict[str, Any]:
    """The JSON shape of an organization node (the store's and the bundle's)."""
    return {
        "id": node.id,
        "serviceControlPolicies": list(node.service_control),
        "resourceControlPolicies": list(node.resource_control),
        "accounts": list(node.accounts),
        "children": [node_to_json(child) for child in node.children],
    }


def fleet_accounts(fleet: Fleet) -> list[str]:
    """Every account `fleet` names or holds an entity of, in first-seen order."""
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


def dump(value: object) -> str:
    """Compact JSON, as every backend stores documents and tags."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
