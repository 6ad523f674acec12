"""The fleet as the store holds it: accounts, identities, policies, repositories, organization."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "CHANGES_KEPT",
    "ENDED_SESSION_MEMORY",
    "Change",
    "Credentials",
    "Delta",
    "Document",
    "Fleet",
    "Group",
    "ManagedPolicy",
    "OrgNode",
    "Organization",
    "Repository",
    "Role",
    "Session",
    "SigningKey",
    "TokenKey",
    "User",
    "owner_key",
]

Document = Mapping[str, Any]
"""A policy document as parsed JSON (validated before it is stored)."""

CHANGES_KEPT = 10_000
"""Revisions whose change records a backend keeps; a reader further behind rebuilds from scratch."""

ENDED_SESSION_MEMORY = 7 * 24 * 3600
"""seconds an ended session's ARN stays refused; after that it reads as a session issued
elsewhere (the role with no session policy)"""


def owner_key(kind: str, account: str, name: str) -> str:
    """How attachments and inline policies name their owner: stable across path changes.

    Role names are unique ignoring case in IAM, so a role's key folds its name.
    """
    return f"{kind}/{account}/{name.lower() if kind == 'role' else name}"


@dataclass(frozen=True, slots=True)
class ManagedPolicy:
    arn: str
    name: str
    path: str
    default_version: str
    versions: Mapping[str, Document]
    policy_id: str | None = None

    @property
    def account(self) -> str | None:
        """The owning account; None for an AWS managed policy (`arn:aws:iam::aws:policy/…`)."""
        account = self.arn.split(":")[4]
        return None if account == "aws" else account

    @property
    def document(self) -> Document:
        return self.versions[self.default_version]


@dataclass(frozen=True, slots=True)
class User:
    account: str
    name: str
    path: str = "/"
    user_id: str | None = None
    tags: Mapping[str, str] = field(default_factory=dict)
    boundary: str | None = None
    groups: tuple[str, ...] = ()
    inline: Mapping[str, Document] = field(default_factory=dict)
    attached: tuple[str, ...] = ()
    partition: str = "aws"

    @property
    def arn(self) -> str:
        return f"arn:{self.partition}:iam::{self.account}:user{self.path}{self.name}"

    @property
    def key(self) -> str:
        return owner_key("user", self.account, self.name)


@dataclass(frozen=True, slots=True)
class Group:
    account: str
    name: str
    path: str = "/"
    group_id: str | None = None
    inline: Mapping[str, Document] = field(default_factory=dict)
    attached: tuple[str, ...] = ()
    partition: str = "aws"

    @property
    def arn(self) -> str:
        return f"arn:{self.partition}:iam::{self.account}:group{self.path}{self.name}"

    @property
    def key(self) -> str:
        return owner_key("group", self.account, self.name)


@dataclass(frozen=True, slots=True)
class Role:
    account: str
    name: str
    path: str = "/"
    role_id: str | None = None
    trust_policy: Document | None = None
    tags: Mapping[str, str] = field(default_factory=dict)
    boundary: str | None = None
    max_session_duration: int = 3600
    inline: Mapping[str, Document] = field(default_factory=dict)
    attached: tuple[str, ...] = ()
    partition: str = "aws"

    @property
    def arn(self) -> str:
        return f"arn:{self.partition}:iam::{self.account}:role{self.path}{self.name}"

    @property
    def key(self) -> str:
        return owner_key("role", self.account, self.name)


@dataclass(frozen=True, slots=True)
class Repository:
    arn: str
    tags: Mapping[str, str] = field(default_factory=dict)
    policy: Document | None = None

    @property
    def account(self) -> str:
        return self.arn.split(":")[4]

    @property
    def region(self) -> str:
        return self.arn.split(":")[3]

    @property
    def name(self) -> str:
        return self.arn.split(":", 5)[5].removeprefix("repository/")


@dataclass(frozen=True, slots=True)
class OrgNode:
    id: str
    service_control: tuple[Document, ...] = ()
    resource_control: tuple[Document, ...] = ()
    accounts: tuple[str, ...] = ()
    children: tuple[OrgNode, ...] = ()


@dataclass(frozen=True, slots=True)
class Organization:
    id: str
    root: OrgNode

    def path_to(self, account: str) -> tuple[OrgNode, ...] | None:
        """The nodes from the root down to the one listing `account`; None outside the tree."""

        def walk(node: OrgNode, trail: tuple[OrgNode, ...]) -> tuple[OrgNode, ...] | None:
            trail = (*trail, node)
            if account in node.accounts:
                return trail
            for child in node.children:
                found = walk(child, trail)
                if found is not None:
                    return found
            return None

        return walk(self.root, ())


@dataclass(frozen=True, slots=True)
class Fleet:
    """Everything the store holds, as one value (what import, export and a full compile read)."""

    accounts: tuple[str, ...] = ()
    users: tuple[User, ...] = ()
    groups: tuple[Group, ...] = ()
    roles: tuple[Role, ...] = ()
    policies: tuple[ManagedPolicy, ...] = ()
    repositories: tuple[Repository, ...] = ()
    organization: Organization | None = None


@dataclass(frozen=True, slots=True)
class Session:
    """A temporary-credentials session Dockgate issued (AssumeRole or GetFederationToken)."""

    arn: str
    """`arn:aws:sts::ACCOUNT:assumed-role/ROLE/NAME` or `…:federated-user/NAME`"""
    session_id: str
    """random; login tokens bind to it, so a replaced session's tokens stop working"""
    base: str
    """owner key of the role (`role/ACCOUNT/name`) or of the federating IAM user"""
    caller: str
    """the ARN that asked for the session"""
    issued_at: float
    expires_at: float
    """seconds since the epoch"""
    policy: Document | None = None
    tags: Mapping[str, str] = field(default_factory=dict)
    source_identity: str | None = None
    ended: str | None = None
    """`expired` or `revoked` once the session has ended: its ARN is refused, not reinterpreted
    as a session issued elsewhere, until the tombstone is dropped"""
    ended_at: float | None = None


@dataclass(frozen=True, slots=True)
class SigningKey:
    """An HMAC key for login tokens; retired keys still verify until their tokens expire."""

    key_id: str
    secret: bytes
    created_at: float
    retired_at: float | None = None


@dataclass(frozen=True, slots=True)
class TokenKey:
    """An asymmetric key that signs registry bearer tokens (JWT), and the certificate registries
    trust for it (their `rootcertbundle`). Retired keys stay for a grace period, so that the
    tokens they signed, and the bundle a registry read at its start, stay good."""

    key_id: str
    """libtrust's key ID of the public key (what a token's `kid` names)"""
    algorithm: str
    """`ES256` or `RS256`"""
    private_key: str = field(repr=False)
    """PKCS #8 PEM: a secret, never shown"""
    certificate: str
    """PEM of the self-signed certificate of the public key"""
    created_at: float
    retired_at: float | None = None
    """when it stopped signing (None: the current key)"""
    trusted_until: float | None = None
    """a retired key verifies, and its certificate stays in the bundle, until then"""


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


@dataclass(frozen=True, slots=True)
class Credentials:
    """Every stored session (live and ended), the keys that still verify, revoked token IDs."""

    sessions: tuple[Session, ...] = ()
    signing_keys: tuple[SigningKey, ...] = ()
    """the current key (not retired) last"""
    revoked_tokens: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Delta:
    """Everything a change touched, read at one revision: what a snapshot needs to catch up.

    A principal, repository or session the change names but the store no longer holds maps to
    None (it was deleted). `groups` and `policies` hold what the named users and roles refer to,
    so the engine compiles them without reading again.
    """

    change: Change
    revision: int
    """the revision the reads saw (at least `change.revision`)"""
    accounts: tuple[str, ...] = ()
    users: Mapping[str, User | None] = field(default_factory=dict)
    """by owner key, for every `user/…` key of `change.principals`"""
    roles: Mapping[str, Role | None] = field(default_factory=dict)
    """by owner key, for every `role/…` key of `change.principals`"""
    groups: Mapping[tuple[str, str], Group] = field(default_factory=dict)
    """(account, name) of every group the named users belong to"""
    policies: Mapping[str, ManagedPolicy] = field(default_factory=dict)
    """every managed policy the named users, their groups and the named roles attach or use as
    a boundary"""
    repositories: Mapping[str, Repository | None] = field(default_factory=dict)
    organization: Organization | None = None
    """the organization when `change.organization`, else None (unread)"""
    sessions: Mapping[str, Session | None] = field(default_factory=dict)
    """by ARN, for every session of `change.sessions`"""
    signing_keys: tuple[SigningKey, ...] | None = None
    """read only when `change.credentials`"""
    revoked_tokens: frozenset[str] | None = None
    """read only when `change.credentials`"""
