"""A small hand-written fleet with one case of each kind the analysis must get right."""

from __future__ import annotations

from typing import Any

from dockgate_server.engine.build import build_snapshot
from dockgate_server.engine.snapshot import Snapshot
from dockgate_server.store.model import (
    Credentials,
    Fleet,
    ManagedPolicy,
    Organization,
    OrgNode,
    Repository,
    Role,
    Session,
    User,
)

A = "111122223333"
B = "444455556666"
NOW = 1_700_000_000.0

ALICE = f"arn:aws:iam::{A}:user/alice"
"""every ECR action on `team-a/*`, but an explicit deny of PutImage on `team-a/locked`"""
BOB = f"arn:aws:iam::{A}:user/bob"
"""PutImage anywhere, from 10.0.0.0/8 only"""
CAROL = f"arn:aws:iam::{A}:user/carol"
"""`ecr:*` on `*`, under a boundary that allows pulls only"""
CI = f"arn:aws:iam::{A}:role/ci"
"""pulls on `team-a/*`"""
BUILD = f"arn:aws:sts::{A}:assumed-role/ci/build"
"""a session of `ci` Dockgate issued, whose session policy allows BatchGetImage only"""
PARTNER = f"arn:aws:iam::{B}:role/partner"
"""another account's role: BatchGetImage on `*`"""
ROOT_A = f"arn:aws:iam::{A}:root"
ROOT_B = f"arn:aws:iam::{B}:root"

APP = f"arn:aws:ecr:us-east-1:{A}:repository/team-a/app"
"""its policy grants account B BatchGetImage"""
LOCKED = f"arn:aws:ecr:us-east-1:{A}:repository/team-a/locked"
BASE = f"arn:aws:ecr:us-east-1:{A}:repository/public/base"
"""its policy grants `*` BatchGetImage"""

PULL = ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"]
BOUNDARY = f"arn:aws:iam::{A}:policy/pull-only"


def document(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def allow(actions: str | list[str], resource: str = "*", **extra: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": actions, "Resource": resource, **extra}


SOURCE_IP = {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}
TEAM_A = f"arn:aws:ecr:us-east-1:{A}:repository/team-a/*"


def sample_fleet() -> Fleet:
    users = (
        User(
            A,
            "alice",
            inline={
                "team-a": document(
                    allow("ecr:*", TEAM_A),
                    {
                        "Sid": "Locked",
                        "Effect": "Deny",
                        "Action": "ecr:PutImage",
                        "Resource": LOCKED,
                    },
                )
            },
        ),
        User(
            A,
            "bob",
            inline={"office": document(allow("ecr:PutImage", Sid="Office", Condition=SOURCE_IP))},
        ),
        User(A, "carol", boundary=BOUNDARY, inline={"all": document(allow("ecr:*"))}),
    )
    roles = (
        Role(A, "ci", inline={"pull": document(allow(PULL, TEAM_A))}),
        Role(B, "partner", inline={"pull": document(allow("ecr:BatchGetImage"))}),
    )
    repositories = (
        Repository(
            APP,
            {"team": "a"},
            document(
                {
                    "Sid": "PartnerPull",
                    "Effect": "Allow",
                    "Principal": {"AWS": f"arn:aws:iam::{B}:root"},
                    "Action": "ecr:BatchGetImage",
                }
            ),
        ),
        Repository(LOCKED),
        Repository(
            BASE,
            {},
            document(
                {
                    "Sid": "Anyone",
                    "Effect": "Allow",
                    "Principal": "*",
                    "Action": "ecr:BatchGetImage",
                }
            ),
        ),
    )
    full = document({"Effect": "Allow", "Action": "*", "Resource": "*"})
    no_deletes = document(
        {"Sid": "AllowAll", "Effect": "Allow", "Action": "*", "Resource": "*"},
        {"Sid": "NoDeletes", "Effect": "Deny", "Action": "ecr:DeleteRepository", "Resource": "*"},
    )
    organization = Organization(
        "o-a1b2c3d4e5",
        OrgNode("r-root", (full,), children=(OrgNode("ou-unit", (no_deletes,), accounts=(A, B)),)),
    )
    boundary = ManagedPolicy(
        BOUNDARY, "pull-only", "/", "v1", {"v1": document(allow("ecr:BatchGetImage"))}
    )
    return Fleet((A, B), users, (), roles, (boundary,), repositories, organization)


def sample_credentials() -> Credentials:
    session = Session(
        BUILD,
        "session-1",
        f"role/{A}/ci",
        CI,
        NOW - 60,
        NOW + 3600,
        document(allow("ecr:BatchGetImage")),
    )
    return Credentials((session,))


def sample_snapshot() -> Snapshot:
    return build_snapshot(sample_fleet(), sample_credentials(), 4)
