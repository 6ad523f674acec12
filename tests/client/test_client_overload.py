"""An overloaded server's refusal (RESOURCE_EXHAUSTED) and gRPC's shedding (CANCELLED) are retried
with backoff, longer than for an unreachable server, and end as errors, never as decisions."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
import pytest

import dockgate
import dockgate._client
from dockgate import AsyncClient, Client, Outcome
from dockgate.v1 import authorizer_pb2
from tests.client.test_client_errors import ACTION, PRINCIPAL, RESOURCE, _FailedCall

ALLOWED = authorizer_pb2.AuthorizeResponse(outcome=authorizer_pb2.OUTCOME_ALLOWED, revision=3)


class _Stub:
    """Answers `Authorize` with the failures given, then with ALLOWED."""

    def __init__(self, *failures: _FailedCall) -> None:
        self.failures = list(failures)
        self.calls = 0

    def Authorize(self, request: Any, timeout: float) -> authorizer_pb2.AuthorizeResponse:  # noqa: N802 - the stub's name
        self.calls += 1
        if self.failures:
            raise self.failures.pop(0)
        return ALLOWED


class _AsyncStub(_Stub):
    async def Authorize(  # type: ignore[override]  # noqa: N802
        self, request: Any, timeout: float
    ) -> authorizer_pb2.AuthorizeResponse:
        return super().Authorize(request, timeout)


@pytest.fixture
def pauses(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, grpc.StatusCode]]:
    """The backoffs the client asks for, without waiting them."""
    asked: list[tuple[int, grpc.StatusCode]] = []
    real = dockgate._client._backoff

    def backoff(attempt: int, code: grpc.StatusCode = grpc.StatusCode.UNAVAILABLE) -> float:
        asked.append((attempt, code))
        assert real(attempt, code) > 0
        return 0.0

    monkeypatch.setattr(dockgate._client, "_backoff", backoff)
    return asked


def _overloaded() -> _FailedCall:
    return _FailedCall(grpc.StatusCode.RESOURCE_EXHAUSTED, "OVERLOADED")


def test_an_overload_is_retried_with_backoff_then_decided(
    pauses: list[tuple[int, grpc.StatusCode]],
) -> None:
    stub = _Stub(_overloaded(), _FailedCall(grpc.StatusCode.CANCELLED))
    with Client("127.0.0.1:1") as client:
        client._stub = stub  # type: ignore[assignment]
        decision = client.authorize(PRINCIPAL, ACTION, RESOURCE)
    assert decision.outcome is Outcome.ALLOWED
    assert stub.calls == 3
    assert pauses == [(0, grpc.StatusCode.RESOURCE_EXHAUSTED), (1, grpc.StatusCode.CANCELLED)]


def test_a_lasting_overload_is_an_overloaded_error(
    pauses: list[tuple[int, grpc.StatusCode]],
) -> None:
    stub = _Stub(*[_overloaded() for _ in range(10)])
    with Client("127.0.0.1:1") as client:
        client._stub = stub  # type: ignore[assignment]
        with pytest.raises(dockgate.OverloadedError) as raised:
            client.authorize(PRINCIPAL, ACTION, RESOURCE)
    assert raised.value.reason == "OVERLOADED"
    assert stub.calls == 1 + dockgate._client.RETRIES


def test_the_async_client_retries_an_overload_the_same(
    pauses: list[tuple[int, grpc.StatusCode]],
) -> None:
    async def run() -> None:
        async with AsyncClient("127.0.0.1:1") as client:
            client._stub = _AsyncStub(_overloaded())  # type: ignore[assignment]
            decision = await client.authorize(PRINCIPAL, ACTION, RESOURCE)
            assert decision.outcome is Outcome.ALLOWED
            client._stub = _AsyncStub(*[_overloaded() for _ in range(10)])  # type: ignore[assignment]
            with pytest.raises(dockgate.OverloadedError):
                await client.authorize(PRINCIPAL, ACTION, RESOURCE)

    asyncio.run(run())
    assert pauses[0] == (0, grpc.StatusCode.RESOURCE_EXHAUSTED)


def test_an_overloaded_server_gets_longer_backoffs_than_an_unreachable_one() -> None:
    for attempt in range(3):
        unreachable = dockgate._client._backoff(attempt, grpc.StatusCode.UNAVAILABLE)
        overloaded = dockgate._client._backoff(attempt, grpc.StatusCode.RESOURCE_EXHAUSTED)
        # the jitter is at most a factor of 2: the scaled range starts above the plain one
        assert overloaded > unreachable
