"""Envoy's ext_authz over real gRPC: allowed calls pass stripped of credentials, refusals carry
their status, headers and body, the catalog is answered by Dockgate, failures deny."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import grpc
import pytest
from envoy.config.core.v3 import address_pb2, base_pb2
from envoy.service.auth.v3 import attribute_context_pb2, external_auth_pb2, external_auth_pb2_grpc
from google.rpc import code_pb2  # type: ignore[import-untyped]

from dockgate_server.frontends.envoy import EnvoyAuthorization
from dockgate_server.registry.gate import (
    CHECKS_HEADER,
    GateAnswer,
    GateConfig,
    GateRequest,
    RegistryGate,
    parse_networks,
)
from tests.server.registry.test_gate import (
    ALICE,
    CHALLENGE,
    DIGEST,
    HOST,
    PASSWORD,
    REGISTRY,
    FakeDecisions,
    arn,
    basic,
    make_gate,
)

PULL = "ecr:BatchGetImage"
UPLOAD = "ecr:InitiateLayerUpload"
LAYER = "ecr:GetDownloadUrlForLayer"
Context = attribute_context_pb2.AttributeContext


def check_request(
    method: str,
    path: str,
    authorization: str | None = None,
    *,
    peer: str = "198.51.100.1",
    headers: dict[str, str] | None = None,
    scheme: str = "http",
    raw: bool = False,
) -> Any:
    fields = {"user-agent": "skopeo", **(headers or {})}
    if authorization is None:
        authorization = basic()
    if authorization:
        fields["authorization"] = authorization
    http = Context.HttpRequest(method=method, path=path, host=HOST, scheme=scheme)
    if raw:  # `encode_raw_headers: true`: values in `header_map`, as bytes
        http.header_map.headers.extend(
            base_pb2.HeaderValue(key=key, raw_value=value.encode()) for key, value in fields.items()
        )
    else:
        http.headers.update(fields)
    source = Context.Peer(
        address=address_pb2.Address(
            socket_address=address_pb2.SocketAddress(address=peer, port_value=40000)
        )
    )
    return external_auth_pb2.CheckRequest(
        attributes=Context(source=source, request=Context.Request(http=http))
    )


def call(gate: RegistryGate, *requests: Any) -> list[Any]:
    """Each request through a real grpc.aio server on 127.0.0.1, in order."""

    async def run() -> list[Any]:
        server = grpc.aio.server()
        external_auth_pb2_grpc.add_AuthorizationServicer_to_server(EnvoyAuthorization(gate), server)
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
                stub = external_auth_pb2_grpc.AuthorizationStub(channel)
                return [await stub.Check(request, timeout=10) for request in requests]
        finally:
            await server.stop(None)

    return asyncio.run(run())


def headers_of(options: Any) -> dict[str, str]:
    return {option.header.key: option.header.value for option in options}


def test_an_allowed_pull_passes_without_credentials() -> None:
    decisions = FakeDecisions(allowed={(PULL, "app")})
    [response] = call(make_gate(decisions), check_request("GET", "/v2/app/manifests/latest"))
    assert response.status.code == code_pb2.OK
    assert response.WhichOneof("http_response") == "ok_response"
    ok = response.ok_response
    assert list(ok.headers_to_remove) == ["authorization"]
    assert list(ok.query_parameters_to_remove) == []
    added = headers_of(ok.response_headers_to_add)
    assert added == {CHECKS_HEADER: f"{PULL} repository/app=Allowed"}
    assert decisions.calls[0][:3] == (ALICE, PULL, arn("app"))


def test_a_mount_degrades_by_removing_its_parameters() -> None:
    target = f"/v2/app/blobs/uploads/?mount={DIGEST}&from=base"
    denied, allowed = call(
        make_gate(FakeDecisions(allowed={(UPLOAD, "app")})), check_request("POST", target)
    ) + call(
        make_gate(FakeDecisions(allowed={(UPLOAD, "app"), (LAYER, "base")})),
        check_request("POST", target),
    )
    assert denied.status.code == code_pb2.OK
    assert list(denied.ok_response.query_parameters_to_remove) == ["mount", "from"]
    assert allowed.status.code == code_pb2.OK
    assert list(allowed.ok_response.query_parameters_to_remove) == []


def test_no_credentials_is_401_with_the_challenge() -> None:
    [response] = call(make_gate(), check_request("GET", "/v2/", ""))
    assert response.status.code == code_pb2.UNAUTHENTICATED
    denied = response.denied_response
    assert denied.status.code == 401
    headers = headers_of(denied.headers)
    assert headers["WWW-Authenticate"] == CHALLENGE
    assert headers["Content-Type"] == "application/json; charset=utf-8"
    assert json.loads(denied.body)["errors"][0]["code"] == "UNAUTHORIZED"


def test_a_denied_push_is_403_with_the_registry_error() -> None:
    [response] = call(make_gate(), check_request("PUT", "/v2/app/manifests/v1"))
    assert response.status.code == code_pb2.PERMISSION_DENIED
    denied = response.denied_response
    assert denied.status.code == 403
    error = json.loads(denied.body)["errors"][0]
    assert error["code"] == "DENIED"
    assert error["message"].startswith(f"User: {ALICE} is not authorized to perform: ecr:PutImage")
    assert (
        headers_of(denied.headers)[CHECKS_HEADER] == "ecr:PutImage repository/app=ImplicitlyDenied"
    )
    assert PASSWORD not in str(response)


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/v2/a%2Fb/manifests/latest", 400),
        ("GET", "/v3/", 404),
        ("GET", "/v2/App/manifests/latest", 400),
        ("DELETE", f"/v2/app/blobs/{DIGEST}", 405),
    ],
)
def test_an_unroutable_call_keeps_its_status(method: str, path: str, status: int) -> None:
    [response] = call(
        make_gate(FakeDecisions(allowed={(PULL, "app")})), check_request(method, path)
    )
    assert response.status.code == code_pb2.PERMISSION_DENIED
    assert response.denied_response.status.code == status


def test_the_catalog_is_answered_by_dockgate() -> None:
    decisions = FakeDecisions(allowed={("ecr:DescribeRepositories", "a")})
    gate = make_gate(decisions, repositories=[arn("a"), arn("b")])
    [response] = call(gate, check_request("GET", "/v2/_catalog"))
    # Envoy sends a denied response as it is: here, a 200 with Dockgate's body
    assert response.status.code == code_pb2.PERMISSION_DENIED
    denied = response.denied_response
    assert denied.status.code == 200
    assert json.loads(denied.body) == {"repositories": ["a"]}
    assert headers_of(denied.headers)["Content-Type"] == "application/json; charset=utf-8"


def test_raw_header_values_are_read_too() -> None:
    decisions = FakeDecisions(allowed={(PULL, "app")})
    [response] = call(make_gate(decisions), check_request("GET", "/v2/app/tags/list", raw=True))
    assert response.status.code == code_pb2.PERMISSION_DENIED  # ListImages is not allowed
    assert decisions.calls[0][1] == "ecr:ListImages"


TRUSTED = GateConfig(registry=REGISTRY, trusted_proxies=parse_networks(["10.0.0.0/8"]))


@pytest.mark.parametrize(
    ("peer", "headers", "scheme", "source", "secure"),
    [
        ("198.51.100.1", {}, "http", "198.51.100.1", "false"),
        ("198.51.100.1", {}, "https", "198.51.100.1", "true"),
        # an untrusted client's own forwarding headers count for nothing
        (
            "198.51.100.1",
            {"x-forwarded-for": "10.9.9.9", "x-forwarded-proto": "https"},
            "http",
            "198.51.100.1",
            "false",
        ),
        (
            "10.0.0.1",
            {"x-forwarded-for": "203.0.113.5, 10.0.0.7", "x-forwarded-proto": "https"},
            "http",
            "203.0.113.5",
            "true",
        ),
        ("10.0.0.1", {"x-forwarded-proto": "http"}, "https", "10.0.0.1", "false"),
    ],
)
def test_client_address_and_transport(
    peer: str, headers: dict[str, str], scheme: str, source: str, secure: str
) -> None:
    decisions = FakeDecisions(allowed={(PULL, "app")})
    gate = make_gate(decisions, config=TRUSTED)
    request = check_request(
        "GET", "/v2/app/manifests/latest", peer=peer, headers=headers, scheme=scheme
    )
    [response] = call(gate, request)
    assert response.status.code == code_pb2.OK
    context = decisions.calls[0][3]
    assert (context["aws:SourceIp"], context["aws:SecureTransport"]) == (source, secure)


def test_a_failing_decision_denies(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR)
    [response] = call(
        make_gate(FakeDecisions(broken=True)), check_request("GET", "/v2/app/manifests/latest")
    )
    assert len(caplog.records) == 1
    assert response.status.code == code_pb2.PERMISSION_DENIED
    assert response.denied_response.status.code == 403


class BrokenGate(RegistryGate):
    def check(self, request: GateRequest) -> GateAnswer:
        raise RuntimeError("the gate broke")


class LyingGate(RegistryGate):
    """An answer Envoy's messages cannot carry (a body that is not UTF-8)."""

    def check(self, request: GateRequest) -> GateAnswer:
        return GateAnswer(403, (), b"\xff", "")


@pytest.mark.parametrize("kind", [BrokenGate, LyingGate])
def test_a_failure_inside_check_denies(
    kind: type[RegistryGate], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR)
    gate = kind(
        lambda password: pytest.fail("not called"),
        FakeDecisions(),
        list,
        GateConfig(registry=REGISTRY),
    )
    [response] = call(gate, check_request("GET", "/v2/app/manifests/latest"))
    assert response.status.code == code_pb2.PERMISSION_DENIED
    assert response.denied_response.status.code == 403
    assert json.loads(response.denied_response.body)["errors"][0]["code"] == "DENIED"
    assert [record.message for record in caplog.records] == [
        "envoy check failed: the call is denied"
    ]
    assert basic() not in caplog.text


def test_the_servicer_can_be_called_directly() -> None:
    decisions = FakeDecisions(allowed={(PULL, "app")})
    servicer = EnvoyAuthorization(make_gate(decisions))
    response = asyncio.run(
        servicer.Check(check_request("GET", "/v2/app/manifests/latest"), None)  # type: ignore[arg-type]
    )
    assert response.status.code == code_pb2.OK
