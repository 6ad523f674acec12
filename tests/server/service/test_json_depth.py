"""JSON nested past the depth bound, through every RPC that takes a document: INVALID_ARGUMENT
naming the limit, never INTERNAL or UNKNOWN, and the server goes on serving."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import grpc
import pytest

from dockgate._errors import from_rpc_error
from dockgate.v1 import admin_pb2, admin_pb2_grpc, authorizer_pb2, authorizer_pb2_grpc
from dockgate_server.policy.parse import MAX_JSON_DEPTH
from tests.server.service.conftest import RunningServer

ACCOUNT = "111122223333"
READER = f"arn:aws:iam::{ACCOUNT}:user/reader"
APP = f"arn:aws:ecr:us-east-1:{ACCOUNT}:repository/team-a/app"
NESTING = 100_000
"""far past Python's recursion limit: json.loads alone raises RecursionError here"""
DEEP = '{"Version": "2012-10-17", "Statement": ' + "[" * NESTING + "]" * NESTING + "}"
DEEP_BUNDLE = '{"accounts": ' + "[" * NESTING + "]" * NESTING + "}"


@pytest.fixture(scope="module")
def admin(shared_server: RunningServer) -> Iterator[admin_pb2_grpc.PolicyAdminStub]:
    with grpc.insecure_channel(shared_server.admin) as channel:
        yield admin_pb2_grpc.PolicyAdminStub(channel)


@pytest.fixture(scope="module")
def authorizer(shared_server: RunningServer) -> Iterator[authorizer_pb2_grpc.AuthorizerStub]:
    with grpc.insecure_channel(shared_server.decision) as channel:
        yield authorizer_pb2_grpc.AuthorizerStub(channel)


@pytest.fixture(scope="module")
def token(shared_server: RunningServer) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {shared_server.token}"),)


def _refusal(call: Callable[[], Any]) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as raised:
        call()
    return raised.value


def _assert_invalid_naming_the_depth(error: grpc.RpcError, field: str) -> None:
    failure = from_rpc_error(error)
    assert failure.code is grpc.StatusCode.INVALID_ARGUMENT, failure
    assert f"{MAX_JSON_DEPTH} levels" in str(failure)
    assert failure.metadata.get("field") == field


def test_simulate(authorizer: authorizer_pb2_grpc.AuthorizerStub) -> None:
    request = authorizer_pb2.SimulateRequest(
        request=authorizer_pb2.AuthorizeRequest(
            principal=READER, action="ecr:BatchGetImage", resource=APP
        ),
        identity_policies=[DEEP],
    )
    error = _refusal(lambda: authorizer.Simulate(request, timeout=30))
    _assert_invalid_naming_the_depth(error, "identity_policies[0]")


def test_set_repository_policy(
    admin: admin_pb2_grpc.PolicyAdminStub, token: tuple[tuple[str, str], ...]
) -> None:
    request = admin_pb2.SetRepositoryPolicyRequest(arn=APP, policy=DEEP)
    error = _refusal(lambda: admin.SetRepositoryPolicy(request, metadata=token, timeout=30))
    _assert_invalid_naming_the_depth(error, "policy")


def test_import_bundle(
    admin: admin_pb2_grpc.PolicyAdminStub, token: tuple[tuple[str, str], ...]
) -> None:
    request = admin_pb2.ImportBundleRequest(bundle=DEEP_BUNDLE)
    error = _refusal(lambda: admin.ImportBundle(request, metadata=token, timeout=30))
    _assert_invalid_naming_the_depth(error, "bundle")


def test_validate_policy_reports_a_finding(
    admin: admin_pb2_grpc.PolicyAdminStub, token: tuple[tuple[str, str], ...]
) -> None:
    request = admin_pb2.ValidatePolicyRequest(document=DEEP, kind="identity")
    response = admin.ValidatePolicy(request, metadata=token, timeout=30)
    assert not response.valid
    assert [f.severity for f in response.findings] == ["error"]
    assert f"{MAX_JSON_DEPTH} levels" in response.findings[0].message


def test_the_server_goes_on_serving(
    authorizer: authorizer_pb2_grpc.AuthorizerStub,
    admin: admin_pb2_grpc.PolicyAdminStub,
    token: tuple[tuple[str, str], ...],
) -> None:
    request = admin_pb2.SetRepositoryPolicyRequest(arn=APP, policy=DEEP)
    _refusal(lambda: admin.SetRepositoryPolicy(request, metadata=token, timeout=30))
    answer = authorizer.Authorize(
        authorizer_pb2.AuthorizeRequest(principal=READER, action="ecr:BatchGetImage", resource=APP),
        timeout=30,
    )
    assert answer.outcome != authorizer_pb2.OUTCOME_UNSPECIFIED
