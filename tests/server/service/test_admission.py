"""Admission on the decision port: a worker at its limit, or a call whose deadline is too near, is
refused at once, with RESOURCE_EXHAUSTED and `OVERLOADED` (Envoy's `Check` with a denied 503), and
never decided; the calls it admits are decided as always. The limit is tiny here, so that the
test does not depend on how fast anything runs."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import grpc
import pytest
from envoy.service.auth.v3 import attribute_context_pb2, external_auth_pb2, external_auth_pb2_grpc
from prometheus_client import CollectorRegistry

import dockgate
import dockgate_server.data
from dockgate import AsyncClient, Decision, Outcome
from dockgate_server.frontends.decision import DecisionDoor, DecisionSettings
from dockgate_server.frontends.door import Opened, Site
from dockgate_server.frontends.envoy import EnvoyDoor
from dockgate_server.frontends.registry import RegistrySettings
from dockgate_server.frontends.runtime import ProcessRuntime
from dockgate_server.policy.parse import load_json
from dockgate_server.service.admission import Admission, refusal_for
from dockgate_server.service.interceptors import CallTracker
from dockgate_server.service.metrics import Metrics
from dockgate_server.store.bundle import bundle_to_fleet
from dockgate_server.store.model import Repository
from dockgate_server.store.port import open_store

ACCOUNT = "111122223333"
READER = f"arn:aws:iam::{ACCOUNT}:user/reader"
PULL = "ecr:BatchGetImage"
APP = f"arn:aws:ecr:us-east-1:{ACCOUNT}:repository/team-a/app"
LIMIT = 2
LIVENESS = 30.0
"""Seconds a test waits for something that must happen before it gives up (not a latency goal)."""


# -- the wrapper alone ----------------------------------------------------------------------------


class _Context:
    """The parts of a servicer context the admission reads and a refusal writes."""

    def __init__(self, remaining: float | None) -> None:
        self.remaining = remaining
        self.aborted: grpc.Status | None = None

    def time_remaining(self) -> float | None:
        return self.remaining

    async def abort_with_status(self, status: grpc.Status) -> None:
        self.aborted = status
        raise _AbortedError


class _AbortedError(Exception):
    pass


def _guarded(admission: Admission, response_type: str) -> tuple[CallTracker, Any, list[object]]:
    decided: list[object] = []

    async def decide(request: Any, context: Any) -> str:
        decided.append(request)
        return "decided"

    calls = CallTracker(admission)
    return calls, calls.track(decide, refusal_for(response_type)), decided


@pytest.mark.parametrize("remaining", [0.0, 0.0005, 0.0019])
def test_a_call_whose_deadline_is_nearly_gone_is_refused(remaining: float) -> None:
    calls, handler, decided = _guarded(Admission(reserve=0.002), "dockgate.v1.AuthorizeResponse")
    context = _Context(remaining)
    with pytest.raises(_AbortedError):
        asyncio.run(handler("request", context))
    assert decided == []
    assert context.aborted is not None
    assert context.aborted.code is grpc.StatusCode.RESOURCE_EXHAUSTED
    details = dict(context.aborted.trailing_metadata)["grpc-status-details-bin"]
    assert b"OVERLOADED" in details
    assert calls.active == 0 and calls.admission is not None and calls.admission.refused == 1


@pytest.mark.parametrize("remaining", [None, 0.002, 5.0])
def test_a_call_with_time_left_or_no_deadline_is_decided(remaining: float | None) -> None:
    calls, handler, decided = _guarded(Admission(reserve=0.002), "dockgate.v1.AuthorizeResponse")
    assert asyncio.run(handler("request", _Context(remaining))) == "decided"
    assert decided == ["request"]
    assert calls.active == 0 and calls.started == 1


def test_a_worker_at_its_limit_refuses_the_next_call() -> None:
    calls, handler, decided = _guarded(Admission(limit=1), "dockgate.v1.AuthorizeResponse")
    calls.active = 1  # one call in its handler already
    with pytest.raises(_AbortedError):
        asyncio.run(handler("request", _Context(None)))
    assert decided == []


def test_an_overloaded_envoy_check_is_denied_never_allowed() -> None:
    response_type = external_auth_pb2.CheckResponse.DESCRIPTOR.full_name
    calls, handler, decided = _guarded(Admission(limit=1), response_type)
    calls.active = 1
    answer = asyncio.run(handler("request", _Context(None)))
    assert decided == []
    assert isinstance(answer, external_auth_pb2.CheckResponse)
    assert answer.status.code != 0  # google.rpc OK would let Envoy pass the request
    assert answer.HasField("denied_response") and not answer.HasField("ok_response")
    assert answer.denied_response.status.code == 503


def test_a_limit_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="admission limit `0`"):
        Admission(limit=0)


# -- a decision port with a limit of two ----------------------------------------------------------


@pytest.fixture
def store_url(tmp_path: Path) -> Path:
    path = tmp_path / "store.sqlite3"
    sample = Path(dockgate_server.data.__file__).parent / "sample-bundle.json"
    with open_store(path) as store:
        store.import_fleet(bundle_to_fleet(load_json(sample.read_text())))
    return path


class _Port:
    """The decision door on 127.0.0.1 admitting LIMIT calls at once, with Envoy's door beside."""

    def __init__(self, store_url: Path, folder: Path) -> None:
        self.runtime = ProcessRuntime.start(store_url, Metrics(CollectorRegistry()))
        self.state = self.runtime.state
        self.folder = folder
        self.opened: list[Opened] = []
        self.address = ""

    async def __aenter__(self) -> _Port:
        registry = RegistrySettings(account=ACCOUNT, region="us-east-1")
        site = Site(self.runtime, self.folder, registry)
        decision = DecisionSettings(listen="127.0.0.1:0", max_in_flight=LIMIT)
        self.opened = [
            await DecisionDoor().open(decision, site),
            await EnvoyDoor().open(True, site),
        ]
        for door in self.opened:
            await door.serve()
        self.address = f"127.0.0.1:{self.opened[0].ports['decision_port']}"
        return self

    async def __aexit__(self, *_: object) -> None:
        for door in self.opened:
            await door.drain(0.0)
        self.runtime.stop()


async def _wait_for(condition: Any) -> None:
    deadline = asyncio.get_running_loop().time() + LIVENESS
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "the condition never came true"
        await asyncio.sleep(0.01)


def _check_request() -> external_auth_pb2.CheckRequest:
    http = attribute_context_pb2.AttributeContext.HttpRequest(
        method="GET", path="/v2/team-a/app/manifests/latest", host="registry.test", scheme="https"
    )
    return external_auth_pb2.CheckRequest(
        attributes=attribute_context_pb2.AttributeContext(
            request=attribute_context_pb2.AttributeContext.Request(http=http)
        )
    )


def test_a_port_at_its_limit_refuses_at_once_and_decides_once_calls_finish(
    store_url: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("dockgate_server.service.authorizer.REVISION_WAIT", LIVENESS)
    asyncio.run(_at_the_limit(store_url, tmp_path))


async def _at_the_limit(store_url: Path, folder: Path) -> None:
    async with _Port(store_url, folder) as port:
        state = port.state
        wanted = state.snapshot.revision + 1
        async with AsyncClient(port.address, timeout=LIVENESS * 2) as client:
            # LIMIT calls wait in their handlers for a revision not written yet
            waiters = [
                asyncio.create_task(client.authorize(READER, PULL, APP, at_least_revision=wanted))
                for _ in range(LIMIT)
            ]
            await _wait_for(lambda: state.waiting == LIMIT)
            refused = await asyncio.gather(
                *(client.authorize(READER, PULL, APP, timeout=LIVENESS) for _ in range(20)),
                return_exceptions=True,
            )
            async with grpc.aio.insecure_channel(port.address) as channel:
                check = external_auth_pb2_grpc.AuthorizationStub(channel).Check
                overloaded_check = await check(_check_request(), timeout=LIVENESS)
            # a write releases the waiters, who are decided at it
            with open_store(store_url) as store:
                store.put_repository(Repository(f"{APP}-new"))
            state.nudge()
            released = await asyncio.wait_for(asyncio.gather(*waiters), LIVENESS)
            after = await client.authorize(READER, PULL, APP)
    assert not any(isinstance(r, Decision) for r in refused), "a refused call was decided"
    assert all(isinstance(r, dockgate.OverloadedError) for r in refused), refused
    assert {r.reason for r in refused if isinstance(r, dockgate.DockgateError)} == {"OVERLOADED"}
    assert overloaded_check.HasField("denied_response")
    assert overloaded_check.denied_response.status.code == 503
    assert all(d.outcome is Outcome.ALLOWED and d.revision >= wanted for d in released)
    assert after.outcome is Outcome.ALLOWED
