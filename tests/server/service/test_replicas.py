"""Three `dockgate serve` replicas on one PostgreSQL share one truth (issue 12, items 8 and 9).

A write through any replica's admin port answers its revision, and `Authorize` with that
`at_least_revision` on every other replica answers at that revision or newer, reflecting the
write. Credentials are shared: a login password one replica issues passes every replica's
registry gate, and a revoked token or session, or a rotated key, takes effect on all of them.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from dockgate import AdminClient, Client, Outcome, UnauthenticatedError
from tests.postgres_cluster import PostgresCluster
from tests.server.service.conftest import TOKEN, RunningServer
from tests.server.service.replicas import ACCOUNT, ADAPTERS, envoy_status, replicas, settle

TOOLS = f"arn:aws:ecr:us-east-1:{ACCOUNT}:repository/team-b/tools"
PUSHER = f"arn:aws:iam::{ACCOUNT}:user/ci/pusher"
DEPLOY = f"arn:aws:iam::{ACCOUNT}:role/deploy"
PULL = "ecr:BatchGetImage"
PUSH = "ecr:PutImage"
PULL_APP = "/v2/team-a/app/manifests/v1"
"""a registry call the sample fleet's pusher (and its deploy sessions) may make"""


@pytest.fixture(scope="module")
def fleet(
    postgres_cluster: PostgresCluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[list[RunningServer]]:
    url = postgres_cluster.create_database()
    with replicas(tmp_path_factory.mktemp("replicas"), url, *ADAPTERS) as running:
        yield running


def _grant(principal: str, action: str) -> dict[str, Any]:
    return {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"AWS": principal}, "Action": action},
        ],
    }


def test_a_write_through_any_replica_is_read_on_every_other(fleet: list[RunningServer]) -> None:
    for round_ in range(6):
        writer = fleet[round_ % len(fleet)]
        principal = f"arn:aws:iam::{ACCOUNT}:user/visitor-{round_}"
        with AdminClient(writer.admin, TOKEN) as admin:
            admin.put_user(ACCOUNT, f"visitor-{round_}")
            revision = admin.set_repository_policy(TOOLS, _grant(principal, PULL))
        for reader in fleet:
            with Client(reader.decision) as client:
                decision = client.authorize(principal, PULL, TOOLS, at_least_revision=revision)
            assert decision.revision >= revision, (round_, reader.decision)
            assert decision.outcome is Outcome.ALLOWED, (round_, reader.decision)
            # the grant of the round before is gone with this write: never an older answer
            if round_:
                earlier = f"arn:aws:iam::{ACCOUNT}:user/visitor-{round_ - 1}"
                with Client(reader.decision) as client:
                    old = client.authorize(earlier, PULL, TOOLS, at_least_revision=revision)
                assert old.outcome is Outcome.IMPLICITLY_DENIED, (round_, reader.decision)


def test_every_replica_answers_the_same_revision(fleet: list[RunningServer]) -> None:
    with AdminClient(fleet[1].admin, TOKEN) as admin:
        written = admin.put_user(ACCOUNT, "counted")
    revisions = set()
    for server in fleet:
        with AdminClient(server.admin, TOKEN) as admin:
            revisions.add(admin.revision())
    assert len(revisions) == 1 and revisions.pop() >= written


def test_a_login_password_from_one_replica_passes_every_gate(fleet: list[RunningServer]) -> None:
    with AdminClient(fleet[0].admin, TOKEN) as admin:
        login = admin.get_login_password(PUSHER)
    for server in fleet:
        with AdminClient(server.admin, TOKEN) as admin:
            assert admin.verify_login_password(login.password) == PUSHER
        # the gate decides from the replica's own snapshot: it has the key once it follows
        settle(
            partial(envoy_status, server, login.password, PULL_APP),
            lambda status: status == 200,
            f"a login from replica 0 at {server.decision}",
        )


def test_a_token_revoked_on_one_replica_is_refused_by_all(fleet: list[RunningServer]) -> None:
    with AdminClient(fleet[0].admin, TOKEN) as admin:
        login = admin.get_login_password(PUSHER)
        kept = admin.get_login_password(PUSHER)
    with AdminClient(fleet[1].admin, TOKEN) as admin:
        admin.revoke_login_token(login.token_id)
    for server in fleet:
        settle(
            partial(envoy_status, server, login.password, PULL_APP),
            lambda status: status == 401,
            f"a token revoked on replica 1, at {server.decision}",
        )
        with AdminClient(server.admin, TOKEN) as admin:
            with pytest.raises(UnauthenticatedError) as refused:
                admin.verify_login_password(login.password)
            assert refused.value.metadata["rejection"] == "revoked"
        # only that token: another one of the same principal still passes
        assert envoy_status(server, kept.password, PULL_APP) == 200


def test_a_session_revoked_on_one_replica_ends_on_all(fleet: list[RunningServer]) -> None:
    with AdminClient(fleet[2].admin, TOKEN) as admin:
        session = admin.assume_role(PUSHER, DEPLOY, "replicated")
        login = admin.get_login_password(session.arn)
    for server in fleet:
        settle(
            partial(envoy_status, server, login.password, PULL_APP),
            lambda status: status == 200,
            f"a session's login from replica 2, at {server.decision}",
        )
    with AdminClient(fleet[0].admin, TOKEN) as admin:
        revision = admin.revoke_session(session.arn)
    for server in fleet:
        settle(
            partial(envoy_status, server, login.password, PULL_APP),
            lambda status: status == 401,
            f"a session revoked on replica 0, at {server.decision}",
        )
        with Client(server.decision) as client:
            decision = client.authorize(session.arn, PULL, TOOLS, at_least_revision=revision)
        assert decision.outcome is not Outcome.ALLOWED


def test_a_key_rotated_on_one_replica_signs_for_all(fleet: list[RunningServer]) -> None:
    with AdminClient(fleet[0].admin, TOKEN) as admin:
        before = admin.get_login_password(PUSHER)
        key_id = admin.rotate_login_key()
    # another replica signs with the new key at once: it reads the current key from the store
    with AdminClient(fleet[1].admin, TOKEN) as admin:
        after = admin.get_login_password(PUSHER)
    assert after.password.split(".")[1] == key_id != before.password.split(".")[1]
    for server in fleet:
        settle(
            partial(envoy_status, server, after.password, PULL_APP),
            lambda status: status == 200,
            f"a password signed with key `{key_id}`, at {server.decision}",
        )
        # the key before still verifies what it signed: a rotation logs no one out
        assert envoy_status(server, before.password, PULL_APP) == 200


def test_a_replica_does_not_start_on_a_store_that_is_not_there(tmp_path: Path) -> None:
    url = "postgresql://postgres@127.0.0.1:1/nowhere?timeout=1"
    expected = r"dockgate: store `postgresql://.*`: unavailable: "
    with pytest.raises(RuntimeError, match=expected), replicas(tmp_path, url, count=1):
        pass
