"""The request mix of a load test: distinct keys drawn from a fleet, each decided in-process.

A key is one question a registry proxy asks (principal, action, repository, context). Keys are
sorted into four pools, same-account or cross-account and allowed or denied, filled to the shares
asked for; every key carries the decision of the in-process engine, built from the same fleet
through the same store and snapshot code as the server, so a load test can check the server's
answers against it.
"""

from __future__ import annotations

import bisect
import random
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dockgate_server.engine.decision import Outcome
from dockgate_server.engine.snapshot import Snapshot
from dockgate_server.policy.glob import Glob, compile_glob
from dockgate_server.service.follow import SnapshotFollower
from dockgate_server.store.model import Document, Fleet, Repository
from dockgate_server.store.port import open_store

__all__ = [
    "PULL",
    "PUSH",
    "Key",
    "MixShape",
    "Pool",
    "Scenario",
    "build_scenario",
    "describe_fleet",
    "reference_snapshot",
]

PULL = ("ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability")
"""What a registry proxy asks for a `docker pull`: the manifest, then each layer."""
PUSH = (
    "ecr:BatchCheckLayerAvailability",
    "ecr:InitiateLayerUpload",
    "ecr:UploadLayerPart",
    "ecr:CompleteLayerUpload",
    "ecr:PutImage",
)
"""What a registry proxy asks for a `docker push`: which layers exist, the uploads, the manifest."""

_SOURCES = ("203.0.113.10", "203.0.113.77", "198.51.100.4", "2001:db8::5")
_ATTEMPTS = 20
"""Candidates tried per key wanted before a pool is left short."""


@dataclass(frozen=True, slots=True)
class MixShape:
    keys: int = 5_000
    push_share: float = 0.2
    cross_account_share: float = 0.1
    denied_share: float = 0.1
    seed: int = 7


@dataclass(frozen=True, slots=True)
class Key:
    principal: str
    action: str
    resource: str
    context: Mapping[str, str]
    outcome: Outcome
    """the in-process engine's decision"""
    cross_account: bool
    push: bool


@dataclass(frozen=True, slots=True)
class Pool:
    cross_account: bool
    denied: bool
    share: float
    """of the requests drawn from this pool"""
    keys: tuple[int, ...]
    """indexes into `Scenario.keys`, in rank order (rank 1 first)"""


@dataclass(frozen=True, slots=True)
class Scenario:
    fleet: Mapping[str, int]
    """what the fleet holds: accounts, users, groups, roles, managed policies, repositories,
    statements"""
    revision: int
    """of the reference snapshot (its own store's; the server's differs)"""
    keys: tuple[Key, ...]
    pools: tuple[Pool, ...]

    def shares(self) -> dict[str, float]:
        """The shares of push, cross-account and denied requests the pools give."""
        total = sum(pool.share for pool in self.pools if pool.keys) or 1.0
        result = {"push": 0.0, "cross_account": 0.0, "denied": 0.0}
        for pool in self.pools:
            if not pool.keys:
                continue
            weight = pool.share / total
            pushes = sum(1 for i in pool.keys if self.keys[i].push) / len(pool.keys)
            result["push"] += weight * pushes
            result["cross_account"] += weight * pool.cross_account
            result["denied"] += weight * pool.denied
        return {name: round(value, 4) for name, value in result.items()}


def build_scenario(fleet: Fleet, mix: MixShape) -> Scenario:
    """Keys for `mix` over `fleet`, each decided by the in-process engine."""
    snapshot = reference_snapshot(fleet)
    rng = random.Random(mix.seed)
    chooser = _Chooser(fleet, rng)
    wanted = {
        (cross, denied): _quota(mix, cross, denied)
        for cross in (False, True)
        for denied in (False, True)
    }
    filled: dict[tuple[bool, bool], list[int]] = {category: [] for category in wanted}
    keys: list[Key] = []
    seen: set[tuple[str, ...]] = set()
    for category, quota in wanted.items():
        for _ in range(quota * _ATTEMPTS):
            if len(filled[category]) >= quota:
                break
            push = rng.random() < mix.push_share
            candidate = chooser.candidate(*category, push=push)
            if candidate is None:
                break
            principal, action, repository, context = candidate
            identity = (principal, action, repository.arn, *context.values())
            if identity in seen:
                continue
            seen.add(identity)
            decision = snapshot.authorize(principal, action, repository.arn, context)
            cross = principal.split(":")[4] != repository.account
            landed = (cross, decision.outcome is not Outcome.ALLOWED)
            if len(filled[landed]) >= wanted[landed]:
                continue
            filled[landed].append(len(keys))
            keys.append(
                Key(principal, action, repository.arn, context, decision.outcome, cross, push)
            )
    pools = tuple(
        Pool(cross, denied, _share(mix, cross, denied), tuple(filled[(cross, denied)]))
        for cross, denied in wanted
    )
    return Scenario(describe_fleet(fleet), snapshot.revision, tuple(keys), pools)


def reference_snapshot(fleet: Fleet) -> Snapshot:
    """The snapshot the server builds from this fleet: imported into a store, loaded, compiled."""
    with (
        tempfile.TemporaryDirectory(prefix="dockgate-bench-") as folder,
        open_store(Path(folder) / "reference.sqlite3") as store,
    ):
        store.import_fleet(fleet)
        return SnapshotFollower(store).build()


def describe_fleet(fleet: Fleet) -> dict[str, int]:
    documents: list[Document] = [d for user in fleet.users for d in user.inline.values()]
    documents += [d for role in fleet.roles for d in role.inline.values()]
    documents += [d for group in fleet.groups for d in group.inline.values()]
    documents += [policy.document for policy in fleet.policies]
    documents += [repository.policy for repository in fleet.repositories if repository.policy]
    return {
        "accounts": len(fleet.accounts),
        "users": len(fleet.users),
        "groups": len(fleet.groups),
        "roles": len(fleet.roles),
        "managed_policies": len(fleet.policies),
        "repositories": len(fleet.repositories),
        "statements": sum(len(list(_statements(document))) for document in documents),
    }


def _share(mix: MixShape, cross: bool, denied: bool) -> float:
    cross_share = mix.cross_account_share if cross else 1 - mix.cross_account_share
    denied_share = mix.denied_share if denied else 1 - mix.denied_share
    return cross_share * denied_share


def _quota(mix: MixShape, cross: bool, denied: bool) -> int:
    share = _share(mix, cross, denied)
    return max(1, round(mix.keys * share)) if share > 0 else 0


def _statements(document: Document) -> Iterator[Mapping[str, Any]]:
    body = document.get("Statement", [])
    yield from body if isinstance(body, list) else [body]


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


@dataclass(frozen=True, slots=True)
class _Grant:
    """An identity statement with plain Action and Resource lists, as globs."""

    denies: bool
    actions: tuple[Glob, ...]
    resources: tuple[tuple[Glob, str], ...]
    """each pattern, with the literal prefix of the repository names it can match"""


@dataclass(frozen=True, slots=True)
class _Caller:
    arn: str
    account: str
    grants: tuple[_Grant, ...]


class _Chooser:
    """Candidate keys: a caller, then, to find allowed (or explicitly denied) keys in a large
    fleet, one of its Allow (or Deny) statements and an action and repository it names."""

    def __init__(self, fleet: Fleet, rng: random.Random) -> None:
        self.rng = rng
        policies = {policy.arn: policy.document for policy in fleet.policies}
        groups = {(group.account, group.name): group for group in fleet.groups}
        callers: list[_Caller] = []
        for user in fleet.users:
            documents = [*user.inline.values(), *_attached(policies, user.attached)]
            for name in user.groups:
                group = groups[(user.account, name)]
                documents += [*group.inline.values(), *_attached(policies, group.attached)]
            callers.append(_Caller(user.arn, user.account, _grants(documents)))
        for role in fleet.roles:
            documents = [*role.inline.values(), *_attached(policies, role.attached)]
            session = f"arn:aws:sts::{role.account}:assumed-role/{role.name}/bench"
            callers.append(_Caller(session, role.account, _grants(documents)))
        self.callers = callers
        by_account: dict[str, list[Repository]] = {}
        for repository in fleet.repositories:
            by_account.setdefault(repository.account, []).append(repository)
        self.repositories = {
            account: sorted(found, key=lambda r: r.name) for account, found in by_account.items()
        }
        self.names = {
            account: [r.name for r in found] for account, found in self.repositories.items()
        }

    def candidate(
        self, cross: bool, denied: bool, *, push: bool
    ) -> tuple[str, str, Repository, dict[str, str]] | None:
        if not self.callers or not self.repositories:
            return None
        rng = self.rng
        caller = rng.choice(self.callers)
        accounts = [a for a in self.repositories if (a != caller.account) == cross]
        if not accounts:
            return None
        account = rng.choice(accounts)
        actions = PUSH if push else PULL
        action, repository = rng.choice(actions), rng.choice(self.repositories[account])
        grants = [g for g in caller.grants if g.denies == denied]
        if grants and rng.random() < 0.9:
            grant = rng.choice(grants)
            named = [a for a in actions if any(glob.matches(a) for glob in grant.actions)]
            if named:
                action = rng.choice(named)
            found = self._named(account, grant)
            if found is not None:
                repository = found
        context = {
            "aws:SourceIp": rng.choice(_SOURCES),
            "aws:RequestedRegion": repository.region,
            "aws:SecureTransport": "true",
            "aws:MultiFactorAuthPresent": rng.choice(("true", "false")),
        }
        return caller.arn, action, repository, context

    def _named(self, account: str, grant: _Grant) -> Repository | None:
        """A repository of `account` that one of the grant's resource patterns matches."""
        names, repositories = self.names[account], self.repositories[account]
        glob, prefix = self.rng.choice(grant.resources)
        low = bisect.bisect_left(names, prefix)
        high = bisect.bisect_left(names, prefix + "\U0010ffff")
        if low == high:
            return None
        for _ in range(16):
            repository = repositories[self.rng.randrange(low, high)]
            if glob.matches(repository.arn):
                return repository
        return None


def _attached(policies: Mapping[str, Document], arns: tuple[str, ...]) -> list[Document]:
    return [policies[arn] for arn in arns if arn in policies]


def _grants(documents: list[Document]) -> tuple[_Grant, ...]:
    grants = []
    for document in documents:
        for statement in _statements(document):
            actions = _strings(statement.get("Action"))
            resources = _strings(statement.get("Resource"))
            if actions and resources:
                grants.append(
                    _Grant(
                        statement.get("Effect") == "Deny",
                        tuple(compile_glob(a, fold_case=True) for a in actions),
                        tuple((compile_glob(r), _name_prefix(r)) for r in resources),
                    )
                )
    return tuple(grants)


def _name_prefix(pattern: str) -> str:
    """The literal start of the repository names a resource pattern can match."""
    _, marker, name = pattern.partition(":repository/")
    if not marker:
        return ""
    return compile_glob(name).literal_prefix
