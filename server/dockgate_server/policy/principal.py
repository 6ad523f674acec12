"""Principals: the caller of a request, the entries of `Principal`, and how the two relate."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum, StrEnum

from dockgate_server.policy.arn import is_account_id, split_arn

__all__ = [
    "PARTITIONS",
    "Caller",
    "CallerKind",
    "EntryKind",
    "PrincipalEntry",
    "PrincipalMatch",
    "classify_principal",
    "exempts_caller",
    "parse_caller",
    "parse_principal_entry",
]


PARTITIONS = frozenset(
    {
        "aws",
        "aws-cn",
        "aws-us-gov",
        "aws-iso",
        "aws-iso-b",
        "aws-iso-e",
        "aws-iso-f",
        "aws-eusc",
    }
)
"""AWS's partitions: an account, and every principal in it, lives in exactly one"""


class CallerKind(StrEnum):
    USER = "User"
    ROLE = "Role"
    SESSION = "AssumedRole"
    FEDERATED_USER = "FederatedUser"
    ROOT = "Root"
    SERVICE = "Service"


@dataclass(frozen=True, slots=True)
class Caller:
    """The authenticated principal of a request, parsed once from its ARN or service name."""

    kind: CallerKind
    arn: str
    partition: str = ""
    account: str | None = None
    name: str = ""
    """user name, role name, federated name, or service principal name"""
    session: str | None = None
    service_linked: bool = False
    """a role under the `aws-service-role/` path: SCPs and RCPs do not restrict it"""
    federating_user: str | None = None
    """the ARN of the IAM user behind a federated session, when the store knows it (a session
    Dockgate issued); unknown, the user is the one named like the session (semantics §3.5)"""

    @property
    def principal_arn(self) -> str | None:
        """`aws:PrincipalArn`: a session's is its role's ARN (without the path it cannot know)."""
        if self.kind is CallerKind.SERVICE:
            return None
        if self.kind is CallerKind.SESSION:
            return f"arn:{self.partition}:iam::{self.account}:role/{self.name}"
        return self.arn

    @property
    def principal_type(self) -> str | None:
        """`aws:PrincipalType` as AWS spells it."""
        return _PRINCIPAL_TYPES.get(self.kind)

    @property
    def is_iam_principal(self) -> bool:
        return self.kind is not CallerKind.SERVICE


_PRINCIPAL_TYPES = {
    CallerKind.USER: "User",
    CallerKind.ROLE: "AssumedRole",
    CallerKind.SESSION: "AssumedRole",
    CallerKind.FEDERATED_USER: "FederatedUser",
    CallerKind.ROOT: "Account",
}


def parse_caller(text: str) -> Caller:
    """Parse a request principal; raises ValueError naming what is wrong with it."""
    if not text.startswith("arn:"):
        if _is_service_name(text):
            return Caller(CallerKind.SERVICE, text, name=text.lower())
        raise ValueError(f"principal `{text}` is neither an ARN nor a service principal name")
    arn = split_arn(text)
    if arn is None or not arn.partition or arn.region:
        raise ValueError(f"principal `{text}` is not a valid principal ARN")
    if arn.partition not in PARTITIONS:
        raise ValueError(f"principal `{text}`: unknown partition `{arn.partition}`")
    if not is_account_id(arn.account):
        raise ValueError(f"principal `{text}` must carry a 12-digit account ID")
    segments = arn.resource.split("/")
    kind = segments[0]
    if arn.service == "iam" and arn.resource == "root":
        return Caller(CallerKind.ROOT, text, arn.partition, arn.account, arn.account)
    if arn.service == "iam" and kind == "user" and len(segments) >= 2 and segments[-1]:
        return Caller(CallerKind.USER, text, arn.partition, arn.account, segments[-1])
    if arn.service == "iam" and kind == "role" and len(segments) >= 2 and segments[-1]:
        linked = len(segments) > 2 and segments[1] == "aws-service-role"
        return Caller(CallerKind.ROLE, text, arn.partition, arn.account, segments[-1], None, linked)
    if arn.service == "sts" and kind == "assumed-role" and len(segments) == 3 and all(segments):
        return Caller(
            CallerKind.SESSION, text, arn.partition, arn.account, segments[1], segments[2]
        )
    if arn.service == "sts" and kind == "federated-user" and len(segments) == 2 and segments[1]:
        return Caller(CallerKind.FEDERATED_USER, text, arn.partition, arn.account, segments[1])
    raise ValueError(
        f"principal `{text}` is not a user, role, assumed-role session, federated user or root"
    )


def _is_service_name(text: str) -> bool:
    return (
        "." in text
        and text.isascii()
        and all(c.isalnum() or c in ".-" for c in text)
        and not text.startswith(".")
        and not text.endswith(".")
    )


class EntryKind(Enum):
    WILDCARD = "wildcard"
    ACCOUNT = "account"
    USER = "user"
    ROLE = "role"
    SESSION = "session"
    FEDERATED_USER = "federated-user"
    SERVICE = "service"
    NOTHING = "nothing"
    """an identity provider, a canonical user or a unique ID: never an ECR caller"""


@dataclass(frozen=True, slots=True)
class PrincipalEntry:
    kind: EntryKind
    text: str
    partition: str = ""
    """empty for a bare 12-digit account ID, which names the account in any partition"""
    account: str = ""
    name: str = ""


class PrincipalMatch(StrEnum):
    """How a `Principal` names the caller (semantics §3.5); the flow needs the kind, not yes/no."""

    NONE = "None"
    ACCOUNT = "Account"
    ROLE_OF_SESSION = "RoleOfSession"
    USER_OF_FEDERATED_SESSION = "UserOfFederatedSession"
    WILDCARD = "Wildcard"
    DIRECT = "Direct"

    @property
    def rank(self) -> int:
        return _RANKS[self]


_RANKS = {
    PrincipalMatch.NONE: 0,
    PrincipalMatch.ACCOUNT: 1,
    PrincipalMatch.ROLE_OF_SESSION: 2,
    PrincipalMatch.USER_OF_FEDERATED_SESSION: 2,
    PrincipalMatch.WILDCARD: 3,
    PrincipalMatch.DIRECT: 3,
}


def parse_principal_entry(key: str, value: str) -> PrincipalEntry:
    """One value under `AWS`, `Service`, `Federated` or `CanonicalUser`; ValueError if invalid."""
    if key == "AWS" and value == "*":
        return PrincipalEntry(EntryKind.WILDCARD, value)
    if "*" in value or "?" in value:
        raise ValueError(f"unsupported wildcard in principal `{value}`")
    if key == "Service":
        if not value:
            raise ValueError("empty service principal")
        return PrincipalEntry(EntryKind.SERVICE, value, name=value.lower())
    if key != "AWS":
        return PrincipalEntry(EntryKind.NOTHING, value)
    if is_account_id(value):
        return PrincipalEntry(EntryKind.ACCOUNT, value, account=value)
    if _is_unique_id(value):
        return PrincipalEntry(EntryKind.NOTHING, value)
    arn = split_arn(value)
    if arn is None or not arn.partition or arn.region or not is_account_id(arn.account):
        raise ValueError(f"invalid principal `{value}`: expected `*`, an account ID or an ARN")
    segments = arn.resource.split("/")
    last = segments[-1]
    if arn.service == "iam":
        if arn.resource == "root":
            return PrincipalEntry(EntryKind.ACCOUNT, value, arn.partition, arn.account)
        if segments[0] == "user" and len(segments) >= 2 and last:
            return PrincipalEntry(EntryKind.USER, value, arn.partition, arn.account, last)
        if segments[0] == "role" and len(segments) >= 2 and last:
            return PrincipalEntry(EntryKind.ROLE, value, arn.partition, arn.account, last.lower())
        if segments[0] == "group":
            raise ValueError(f"invalid principal `{value}`: IAM groups are not principals")
    if arn.service == "sts":
        if segments[0] == "assumed-role" and len(segments) == 3 and all(segments):
            return PrincipalEntry(EntryKind.SESSION, value, arn.partition, arn.account)
        if segments[0] == "federated-user" and len(segments) == 2 and last:
            return PrincipalEntry(EntryKind.FEDERATED_USER, value, arn.partition, arn.account)
    return PrincipalEntry(EntryKind.NOTHING, value, arn.partition, arn.account)


def _is_unique_id(value: str) -> bool:
    return len(value) >= 16 and value[0] == "A" and value.isascii() and value.isalnum()


def classify_principal(entry: PrincipalEntry, caller: Caller) -> PrincipalMatch:
    """How one `Principal` entry names `caller` (semantics §3.5)."""
    kind = entry.kind
    if kind is EntryKind.WILDCARD:
        return PrincipalMatch.WILDCARD
    if kind is EntryKind.SERVICE:
        if caller.kind is CallerKind.SERVICE and caller.name == entry.name:
            return PrincipalMatch.DIRECT
        return PrincipalMatch.NONE
    if not _same_account(entry, caller):
        return PrincipalMatch.NONE
    if kind is EntryKind.ACCOUNT:
        # IAM: naming the account delegates to it; for the root user it names the caller itself
        if caller.kind is CallerKind.ROOT:
            return PrincipalMatch.DIRECT
        return PrincipalMatch.ACCOUNT
    if kind is EntryKind.USER:
        if caller.kind is CallerKind.USER and entry.text == caller.arn:
            return PrincipalMatch.DIRECT
        if caller.kind is CallerKind.FEDERATED_USER and (
            entry.text == caller.federating_user
            if caller.federating_user is not None
            else entry.name == caller.name
        ):
            return PrincipalMatch.USER_OF_FEDERATED_SESSION
        return PrincipalMatch.NONE
    if kind is EntryKind.ROLE:
        # IAM: role names are unique ignoring case, and a session ARN carries no role path
        if (
            caller.kind in (CallerKind.SESSION, CallerKind.ROLE)
            and entry.name == caller.name.lower()
        ):
            return PrincipalMatch.ROLE_OF_SESSION
        return PrincipalMatch.NONE
    if kind in (EntryKind.SESSION, EntryKind.FEDERATED_USER) and entry.text == caller.arn:
        return PrincipalMatch.DIRECT
    return PrincipalMatch.NONE


def exempts_caller(entry: PrincipalEntry, caller: Caller) -> bool:
    """Whether a `NotPrincipal` entry exempts `caller`: only the caller's own identity does.

    IAM: an account entry does not exempt the account's other principals, and a role entry does
    not exempt the role's sessions (semantics §7.6, §12 item 11).
    """
    kind = entry.kind
    if kind is EntryKind.WILDCARD:
        return True
    if kind is EntryKind.SERVICE:
        return caller.kind is CallerKind.SERVICE and caller.name == entry.name
    if kind is EntryKind.ACCOUNT:
        return caller.kind is CallerKind.ROOT and _same_account(entry, caller)
    if kind in (EntryKind.NOTHING, EntryKind.ROLE):
        # a bare role ARN as the caller stands for a session of that role (semantics §7.1), and a
        # role entry does not exempt the role's sessions
        return False
    return entry.text == caller.arn


def _same_account(entry: PrincipalEntry, caller: Caller) -> bool:
    return entry.account == caller.account and entry.partition in ("", caller.partition)
