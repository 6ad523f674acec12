"""Replicas on a PostgreSQL that stops, comes back, or dies during an import (issue 12, item 11).

Each test has a cluster of its own (`own_postgres_cluster`) and stops it for real. While the
store is down every replica decides from its last snapshot (never from nothing), says so on its
health (`dockgate.v1.Store`) and its staleness gauge, and refuses admin writes with UNAVAILABLE;
with `--max-staleness` it stops deciding instead. Once the store is back they catch up without a
restart, and an import the store died during is wholly there or wholly absent on every replica.
"""

from __future__ import annotations

import json
import threading
from functools import partial
from pathlib import Path
from typing import Any

import grpc
import pytest

from dockgate import (
    AdminClient,
    Client,
    Outcome,
    RevisionNotReachedError,
    UnavailableError,
)
from dockgate.v1 import authorizer_pb2, authorizer_pb2_grpc
from dockgate_server.frontends.grpc_port import STORE_HEALTH
from tests.postgres_cluster import PostgresCluster
from tests.server.service.conftest import TOKEN, RunningServer
from tests.server.service.replicas import (
    ACCOUNT,
    ADAPTERS,
    envoy_status,
    health_status,
    replicas,
    scrape,
    settle,
)
from tests.server.store.fleet_bundles import large_bundle

READER = f"arn:aws:iam::{ACCOUNT}:user/reader"
PUSHER = f"arn:aws:iam::{ACCOUNT}:user/ci/pusher"
APP = f"arn:aws:ecr:us-east-1:{ACCOUNT}:repository/team-a/app"
TOOLS = f"arn:aws:ecr:us-east-1:{ACCOUNT}:repository/team-b/tools"
PULL = "ecr:BatchGetImage"
PUSH = "ecr:PutImage"
STALENESS = "dockgate_store_staleness_seconds"
HANG_GUARD = 120
"""seconds after which a thread that never finished fails the test instead of hanging it"""


def _store_url(cluster: PostgresCluster) -> str:
    # a short connect timeout: a stopped server is noticed in a second, not five
    return f"{cluster.create_database()}?timeout=1"


def _grant(principal: str, action: str) -> dict[str, Any]:
    return {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"AWS": principal}, "Action": action}],
    }


def _raw_authorize(
    server: RunningServer, principal: str, action: str, resource: str, revision: int = 0
) -> authorizer_pb2.AuthorizeResponse | grpc.RpcError:
    """One Authorize call, no retries: its answer, or the error it failed with."""
    request = authorizer_pb2.AuthorizeRequest(
        principal=principal, action=action, resource=resource, at_least_revision=revision
    )
    with grpc.insecure_channel(server.decision) as channel:
        try:
            answer: authorizer_pb2.AuthorizeResponse = authorizer_pb2_grpc.AuthorizerStub(
                channel
            ).Authorize(request, timeout=10)
        except grpc.RpcError as error:
            return error
        return answer


def _unavailable(answer: authorizer_pb2.AuthorizeResponse | grpc.RpcError) -> bool:
    return isinstance(answer, grpc.RpcError) and answer.code() is grpc.StatusCode.UNAVAILABLE


def test_a_stopped_store_leaves_every_replica_on_its_last_snapshot(
    own_postgres_cluster: PostgresCluster, tmp_path: Path
) -> None:
    url = _store_url(own_postgres_cluster)
    with replicas(tmp_path, url) as fleet:
        with AdminClient(fleet[0].admin, TOKEN) as admin:
            revision = admin.set_repository_policy(TOOLS, _grant(READER, PUSH))
        for server in fleet:
            with Client(server.decision) as client:
                assert client.authorize(READER, PUSH, TOOLS, at_least_revision=revision).allowed
            assert health_status(server, STORE_HEALTH) == "SERVING"

        own_postgres_cluster.stop()
        for server in fleet:
            settle(
                partial(health_status, server, STORE_HEALTH),
                lambda status: status == "NOT_SERVING",
                f"the store health of {server.decision}",
            )
            # still deciding, from the last snapshot: the write before the stop, nothing older
            assert health_status(server) == "SERVING"
            with Client(server.decision) as client:
                decision = client.authorize(READER, PUSH, TOOLS)
                assert decision.allowed and decision.revision == revision
                assert client.authorize(READER, "ecr:DeleteRepository", APP).outcome is (
                    Outcome.EXPLICITLY_DENIED
                )
                with pytest.raises(RevisionNotReachedError):
                    client.authorize(READER, PUSH, TOOLS, at_least_revision=revision + 1)
            staleness = settle(
                partial(scrape, server, STALENESS),
                lambda seconds: seconds is not None and seconds > 0.5,
                f"the staleness gauge of {server.decision}",
            )
            assert staleness is not None and staleness > 0.5
            with (
                AdminClient(server.admin, TOKEN) as admin,
                pytest.raises(UnavailableError) as refused,
            ):
                admin.set_repository_policy(TOOLS, _grant(READER, PULL))
            assert refused.value.code is grpc.StatusCode.UNAVAILABLE
            assert refused.value.reason == "STORE_UNAVAILABLE"
            assert refused.value.message.startswith(f"store `{url}`: unavailable: ")

        own_postgres_cluster.start()
        for server in fleet:
            settle(
                partial(health_status, server, STORE_HEALTH),
                lambda status: status == "SERVING",
                f"the store health of {server.decision} once the store is back",
            )
        # caught up without a restart: a write through one is read on the others
        with AdminClient(fleet[1].admin, TOKEN) as admin:
            revoked = admin.delete_repository_policy(TOOLS)
        assert revoked == revision + 1
        for server in fleet:
            with Client(server.decision) as client:
                decision = client.authorize(READER, PUSH, TOOLS, at_least_revision=revoked)
            assert decision.outcome is Outcome.IMPLICITLY_DENIED
            staleness = settle(
                partial(scrape, server, STALENESS),
                lambda seconds: seconds is not None and seconds < 0.5,
                f"the staleness gauge of {server.decision} once the store is back",
            )


def test_past_max_staleness_a_replica_refuses_to_decide(
    own_postgres_cluster: PostgresCluster, tmp_path: Path
) -> None:
    url = _store_url(own_postgres_cluster)
    with replicas(tmp_path, url, "--max-staleness", "1", *ADAPTERS, count=2) as fleet:
        with AdminClient(fleet[0].admin, TOKEN) as admin:
            revision = admin.set_repository_policy(TOOLS, _grant(READER, PUSH))
            password = admin.get_login_password(PUSHER).password
        for server in fleet:
            answer = _raw_authorize(server, READER, PUSH, TOOLS, revision)
            assert isinstance(answer, authorizer_pb2.AuthorizeResponse)
            assert answer.outcome == authorizer_pb2.OUTCOME_ALLOWED
            assert health_status(server) == "SERVING"
            assert envoy_status(server, password, "/v2/team-a/app/manifests/v1") == 200

        own_postgres_cluster.stop()
        for server in fleet:
            # until the bound passes, the last snapshot answers; then UNAVAILABLE, never Allowed
            # from policy older than the bound
            last = settle(
                partial(_raw_authorize, server, READER, PUSH, TOOLS),
                _unavailable,
                f"decisions of {server.decision} past --max-staleness",
            )
            assert isinstance(last, grpc.RpcError)
            assert "--max-staleness 1: the store last answered" in str(last.details())
            settle(
                partial(health_status, server),
                lambda status: status == "NOT_SERVING",
                f"the health of {server.decision} past --max-staleness",
            )
            assert health_status(server, "dockgate.v1.Authorizer") == "NOT_SERVING"
            with Client(server.decision, timeout=3) as client:
                with pytest.raises(UnavailableError) as refused:
                    client.authorize(READER, PULL, APP)
                assert refused.value.reason == "STORE_UNAVAILABLE"
                # a batch is refused whole, not item by item
                with pytest.raises(UnavailableError):
                    client.authorize_many([{"principal": READER, "action": PULL, "resource": APP}])
            # the registry gate fails closed too: 503, the registry's "try again"
            assert envoy_status(server, password, "/v2/team-a/app/manifests/v1") == 503

        own_postgres_cluster.start()
        for server in fleet:
            settle(
                partial(health_status, server),
                lambda status: status == "SERVING",
                f"the health of {server.decision} once the store is back",
            )
            answer = _raw_authorize(server, READER, PUSH, TOOLS)
            assert isinstance(answer, authorizer_pb2.AuthorizeResponse)
            assert answer.outcome == authorizer_pb2.OUTCOME_ALLOWED and answer.revision >= revision


def test_an_import_the_store_died_during_is_whole_or_absent_on_every_replica(
    own_postgres_cluster: PostgresCluster, tmp_path: Path
) -> None:
    url = _store_url(own_postgres_cluster)
    bundle = json.dumps(large_bundle(ACCOUNT, 3000, 1000))
    first, last = (f"arn:aws:iam::{ACCOUNT}:user/user-{index:05d}" for index in (0, 2999))
    with replicas(tmp_path, url) as fleet:
        with AdminClient(fleet[0].admin, TOKEN) as admin:
            before = admin.revision()
        outcome: list[int | BaseException] = []

        def import_big() -> None:
            try:
                with AdminClient(fleet[0].admin, TOKEN, timeout=HANG_GUARD) as admin:
                    outcome.append(admin.import_bundle(bundle))
            except BaseException as problem:
                outcome.append(problem)

        thread = threading.Thread(target=import_big, daemon=True)
        thread.start()
        # kill the server once the import is writing its rows, inside its transaction
        own_postgres_cluster.crash_during_insert(thread.is_alive)
        thread.join(HANG_GUARD)
        own_postgres_cluster.start()

        assert len(outcome) == 1
        imported = isinstance(outcome[0], int)
        if not imported:
            assert isinstance(outcome[0], UnavailableError), outcome[0]
        with AdminClient(fleet[1].admin, TOKEN) as admin:
            revision = settle(
                partial(_revision_or_none, admin),
                lambda found: found is not None,
                "the store's revision once it is back",
            )
        assert revision == (before + 1 if imported else before)
        for server in fleet:
            with Client(server.decision) as client:
                decisions = [
                    client.authorize(user, PULL, APP, at_least_revision=revision)
                    for user in (first, last)
                ]
            assert [d.allowed for d in decisions] == [imported, imported], server.decision


def _revision_or_none(admin: AdminClient) -> int | None:
    try:
        return admin.revision()
    except UnavailableError:
        return None
