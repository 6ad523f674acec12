"""An immutable, compiled, indexed view of the store at one revision, and the questions it answers.

Writers build the next snapshot aside (`engine/build.py`) and swap one reference; readers never see
half an update.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from dockgate_server.engine.compile import CompiledPolicy
from dockgate_server.engine.decide import Question, decide
from dockgate_server.engine.decision import Decision
from dockgate_server.engine.index import StatementIndex
from dockgate_server.engine.request import RawContext
from dockgate_server.engine.sessions import CredentialState

__all__ = ["Levels", "PrincipalView", "RepositoryView", "Snapshot", "partitions_of"]


@dataclass(frozen=True, slots=True)
class PrincipalView:
    """A user's or role's policies, compiled and indexed: its own plus its groups'."""

    key: str
    arn: str
    identity: StatementIndex
    boundary: StatementIndex | None
    tags: Mapping[str, str]
    trust: CompiledPolicy | None = None
    """a role's trust policy, compiled as the resource policy of `sts:AssumeRole`"""
    max_session_duration: int = 3600
    partition: str = "aws"


@dataclass(frozen=True, slots=True)
class RepositoryView:
    arn: str
    policy: CompiledPolicy | None
    tags: Mapping[str, str]


Levels = tuple[StatementIndex, ...]


@dataclass(frozen=True, slots=True)
class Snapshot:
    revision: int
    accounts: frozenset[str]
    users: Mapping[str, PrincipalView]
    """by owner key `user/ACCOUNT/NAME`"""
    user_arns: Mapping[str, str]
    """user ARN → owner key"""
    roles: Mapping[str, PrincipalView]
    """by owner key `role/ACCOUNT/name` (folded)"""
    repositories: Mapping[str, RepositoryView]
    service_control: Mapping[str, Levels]
    """account → SCP levels from the root down; accounts outside the organization are absent"""
    resource_control: Mapping[str, Levels]
    organization_paths: Mapping[str, tuple[str, str]]
    """account → (organization ID, `o-…/r-…/ou-…/` path) for the accounts in the organization"""
    credentials: CredentialState = field(default_factory=CredentialState)
    """the sessions Dockgate issued, and the keys that sign login tokens"""
    partitions: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    """account → the partition its identities and repositories live in (`aws` for the rest):
    the same twelve digits in another partition are another account"""

    def partition_of(self, account: str) -> str:
        return self.partitions.get(account, _DEFAULT_PARTITION)

    def authorize(
        self,
        principal: str,
        action: str,
        resource: str,
        context: RawContext | None = None,
        *,
        session_policy: CompiledPolicy | None = None,
        trust_policy: CompiledPolicy | None = None,
        indexed: bool = True,
        now: float | None = None,
    ) -> Decision:
        """Decide a request against this snapshot (`engine.decide`, its one implementation);
        raises `RequestError` for malformed input.

        `now` (seconds since the epoch; the wall clock when None) decides whether a session
        Dockgate issued has expired. `trust_policy`: a role's trust policy, standing in for the
        resource policy when deciding `sts:AssumeRole` (and required to allow)."""
        question = Question.of(
            principal,
            action,
            resource,
            context,
            session_policy=session_policy,
            trust_policy=trust_policy,
        )
        return decide(self, question, now=now, indexed=indexed)


_DEFAULT_PARTITION = "aws"


def partitions_of(
    users: Mapping[str, PrincipalView],
    roles: Mapping[str, PrincipalView],
    repositories: Mapping[str, RepositoryView],
) -> Mapping[str, str]:
    """Each account's partition, as its identities and repositories name it (a bundle has one
    partition; the most common one wins in a store merged from several)."""
    counts: dict[str, Counter[str]] = {}
    for key, view in (*users.items(), *roles.items()):
        counts.setdefault(key.split("/", 2)[1], Counter())[view.partition] += 1
    for arn in repositories:
        parts = arn.split(":", 5)
        if len(parts) == 6:
            counts.setdefault(parts[4], Counter())[parts[1]] += 1
    return MappingProxyType(
        {
            account: found.most_common(1)[0][0]
            for account, found in counts.items()
            if found.most_common(1)[0][0] != _DEFAULT_PARTITION
        }
    )
