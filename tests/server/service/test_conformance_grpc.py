"""Over a real server, through both clients: Authorize, BatchAuthorize and Simulate decide every
conformance case exactly as the in-process engine does."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from dockgate import AdminClient, AsyncClient, AuthorizeItem, Client, Decision
from dockgate.v1 import admin_pb2
from dockgate_server.policy.parse import load_json
from dockgate_server.simulate import ERROR, run_case
from dockgate_server.store.case_bundle import case_to_bundle
from tests.server.service.conftest import RunningServer
from tests.server.store.test_case_bundle import supplies_store_keys

CONFORMANCE = Path(__file__).parents[2] / "conformance"


def _cases() -> list[dict[str, Any]]:
    cases = []
    for corpus in sorted(CONFORMANCE.glob("*.jsonl")):
        cases += [
            load_json(line)
            for line in corpus.read_text(encoding="utf-8").splitlines()
            if line.strip()
        ]
    return cases


CASES = _cases()


def test_simulate_through_both_clients(shared_server: RunningServer) -> None:
    async def simulate_all() -> list[str]:
        async with AsyncClient(shared_server.decision) as client:
            return [(await client.simulate(case)).decision for case in CASES]

    with Client(shared_server.decision) as client:
        synchronous = [client.simulate(case).decision for case in CASES]
    asynchronous = asyncio.run(simulate_all())
    expected = [run_case(case).decision for case in CASES]
    assert synchronous == expected
    assert asynchronous == expected


def test_authorize_and_batch_on_each_case_imported(shared_server: RunningServer) -> None:
    """Each case's bundle replaces the last; cases with a session policy are left to Simulate
    (the store learns sessions with the temporary-credentials issue)."""
    decided = 0
    with (
        AdminClient(shared_server.admin, shared_server.token) as admin,
        Client(shared_server.decision) as client,
    ):
        for case in CASES:
            if (
                case.get("expect") == ERROR
                or case.get("sessionPolicy") is not None
                or supplies_store_keys(case)
            ):
                continue
            converted = case_to_bundle(case)
            admin.stub.SetOrganization(
                admin_pb2.OrganizationDocument(organization=""), metadata=admin.metadata
            )
            revision = admin.import_bundle(converted.bundle, replace=True)
            question = (converted.principal, converted.action, converted.resource)
            single = client.authorize(*question, converted.context, at_least_revision=revision)
            batch = client.authorize_many([AuthorizeItem(*question, converted.context)] * 2)
            expected = run_case(case).decision
            assert single.outcome == expected, (case["id"], json.dumps(converted.bundle))
            assert all(isinstance(b, Decision) and b.outcome == expected for b in batch), case["id"]
            decided += 1
    assert decided >= 70


def test_every_outcome_is_spelled_as_aws_does(shared_server: RunningServer) -> None:
    with Client(shared_server.decision) as client:
        decision = client.authorize(
            principal="arn:aws:iam::111122223333:user/reader",
            action="ecr:BatchGetImage",
            resource="arn:aws:ecr:us-east-1:111122223333:repository/team-b/tools",
            context={"aws:SourceIp": "203.0.113.7"},
            explain=True,
        )
    assert decision.outcome.value in {"Allowed", "ImplicitlyDenied", "ExplicitlyDenied"}
    assert decision.reasons


@pytest.fixture(autouse=True)
def _no_leftover_loop() -> None:
    asyncio.set_event_loop_policy(None)
