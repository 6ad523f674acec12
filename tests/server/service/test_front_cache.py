"""The front cache answers a repeat of a request's bytes exactly as deciding it afresh would.

The servicer is driven through `authorize_wire`, the bytes-in, bytes-out method the decision port
registers, with the snapshot of a generated fleet; the reference servicer has every cache off.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import grpc
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

from dockgate._wire import authorize_request
from dockgate.v1 import authorizer_pb2
from dockgate_server.engine.cache import DecisionCache
from dockgate_server.engine.snapshot import Snapshot
from dockgate_server.service.authorizer import AuthorizerService
from dockgate_server.service.follow import SnapshotFollower
from dockgate_server.service.front_cache import FrontCache, FrontEntry
from dockgate_server.service.metrics import Metrics
from dockgate_server.service.state import DecisionState
from dockgate_server.store.model import Fleet, Role, Session
from dockgate_server.store.port import FleetStore, open_store
from tests.server.engine.test_snapshot_properties import SETTINGS, calls, fleets, stored

A = "111122223333"
ROLE = f"arn:aws:iam::{A}:role/worker"
SESSION = f"arn:aws:sts::{A}:assumed-role/worker/build"
NOW = 1_800_000_000.0
PULL = "ecr:BatchGetImage"
APP = f"arn:aws:ecr:us-east-1:{A}:repository/app"


class _Clock:
    def __init__(self, now: float) -> None:
        self.moment = now

    def now(self) -> float:
        return self.moment


@dataclass
class _PinnedState:
    """What the servicer reads of a `DecisionState`: one snapshot, a cache, a clock."""

    snapshot: Snapshot
    cache: DecisionCache
    clock: _Clock = field(default_factory=lambda: _Clock(NOW))

    async def at_least(self, revision: int, timeout: float) -> Snapshot | None:
        return self.snapshot if self.snapshot.revision >= revision else None


class _AbortedError(Exception):
    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        super().__init__(code, details)
        self.code, self.details = code, details


class _Context:
    async def abort_with_status(self, status: grpc.Status) -> None:
        raise _AbortedError(status.code, status.details)


def _servicer(snapshot: Snapshot, cache_size: int) -> AuthorizerService:
    state = _PinnedState(snapshot, DecisionCache(cache_size))
    return AuthorizerService(cast(DecisionState, state), Metrics(CollectorRegistry()))


def _answer(servicer: AuthorizerService, data: bytes) -> bytes | tuple[Any, str]:
    context = cast(grpc.aio.ServicerContext[object, object], _Context())
    try:
        return asyncio.run(servicer.authorize_wire(data, context))
    except _AbortedError as aborted:
        return aborted.code, aborted.details


@settings(SETTINGS, max_examples=120)
@given(data=st.data(), fleet=fleets())
def test_front_cache_answers_as_deciding_afresh(data: st.DataObject, fleet: Fleet) -> None:
    with stored(fleet) as store:
        snapshot = SnapshotFollower(store).build()
    fronted = _servicer(snapshot, cache_size=1000)
    fresh = _servicer(snapshot, cache_size=0)
    assert fronted.front is not None and fresh.front is None
    distinct = data.draw(st.lists(calls(fleet), min_size=1, max_size=6), label="calls")
    asked = data.draw(st.lists(st.sampled_from(distinct), min_size=1, max_size=20), label="asked")
    explain = data.draw(st.booleans(), label="explain")
    decided = False
    for call in asked + asked:  # every request is asked again at least once
        request = authorize_request(
            call.principal, call.action, call.resource, call.context, explain=explain
        )
        wire = request.SerializeToString()
        answer = _answer(fronted, wire)
        assert answer == _answer(fresh, wire)
        decided = decided or isinstance(answer, bytes)
    assert fronted.front.hits > 0 or not decided  # a refused request is never kept


@pytest.fixture
def session_store(tmp_path: Path) -> Iterator[FleetStore]:
    policy = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "ecr:*", "Resource": "*"}],
    }
    with open_store(tmp_path / "store.db") as store:
        store.import_fleet(Fleet(roles=(Role(A, "worker", inline={"all": policy}),)))
        store.put_session(Session(SESSION, "id-1", f"role/{A}/worker", ROLE, NOW - 60, NOW + 60))
        yield store


def test_an_issued_session_is_not_answered_from_the_front_cache_after_it_expires(
    session_store: FleetStore,
) -> None:
    servicer = _servicer(SnapshotFollower(session_store).build(), cache_size=1000)
    wire = authorize_request(SESSION, PULL, APP).SerializeToString()
    allowed = authorizer_pb2.AuthorizeResponse.FromString(cast(bytes, _answer(servicer, wire)))
    assert allowed.outcome == authorizer_pb2.OUTCOME_ALLOWED
    assert _answer(servicer, wire) == allowed.SerializeToString()
    assert servicer.front is not None and servicer.front.hits == 1
    cast(_PinnedState, servicer.state).clock.moment = NOW + 61
    expired = authorizer_pb2.AuthorizeResponse.FromString(cast(bytes, _answer(servicer, wire)))
    assert expired.outcome == authorizer_pb2.OUTCOME_IMPLICITLY_DENIED
    assert servicer.front.hits == 1


def test_bytes_that_are_no_request_are_refused_not_decided(session_store: FleetStore) -> None:
    servicer = _servicer(SnapshotFollower(session_store).build(), cache_size=1000)
    answer = _answer(servicer, b"\xff\xff\xff")
    assert isinstance(answer, tuple) and answer[0] is grpc.StatusCode.INVALID_ARGUMENT
    assert "not a valid message" in answer[1]


def test_a_new_revision_empties_the_front_cache() -> None:
    cache = FrontCache(maxsize=2)
    entry = FrontEntry(b"answer", "Allowed", math.inf)
    cache.put(1, b"a", entry)
    assert cache.get(1, b"a", lambda: NOW) == entry
    assert cache.get(2, b"a", lambda: NOW) is None
    cache.put(2, b"b", entry)
    assert len(cache) == 1 and cache.get(1, b"a", lambda: NOW) is None
    cache.put(1, b"late", entry)  # answered from a replaced snapshot: not kept
    assert cache.get(2, b"late", lambda: NOW) is None


def test_the_front_cache_keeps_at_most_maxsize_entries_dropping_the_oldest() -> None:
    cache = FrontCache(maxsize=2)
    entry = FrontEntry(b"answer", "Allowed", math.inf)
    for request in (b"a", b"b", b"c"):
        cache.put(1, request, entry)
    assert len(cache) == 2
    assert cache.get(1, b"a", lambda: NOW) is None
    assert cache.get(1, b"c", lambda: NOW) == entry


def test_an_entry_stops_at_its_instant() -> None:
    cache = FrontCache(maxsize=2)
    cache.put(1, b"a", FrontEntry(b"answer", "Allowed", NOW))
    assert cache.get(1, b"a", lambda: NOW - 1) is not None
    assert cache.get(1, b"a", lambda: NOW) is None
