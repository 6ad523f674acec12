"""Bad input on the decision port: INVALID_ARGUMENT with an ErrorInfo naming the field, never a
decision, never a crash, and the next call is served normally."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import grpc
import pytest

import dockgate
from dockgate import AsyncClient, AuthorizeItem, Client, Decision, Outcome
from dockgate._errors import from_rpc_error
from dockgate.v1 import authorizer_pb2
from tests.server.service.conftest import RunningServer

ACCOUNT = "111122223333"
READER = f"arn:aws:iam::{ACCOUNT}:user/reader"
PULL = "ecr:BatchGetImage"
APP = f"arn:aws:ecr:us-east-1:{ACCOUNT}:repository/team-a/app"
GOOD: dict[str, Any] = {"principal": READER, "action": PULL, "resource": APP}

TOO_MANY_KEYS = {f"dockgate:key{i}": "x" for i in range(257)}
TOO_MANY_BYTES = {"dockgate:big": "x" * (64 * 1024 + 1)}
SPREAD_BYTES = {f"dockgate:part{i}": "y" * 300 for i in range(250)}
"""250 keys (under the key limit) holding 75,000 bytes together (over the size limit)"""
TOO_MANY_VALUES = {"dockgate:many": [""] * 1025}
"""one key, 1,025 empty strings: no bytes to speak of, one value past the limit"""
SPREAD_VALUES = {f"dockgate:few{i}": [""] * 100 for i in range(11)}
WIDE_BYTES = {"dockgate:wide": "€" * 30_000}
"""30,000 characters (under 64 Ki) that are 90,000 UTF-8 bytes (over)"""
REPOSITORY = f"arn:aws:ecr:us-east-1:{ACCOUNT}:repository/"

BAD_REQUESTS: list[tuple[str, dict[str, Any], str, str]] = [
    ("not an ARN", {"principal": "reader"}, "INVALID_PRINCIPAL", "principal"),
    ("no account", {"principal": "arn:aws:iam:::user/reader"}, "INVALID_PRINCIPAL", "principal"),
    (
        "short account",
        {"principal": "arn:aws:iam::1234:user/reader"},
        "INVALID_PRINCIPAL",
        "principal",
    ),
    (
        "unknown kind",
        {"principal": f"arn:aws:iam::{ACCOUNT}:banana/reader"},
        "INVALID_PRINCIPAL",
        "principal",
    ),
    ("empty principal", {"principal": ""}, "INVALID_PRINCIPAL", "principal"),
    ("no service", {"action": "BatchGetImage"}, "INVALID_ACTION", "action"),
    ("no name", {"action": "ecr:"}, "INVALID_ACTION", "action"),
    ("wildcard action", {"action": "ecr:Batch*"}, "INVALID_ACTION", "action"),
    ("spaced action", {"action": "ecr:Batch Get"}, "INVALID_ACTION", "action"),
    ("empty action", {"action": ""}, "INVALID_ACTION", "action"),
    ("not an ARN", {"resource": "team-a/app"}, "INVALID_RESOURCE", "resource"),
    ("wildcard resource", {"resource": APP[:-3] + "*"}, "INVALID_RESOURCE", "resource"),
    ("empty resource", {"resource": ""}, "INVALID_RESOURCE", "resource"),
    ("long principal", {"principal": READER + "x" * 3000}, "REQUEST_TOO_LARGE", "principal"),
    ("257 context keys", {"context": TOO_MANY_KEYS}, "REQUEST_TOO_LARGE", "context"),
    ("65 KiB context value", {"context": TOO_MANY_BYTES}, "REQUEST_TOO_LARGE", "context"),
    ("75 KB over many keys", {"context": SPREAD_BYTES}, "REQUEST_TOO_LARGE", "context"),
    ("1,025 empty values", {"context": TOO_MANY_VALUES}, "REQUEST_TOO_LARGE", "context"),
    ("1,100 values over keys", {"context": SPREAD_VALUES}, "REQUEST_TOO_LARGE", "context"),
    ("90 KB in 30,000 characters", {"context": WIDE_BYTES}, "REQUEST_TOO_LARGE", "context"),
    (
        "upper-case repository",
        {"resource": REPOSITORY + "Team-a/app"},
        "INVALID_RESOURCE",
        "resource",
    ),
    (
        "dot-dot repository",
        {"resource": REPOSITORY + "team-a/../app"},
        "INVALID_RESOURCE",
        "resource",
    ),
    (
        "NUL in repository",
        {"resource": REPOSITORY + "team-a/app\x00"},
        "INVALID_RESOURCE",
        "resource",
    ),
    (
        "control in repository",
        {"resource": REPOSITORY + "team-a/\x1bapp"},
        "INVALID_RESOURCE",
        "resource",
    ),
    ("empty repository", {"resource": REPOSITORY}, "INVALID_RESOURCE", "resource"),
    (
        "unknown partition",
        {"principal": f"arn:bogus:sts::{ACCOUNT}:assumed-role/deploy/x"},
        "INVALID_PRINCIPAL",
        "principal",
    ),
    ("empty key", {"context": {"": "x"}}, "INVALID_CONTEXT", "context"),
    (
        "key given twice",
        {"context": {"aws:SourceIp": "203.0.113.7", "AWS:SOURCEIP": "203.0.113.8"}},
        "INVALID_CONTEXT",
        "context",
    ),
]


@pytest.fixture(scope="module")
def client(shared_server: RunningServer) -> Iterator[Client]:
    with Client(shared_server.decision) as opened:
        yield opened


def _served_normally(client: Client) -> None:
    decision = client.authorize(**GOOD)
    assert decision.outcome is Outcome.ALLOWED


@pytest.mark.parametrize(
    ("changed", "reason", "field"),
    [
        pytest.param(changed, reason, field, id=name)
        for name, changed, reason, field in BAD_REQUESTS
    ],
)
def test_a_malformed_request_is_invalid_argument_naming_the_field(
    client: Client, changed: dict[str, Any], reason: str, field: str
) -> None:
    with pytest.raises(dockgate.InvalidRequestError) as raised:
        client.authorize(**{**GOOD, **changed})
    error = raised.value
    assert error.code is grpc.StatusCode.INVALID_ARGUMENT
    assert error.reason == reason
    assert error.field == field
    assert not isinstance(error, grpc.RpcError)
    _served_normally(client)


def test_the_limits_themselves_are_accepted(client: Client) -> None:
    keys = {f"dockgate:key{i}": "x" for i in range(256)}
    assert client.authorize(**GOOD, context=keys).outcome is Outcome.ALLOWED
    bytes_ = {"dockgate:big": "x" * (64 * 1024 - len("dockgate:big"))}
    assert client.authorize(**GOOD, context=bytes_).outcome is Outcome.ALLOWED
    values = {"dockgate:many": [""] * 1024}
    assert client.authorize(**GOOD, context=values).outcome is Outcome.ALLOWED


def test_four_million_empty_strings_are_refused_not_decided(shared_server: RunningServer) -> None:
    """About 8 MB on the wire (under the server's message limit): refused by count, before any
    value is copied, and the next call is served normally."""
    request = authorizer_pb2.AuthorizeRequest(**GOOD)
    request.context["dockgate:empty"].values.extend([""] * 4_000_000)
    with grpc.insecure_channel(shared_server.decision) as channel:
        call = channel.unary_unary(
            "/dockgate.v1.Authorizer/Authorize",
            request_serializer=authorizer_pb2.AuthorizeRequest.SerializeToString,
            response_deserializer=authorizer_pb2.AuthorizeResponse.FromString,
        )
        with pytest.raises(grpc.RpcError) as raised:
            call(request, timeout=30)
    error = from_rpc_error(raised.value)
    assert isinstance(error, dockgate.InvalidRequestError)
    assert (error.reason, error.field) == ("REQUEST_TOO_LARGE", "context")
    with Client(shared_server.decision) as client:
        _served_normally(client)


@pytest.mark.parametrize(
    "principal", [f"arn:aws-cn:iam::{ACCOUNT}:root", f"arn:aws-cn:iam::{ACCOUNT}:user/reader"]
)
def test_a_principal_of_another_partition_is_not_the_accounts(
    client: Client, principal: str
) -> None:
    assert client.authorize(f"arn:aws:iam::{ACCOUNT}:root", PULL, APP).outcome is Outcome.ALLOWED
    decision = client.authorize(principal, PULL, APP, explain=True)
    assert decision.outcome is Outcome.IMPLICITLY_DENIED


def test_an_oversized_batch_is_refused_whole(client: Client) -> None:
    with pytest.raises(dockgate.InvalidRequestError) as raised:
        client.authorize_many([AuthorizeItem(READER, PULL, APP)] * 1001)
    assert raised.value.reason == "REQUEST_TOO_LARGE"
    assert raised.value.field == "items"
    full = client.authorize_many([AuthorizeItem(READER, PULL, APP)] * 1000)
    assert len(full) == 1000
    assert all(isinstance(d, Decision) and d.outcome is Outcome.ALLOWED for d in full)


def test_a_bad_item_gets_its_own_error_and_the_others_are_decided(client: Client) -> None:
    items = [
        AuthorizeItem(READER, PULL, APP),
        *(AuthorizeItem(**{**GOOD, **changed}) for _, changed, _, _ in BAD_REQUESTS),
        AuthorizeItem(READER, "ecr:PutImage", APP),
    ]
    results = client.authorize_many(items)
    assert len(results) == len(items)
    first, *bad, last = results
    assert isinstance(first, Decision)
    assert first.outcome is Outcome.ALLOWED
    assert isinstance(last, Decision)
    assert last.outcome is Outcome.IMPLICITLY_DENIED
    for result, (name, _, reason, field) in zip(bad, BAD_REQUESTS, strict=True):
        assert isinstance(result, dockgate.InvalidRequestError), name
        assert (result.reason, result.field) == (reason, field), name
        assert result.code is grpc.StatusCode.INVALID_ARGUMENT


def test_the_async_client_reports_the_same(shared_server: RunningServer) -> None:
    async def run() -> None:
        async with AsyncClient(shared_server.decision) as client:
            for _, changed, reason, field in BAD_REQUESTS:
                with pytest.raises(dockgate.InvalidRequestError) as raised:
                    await client.authorize(**{**GOOD, **changed})
                assert (raised.value.reason, raised.value.field) == (reason, field)
            assert (await client.authorize(**GOOD)).outcome is Outcome.ALLOWED

    asyncio.run(run())


def test_a_field_of_the_wrong_wire_type_is_a_missing_field(shared_server: RunningServer) -> None:
    """`principal` sent as a number: protobuf keeps it as an unknown field, so the request has no
    principal, and says so."""
    valid = authorizer_pb2.AuthorizeRequest(action=PULL, resource=APP).SerializeToString()
    with grpc.insecure_channel(shared_server.decision) as channel:
        call: grpc.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(
            "/dockgate.v1.Authorizer/Authorize"
        )
        with pytest.raises(grpc.RpcError) as raised:
            call(b"\x08\x01" + valid, timeout=5)
    error = from_rpc_error(raised.value)
    assert isinstance(error, dockgate.InvalidRequestError)
    assert (error.reason, error.field) == ("INVALID_PRINCIPAL", "principal")


def test_bytes_that_are_not_a_message_are_invalid_argument(shared_server: RunningServer) -> None:
    with grpc.insecure_channel(shared_server.decision) as channel:
        call: grpc.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(
            "/dockgate.v1.Authorizer/Authorize"
        )
        with pytest.raises(grpc.RpcError) as raised:
            call(b"\xff\xff\xff", timeout=5)
    error = from_rpc_error(raised.value)
    assert isinstance(error, dockgate.InvalidRequestError)


def test_a_revision_far_ahead_is_not_reached(client: Client) -> None:
    with pytest.raises(dockgate.RevisionNotReachedError) as raised:
        client.authorize(**GOOD, at_least_revision=10**12)
    assert raised.value.code is grpc.StatusCode.FAILED_PRECONDITION
    assert raised.value.reason == "REVISION_NOT_REACHED"
    assert raised.value.field == "at_least_revision"
    _served_normally(client)
