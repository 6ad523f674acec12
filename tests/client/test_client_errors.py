"""The client's public surface: `__all__`, the error tree (never a grpc.RpcError), deadlines,
retries, and results as frozen dataclasses with AWS's spellings."""

from __future__ import annotations

import asyncio
import dataclasses
import socket
from collections.abc import Iterator
from enum import StrEnum
from typing import Any

import grpc
import pytest
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2  # type: ignore[import-untyped]

import dockgate
import dockgate._client
from dockgate import (
    AdminClient,
    AsyncClient,
    AuthorizeItem,
    Client,
    Credentials,
    Decision,
    Finding,
    Outcome,
    Reason,
    SimulationResult,
)
from dockgate._errors import from_rpc_error
from dockgate._wire import decision_from_wire
from dockgate.v1 import authorizer_pb2

PRINCIPAL = "arn:aws:iam::111122223333:user/reader"
ACTION = "ecr:BatchGetImage"
RESOURCE = "arn:aws:ecr:us-east-1:111122223333:repository/team-a/app"


def test_all_is_pinned() -> None:
    assert dockgate.__all__ == [
        "Access",
        "AccessChange",
        "AccessDeniedError",
        "AccessFinding",
        "AdminClient",
        "AsyncClient",
        "AuthorizeItem",
        "Client",
        "ConditionalStatement",
        "Credentials",
        "Decision",
        "DockgateError",
        "Finding",
        "InternalError",
        "InvalidRequestError",
        "LoginPassword",
        "NotFoundError",
        "Outcome",
        "OverloadedError",
        "Reason",
        "RevisionNotReachedError",
        "Session",
        "SimulationResult",
        "TimeoutError",
        "UnauthenticatedError",
        "UnavailableError",
        "WriteRefusedError",
        "__version__",
    ]
    assert all(hasattr(dockgate, name) for name in dockgate.__all__)


def test_every_error_is_a_dockgate_error_and_none_is_a_grpc_error() -> None:
    errors = [getattr(dockgate, name) for name in dockgate.__all__ if name.endswith("Error")]
    assert len(errors) == 11
    for error in errors:
        assert issubclass(error, dockgate.DockgateError)
        assert issubclass(error, Exception)
        assert not issubclass(error, grpc.RpcError)


# -- nothing listening; a peer that never answers -------------------------------------------------


@pytest.fixture
def closed_port() -> int:
    """A port nothing listens on (it was bound a moment ago, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts TCP connections and never speaks HTTP/2."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        yield listener.getsockname()[1]


@pytest.fixture
def counted_retries(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The retry attempts the client makes, without waiting between them."""
    attempts: list[int] = []

    def backoff(attempt: int, code: grpc.StatusCode = grpc.StatusCode.UNAVAILABLE) -> float:
        attempts.append(attempt)
        return 0.0

    monkeypatch.setattr(dockgate._client, "_backoff", backoff)
    return attempts


def test_nothing_listening_is_unavailable_after_the_retries(
    closed_port: int, counted_retries: list[int]
) -> None:
    with Client(f"127.0.0.1:{closed_port}", timeout=5) as client:
        with pytest.raises(dockgate.UnavailableError) as raised:
            client.authorize(PRINCIPAL, ACTION, RESOURCE)
        with pytest.raises(dockgate.UnavailableError):
            client.authorize_many([AuthorizeItem(PRINCIPAL, ACTION, RESOURCE)])
        with pytest.raises(dockgate.UnavailableError):
            client.simulate({"id": "c", "request": {"principal": PRINCIPAL}})
    assert raised.value.code is grpc.StatusCode.UNAVAILABLE
    assert not isinstance(raised.value, grpc.RpcError)
    assert counted_retries == [0, 1, 2] * 3  # RETRIES attempts after the first, every call


def test_the_async_client_is_unavailable_after_the_retries(
    closed_port: int, counted_retries: list[int]
) -> None:
    async def run() -> dockgate.DockgateError:
        async with AsyncClient(f"127.0.0.1:{closed_port}", timeout=5) as client:
            with pytest.raises(dockgate.UnavailableError) as raised:
                await client.authorize(PRINCIPAL, ACTION, RESOURCE)
            with pytest.raises(dockgate.UnavailableError):
                await client.authorize_many(
                    [{"principal": PRINCIPAL, "action": ACTION, "resource": RESOURCE}]
                )
        return raised.value

    error = asyncio.run(run())
    assert error.code is grpc.StatusCode.UNAVAILABLE
    assert not isinstance(error, grpc.RpcError)
    assert counted_retries == [0, 1, 2] * 2


def test_the_admin_client_does_not_retry_a_write(
    closed_port: int, counted_retries: list[int]
) -> None:
    with (
        AdminClient(f"127.0.0.1:{closed_port}", "token", timeout=5) as admin,
        pytest.raises(dockgate.UnavailableError) as raised,
    ):
        admin.put_repository(RESOURCE)
    assert not isinstance(raised.value, grpc.RpcError)
    assert counted_retries == []


def test_the_admin_client_needs_a_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DOCKGATE_ADMIN_TOKEN", raising=False)
    with pytest.raises(ValueError, match="DOCKGATE_ADMIN_TOKEN"):
        AdminClient("127.0.0.1:1")


@pytest.mark.parametrize("timeout", [0.001, 0.05])
def test_a_tiny_timeout_is_a_timeout(silent_port: int, timeout: float) -> None:
    with (
        Client(f"127.0.0.1:{silent_port}") as client,
        pytest.raises((dockgate.TimeoutError, dockgate.UnavailableError)) as raised,
    ):
        client.authorize(PRINCIPAL, ACTION, RESOURCE, timeout=timeout)
    assert not isinstance(raised.value, grpc.RpcError)
    assert raised.value.code in {grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.UNAVAILABLE}


def test_the_default_deadline_of_a_client_applies(silent_port: int) -> None:
    with (
        Client(f"127.0.0.1:{silent_port}", timeout=0.05) as client,
        pytest.raises((dockgate.TimeoutError, dockgate.UnavailableError)),
    ):
        client.authorize(PRINCIPAL, ACTION, RESOURCE)


def test_the_async_client_times_out_the_same(silent_port: int) -> None:
    async def run() -> dockgate.DockgateError:
        async with AsyncClient(f"127.0.0.1:{silent_port}", timeout=0.05) as client:
            with pytest.raises((dockgate.TimeoutError, dockgate.UnavailableError)) as raised:
                await client.authorize(PRINCIPAL, ACTION, RESOURCE)
        return raised.value

    error = asyncio.run(run())
    assert not isinstance(error, grpc.RpcError)
    assert error.code in {grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.UNAVAILABLE}


# -- the error tree, built from the status and its ErrorInfo --------------------------------------


class _FailedCall(grpc.RpcError):
    """What grpc raises for a failed call: a code, details and trailing metadata."""

    def __init__(self, code: grpc.StatusCode, reason: str = "", **metadata: str) -> None:
        super().__init__()
        self._code = code
        self._trailing: tuple[tuple[str, bytes], ...] = ()
        if reason:
            detail = any_pb2.Any()
            detail.Pack(
                error_details_pb2.ErrorInfo(reason=reason, domain="dockgate.dev", metadata=metadata)
            )
            status = status_pb2.Status(code=code.value[0], message="m", details=[detail])
            self._trailing = (("grpc-status-details-bin", status.SerializeToString()),)

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return "what went wrong"

    def trailing_metadata(self) -> Any:
        return self._trailing


@pytest.mark.parametrize(
    ("code", "reason", "expected"),
    [
        (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_PRINCIPAL", dockgate.InvalidRequestError),
        (grpc.StatusCode.NOT_FOUND, "NOT_FOUND", dockgate.NotFoundError),
        (grpc.StatusCode.NOT_FOUND, "WRITE_REFUSED", dockgate.NotFoundError),
        (grpc.StatusCode.FAILED_PRECONDITION, "WRITE_REFUSED", dockgate.WriteRefusedError),
        (
            grpc.StatusCode.FAILED_PRECONDITION,
            "REVISION_NOT_REACHED",
            dockgate.RevisionNotReachedError,
        ),
        (grpc.StatusCode.UNAUTHENTICATED, "MISSING_TOKEN", dockgate.UnauthenticatedError),
        (grpc.StatusCode.UNAVAILABLE, "", dockgate.UnavailableError),
        (grpc.StatusCode.DEADLINE_EXCEEDED, "", dockgate.TimeoutError),
        (grpc.StatusCode.INTERNAL, "INTERNAL_FAILURE", dockgate.InternalError),
        (grpc.StatusCode.RESOURCE_EXHAUSTED, "OVERLOADED", dockgate.OverloadedError),
        (grpc.StatusCode.RESOURCE_EXHAUSTED, "", dockgate.OverloadedError),
        (grpc.StatusCode.CANCELLED, "", dockgate.DockgateError),
        (grpc.StatusCode.UNKNOWN, "", dockgate.DockgateError),
    ],
)
def test_each_status_becomes_its_error(
    code: grpc.StatusCode, reason: str, expected: type[dockgate.DockgateError]
) -> None:
    error = from_rpc_error(_FailedCall(code, reason, field="principal"))
    assert type(error) is expected
    assert error.code is code
    assert error.reason == reason
    assert error.message == "what went wrong"
    assert error.field == ("principal" if reason else None)


# -- results: frozen dataclasses and AWS spellings ------------------------------------------------


def test_outcome_is_a_str_enum_with_aws_spellings() -> None:
    assert issubclass(Outcome, StrEnum)
    assert {o.name: o.value for o in Outcome} == {
        "ALLOWED": "Allowed",
        "IMPLICITLY_DENIED": "ImplicitlyDenied",
        "EXPLICITLY_DENIED": "ExplicitlyDenied",
    }
    assert Outcome("ExplicitlyDenied") is Outcome.EXPLICITLY_DENIED
    assert str(Outcome.ALLOWED) == "Allowed"
    assert f"{Outcome.IMPLICITLY_DENIED}" == "ImplicitlyDenied"
    assert isinstance(Outcome.ALLOWED, str)


@pytest.mark.parametrize(
    "value",
    [
        Decision(Outcome.ALLOWED, 3, (Reason("IdentityPolicy", "d", "Allow", "p", 0, "Sid"),)),
        Reason("Request", "no statement allows"),
        SimulationResult("case", "Allowed", "Allowed", True),
        AuthorizeItem(PRINCIPAL, ACTION, RESOURCE),
        Finding("error", "/Statement/0/Effect", "must be Allow or Deny"),
        Credentials(),
    ],
    ids=lambda value: type(value).__name__,
)
def test_results_are_frozen_dataclasses(value: Any) -> None:
    kind: Any = type(value)
    assert kind.__dataclass_params__.frozen
    assert dataclasses.is_dataclass(kind)
    first = dataclasses.fields(value)[0].name
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(value, first, None)
    assert hash(value) == hash(dataclasses.replace(value))


def test_a_decision_reads_as_data() -> None:
    allowed = Decision(Outcome.ALLOWED, 7)
    assert allowed.allowed
    assert not Decision(Outcome.EXPLICITLY_DENIED, 7).allowed
    assert allowed.reasons == ()
    assert allowed.errors == ()
    assert allowed == Decision(Outcome("Allowed"), 7)


@pytest.mark.parametrize(
    ("wire", "outcome"),
    [
        (authorizer_pb2.OUTCOME_ALLOWED, Outcome.ALLOWED),
        (authorizer_pb2.OUTCOME_IMPLICITLY_DENIED, Outcome.IMPLICITLY_DENIED),
        (authorizer_pb2.OUTCOME_EXPLICITLY_DENIED, Outcome.EXPLICITLY_DENIED),
        (authorizer_pb2.OUTCOME_UNSPECIFIED, Outcome.IMPLICITLY_DENIED),
        (99, Outcome.IMPLICITLY_DENIED),
    ],
)
def test_an_outcome_read_from_the_wire_is_never_an_unearned_allow(
    wire: int, outcome: Outcome
) -> None:
    response = authorizer_pb2.AuthorizeResponse(revision=4)
    response.outcome = wire  # type: ignore[assignment]
    decision = decision_from_wire(response)
    assert decision.outcome is outcome
    assert decision.revision == 4
