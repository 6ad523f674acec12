"""GetLoginPassword decides with the context AWS sets on GetAuthorizationToken (issue 11 item 19):
the registry Region, the time, the transport and the caller's address; a bare role gets nothing.

In process: the admin servicer on a real gRPC server on 127.0.0.1, over a real store."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import grpc
import pytest

from dockgate import AccessDeniedError, AdminClient
from dockgate._errors import from_rpc_error
from dockgate.v1 import admin_pb2, admin_pb2_grpc, authorizer_pb2
from dockgate_server.service.admin import AdminService
from dockgate_server.service.credentials_admin import _peer_address
from dockgate_server.service.state import DecisionState
from dockgate_server.store import bundle_to_fleet, open_store
from tests.server.service.conftest import start_server

ACCOUNT = "111122223333"
DEV = f"arn:aws:iam::{ACCOUNT}:user/dev"
BUILDER = f"arn:aws:iam::{ACCOUNT}:role/builder"
LOGIN = "ecr:GetAuthorizationToken"


def _document(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def _allow_login(condition: dict[str, Any] | None = None) -> dict[str, Any]:
    statement: dict[str, Any] = {"Effect": "Allow", "Action": LOGIN, "Resource": "*"}
    if condition:
        statement["Condition"] = condition
    return statement


def _bundle(*identity: dict[str, Any], scp: dict[str, Any] | None = None) -> dict[str, Any]:
    bundle: dict[str, Any] = {
        "format": "dockgate-bundle/1",
        "accounts": {
            ACCOUNT: {
                "authorizationDetails": {
                    "UserDetailList": [
                        {
                            "UserName": "dev",
                            "Path": "/",
                            "UserPolicyList": [
                                {"PolicyName": "login", "PolicyDocument": _document(*identity)}
                            ],
                        }
                    ],
                    "RoleDetailList": [
                        {
                            "RoleName": "builder",
                            "Path": "/",
                            "AssumeRolePolicyDocument": _document(
                                {
                                    "Effect": "Allow",
                                    "Principal": {"AWS": DEV},
                                    "Action": "sts:AssumeRole",
                                }
                            ),
                            "RolePolicyList": [
                                {"PolicyName": "login", "PolicyDocument": _document(_allow_login())}
                            ],
                        }
                    ],
                }
            }
        },
    }
    if scp is not None:
        full = _document({"Effect": "Allow", "Action": "*", "Resource": "*"})
        bundle["organization"] = {
            "id": "o-a1b2c3d4e5",
            "root": {"serviceControlPolicies": [full, scp], "accounts": [ACCOUNT], "children": []},
        }
    return bundle


REGION_FENCE = _document(
    {
        "Effect": "Deny",
        "Action": "*",
        "Resource": "*",
        "Condition": {"StringNotEquals": {"aws:RequestedRegion": ["us-east-1"]}},
    }
)


def _login(
    tmp_path: Path,
    bundle: dict[str, Any],
    principal: str = DEV,
    *,
    region: str | None = "us-east-1",
    context: dict[str, str] | None = None,
) -> admin_pb2.LoginPasswordResponse | grpc.RpcError:
    """One GetLoginPassword through a real server on 127.0.0.1; its answer or its error."""
    store = tmp_path / "store.sqlite3"
    with open_store(store) as opened:
        opened.import_fleet(bundle_to_fleet(bundle))
    state = DecisionState(store)
    state.start()

    async def run() -> admin_pb2.LoginPasswordResponse | grpc.RpcError:
        service = AdminService(store, state.nudge, state=state, clock=state.clock)
        service.registry_region = region
        server = grpc.aio.server()
        admin_pb2_grpc.add_PolicyAdminServicer_to_server(service, server)
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        request = admin_pb2.GetLoginPasswordRequest(principal=principal)
        for key, value in (context or {}).items():
            request.context[key].CopyFrom(authorizer_pb2.ContextValues(values=[value]))
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
                stub = admin_pb2_grpc.PolicyAdminStub(channel)
                try:
                    answer: admin_pb2.LoginPasswordResponse = await stub.GetLoginPassword(
                        request, timeout=10
                    )
                except grpc.aio.AioRpcError as error:
                    return error
                return answer
        finally:
            await server.stop(None)
            service.close()

    try:
        return asyncio.run(run())
    finally:
        state.stop()


def _issued(answer: object) -> bool:
    if isinstance(answer, grpc.RpcError):
        failure = from_rpc_error(answer)
        assert failure.code is grpc.StatusCode.PERMISSION_DENIED, failure
        assert failure.reason == "ACCESS_DENIED", failure
        return False
    assert isinstance(answer, admin_pb2.LoginPasswordResponse)
    assert answer.password and answer.principal == DEV
    return True


@pytest.mark.parametrize(("region", "issued"), [("us-east-1", True), ("eu-west-1", False)])
def test_an_scp_fencing_regions_sees_the_registry_region(
    tmp_path: Path, region: str, issued: bool
) -> None:
    answer = _login(tmp_path, _bundle(_allow_login(), scp=REGION_FENCE), region=region)
    assert _issued(answer) is issued


def test_without_a_registry_region_the_fence_refuses(tmp_path: Path) -> None:
    # the key is absent, so StringNotEquals holds: fail closed, never a token by accident
    answer = _login(tmp_path, _bundle(_allow_login(), scp=REGION_FENCE), region=None)
    assert not _issued(answer)


@pytest.mark.parametrize(
    ("condition", "issued"),
    [
        ({"DateGreaterThan": {"aws:CurrentTime": "2020-01-01T00:00:00Z"}}, True),
        ({"DateLessThan": {"aws:CurrentTime": "2020-01-01T00:00:00Z"}}, False),
        ({"NumericGreaterThan": {"aws:EpochTime": "1577836800"}}, True),
        ({"IpAddress": {"aws:SourceIp": "127.0.0.0/8"}}, True),
        ({"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}, False),
        ({"Bool": {"aws:SecureTransport": "false"}}, True),  # this test's channel is plaintext
        ({"Bool": {"aws:SecureTransport": "true"}}, False),
        ({"StringEquals": {"aws:RequestedRegion": "us-east-1"}}, True),
    ],
)
def test_the_login_context_holds_what_aws_sets(
    tmp_path: Path, condition: dict[str, Any], issued: bool
) -> None:
    assert _issued(_login(tmp_path, _bundle(_allow_login(condition)))) is issued


def test_a_value_the_caller_passes_wins(tmp_path: Path) -> None:
    bundle = _bundle(_allow_login({"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}))
    assert _issued(_login(tmp_path, bundle, context={"aws:SourceIp": "10.1.2.3"}))


def test_a_bare_role_gets_no_token(tmp_path: Path) -> None:
    answer = _login(tmp_path, _bundle(_allow_login()), BUILDER)
    assert isinstance(answer, grpc.RpcError)
    failure = from_rpc_error(answer)
    assert failure.code is grpc.StatusCode.INVALID_ARGUMENT
    assert failure.reason == "INVALID_CREDENTIAL_REQUEST"
    assert failure.field == "principal"
    assert f"`{BUILDER}` is a role" in str(failure)


def test_a_malformed_principal_is_named(tmp_path: Path) -> None:
    answer = _login(tmp_path, _bundle(_allow_login()), "dev")
    assert isinstance(answer, grpc.RpcError)
    failure = from_rpc_error(answer)
    assert (failure.code, failure.field) == (grpc.StatusCode.INVALID_ARGUMENT, "principal")


@pytest.mark.parametrize(
    ("peer", "address"),
    [
        ("ipv4:127.0.0.1:50123", "127.0.0.1"),
        ("ipv6:[::1]:50123", "::1"),
        ("ipv6:%5B::1%5D:50123", "::1"),
        ("ipv6:[::ffff:10.0.0.7]:50123", "10.0.0.7"),
        ("unix:/run/dockgate.sock", None),
        ("", None),
        ("ipv4:nonsense:1", None),
    ],
)
def test_peer_address(peer: str, address: str | None) -> None:
    assert _peer_address(peer) == address


@pytest.mark.parametrize(("region", "issued"), [("us-east-1", True), ("eu-west-1", False)])
def test_dockgate_serve_hands_its_registry_region_to_logins(
    tmp_path: Path, region: str, issued: bool
) -> None:
    """End to end: `--registry-region` reaches GetLoginPassword's `aws:RequestedRegion`."""
    server = start_server(
        tmp_path,
        "--envoy",
        "--registry-account",
        ACCOUNT,
        "--registry-region",
        region,
        seed=False,
    )
    try:
        with AdminClient(server.admin, server.token) as admin:
            admin.import_bundle(_bundle(_allow_login(), scp=REGION_FENCE), replace=True)
            if issued:
                assert admin.get_login_password(DEV).principal == DEV
            else:
                with pytest.raises(AccessDeniedError):
                    admin.get_login_password(DEV)
    finally:
        assert server.stop() == 0
