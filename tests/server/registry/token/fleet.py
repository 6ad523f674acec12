"""A small fleet and its real engine, for the token server's tests: same account, cross-account
through a repository policy, an explicit deny, a condition on `aws:SourceIp`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from dockgate_server.engine.build import build_snapshot
from dockgate_server.engine.decision import Decision
from dockgate_server.engine.snapshot import Snapshot
from dockgate_server.registry.routes import Registry
from dockgate_server.store.model import Credentials, Fleet, Repository, User

ACCOUNT = "111122223333"
OTHER = "444455556666"
REGION = "us-east-1"
REGISTRY = Registry(ACCOUNT, REGION)

PULL = ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"]
PUSH = [
    "ecr:InitiateLayerUpload",
    "ecr:UploadLayerPart",
    "ecr:CompleteLayerUpload",
    "ecr:PutImage",
    "ecr:BatchCheckLayerAvailability",
]


def arn(name: str) -> str:
    return REGISTRY.repository_arn(name)


def user(name: str, account: str = ACCOUNT) -> str:
    return f"arn:aws:iam::{account}:user/{name}"


ALICE = user("alice")
"""pull and push on team-a/*, may list every repository, denied all of prod/*"""
BOB = user("bob")
"""pull everywhere, but only from 10.0.0.0/8"""
CAROL = user("carol", OTHER)
"""another account: pull on the registry's repositories, as far as their policies allow"""
DAVE = user("dave")
"""ecr:* everywhere except an explicit deny of deletes"""
PUSHER = user("pusher")
"""push on team-a/app, without pull"""

REPOSITORIES = ("team-a/app", "team-b/tools", "prod/secret")


def _document(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def _allow(actions: Sequence[str] | str, resource: str = "*", **more: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": actions, "Resource": resource, **more}


def _deny(actions: Sequence[str] | str, resource: str = "*", **more: Any) -> dict[str, Any]:
    return {"Effect": "Deny", "Action": actions, "Resource": resource, **more}


def fleet() -> Fleet:
    team_a = f"arn:aws:ecr:{REGION}:{ACCOUNT}:repository/team-a/*"
    users = (
        User(
            ACCOUNT,
            "alice",
            inline={
                "work": _document(
                    _allow([*PULL, *PUSH], team_a),
                    _allow("ecr:DescribeRepositories"),
                    _deny("ecr:*", f"arn:aws:ecr:{REGION}:{ACCOUNT}:repository/prod/*"),
                )
            },
        ),
        User(
            ACCOUNT,
            "bob",
            inline={
                "read": _document(
                    _allow(PULL),
                    _deny("ecr:*", Condition={"NotIpAddress": {"aws:SourceIp": "10.0.0.0/8"}}),
                )
            },
        ),
        User(OTHER, "carol", inline={"read": _document(_allow(PULL))}),
        User(
            ACCOUNT,
            "dave",
            inline={"all": _document(_allow("ecr:*"), _deny("ecr:BatchDeleteImage"))},
        ),
        User(ACCOUNT, "pusher", inline={"push": _document(_allow(PUSH, arn("team-a/app")))}),
    )
    shared = _document(
        {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{OTHER}:root"}, "Action": PULL}
    )
    repositories = tuple(
        Repository(arn(name), policy=shared if name == "team-a/app" else None)
        for name in REPOSITORIES
    )
    return Fleet(accounts=(ACCOUNT, OTHER), users=users, repositories=repositories)


def snapshot() -> Snapshot:
    return build_snapshot(fleet(), Credentials(), 1)


class Decisions:
    """The real engine as a `Decide`, counting what it was asked."""

    def __init__(self, built: Snapshot | None = None) -> None:
        self.snapshot = built or snapshot()
        self.calls: list[tuple[str, str, str]] = []

    def __call__(
        self, principal: str, action: str, resource: str, context: Mapping[str, Any]
    ) -> Decision:
        self.calls.append((principal, action, resource))
        return self.snapshot.authorize(principal, action, resource, dict(context))
