"""The fleet as the store holds it: accounts, identities, policies, repositories, organization."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "Document",
    "Fleet",
    "Group",
    "ManagedPolicy",
    "OrgNode",
    "Organization",
    "Repository",
    "Role",
    "User",
    "owner_key",
]

Document = Mapping[str, Any]
"""A policy document as parsed JSON (validated before it is stored)."""


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
