"""`dockgate serve --envoy --http-auth-listen`: both registry adapters, with one and two workers."""

from __future__ import annotations

import base64
import http.client
import json
import re
from pathlib import Path

import grpc
import pytest
from envoy.service.auth.v3 import external_auth_pb2, external_auth_pb2_grpc

from dockgate import AdminClient
from tests.server.service.conftest import TOKEN, RunningServer, start_server

PUSHER = "arn:aws:iam::111122223333:user/ci/pusher"
ADAPTERS = (
    "--envoy",
    "--http-auth-listen",
    "127.0.0.1:0",
    "--registry-account",
    "111122223333",
    "--registry-region",
    "us-east-1",
)


def _check(
    server: RunningServer, method: str, path: str, password: str, host: str = "registry.example"
) -> int:
    """Envoy's ext_authz Check on the decision port; the HTTP status it tells Envoy to answer."""
    credentials = base64.b64encode(f"AWS:{password}".encode()).decode()
    request = external_auth_pb2.CheckRequest()
    http_request = request.attributes.request.http
    http_request.method = method
    http_request.path = path
    http_request.host = host
    http_request.headers["authorization"] = f"Basic {credentials}"
    request.attributes.source.address.socket_address.address = "127.0.0.1"
    with grpc.insecure_channel(server.decision) as channel:
        response = external_auth_pb2_grpc.AuthorizationStub(channel).Check(request, timeout=10)
    if response.HasField("ok_response"):
        return 200
    return int(response.denied_response.status.code)


def _auth(port: int, method: str, uri: str, password: str) -> int:
    """nginx's auth sub-request to the HTTP endpoint."""
    credentials = base64.b64encode(f"AWS:{password}".encode()).decode()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request(
            "GET",
            "/auth",
            headers={
                "X-Original-Method": method,
                "X-Original-URI": uri,
                "Authorization": f"Basic {credentials}",
            },
        )
        return connection.getresponse().status
    finally:
        connection.close()


@pytest.mark.parametrize("workers", [1, 2])
def test_both_adapters_decide_in_every_process(tmp_path: Path, workers: int) -> None:
    server = start_server(tmp_path, *ADAPTERS, "--workers", str(workers))
    try:
        http_port = json.loads((tmp_path / "ready.json").read_text())["http_auth_port"]
        with AdminClient(server.admin, TOKEN) as admin:
            password = admin.get_login_password(PUSHER).password
        allowed = "/v2/team-a/app/manifests/v1"
        denied = "/v2/team-b/app/manifests/v1"
        # several calls: with two workers, new connections land on either process
        for _ in range(4):
            assert _check(server, "PUT", allowed, password) == 200
            assert _check(server, "PUT", denied, password) == 403
            assert _check(server, "GET", "/v2/", password + "x") == 401
        assert _auth(http_port, "PUT", allowed, password) == 200
        assert _auth(http_port, "PUT", denied, password) == 403
        assert _auth(http_port, "GET", "/v2/", "forged") == 401
    finally:
        assert server.stop() == 0


def test_adapter_settings_are_checked_before_serving(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="--registry-account and --registry-region go together"):
        start_server(tmp_path, "--envoy", "--registry-account", "111122223333")
    with pytest.raises(RuntimeError, match="trusted proxy `nowhere`"):
        start_server(tmp_path, "--envoy", "--trusted-proxy", "nowhere")
    with pytest.raises(RuntimeError, match="--http-auth-listen `nonsense`: expected HOST:PORT"):
        start_server(tmp_path, "--http-auth-listen", "nonsense")


@pytest.mark.parametrize(
    "adapters", [("--envoy",), ("--http-auth-listen", "127.0.0.1:0"), ADAPTERS[:3]]
)
def test_the_adapters_refuse_to_start_without_their_registry(
    tmp_path: Path, adapters: tuple[str, ...]
) -> None:
    # issue 11 item 16: without an account the Host header would choose one, and a client can
    # send any Host
    expected = (
        "dockgate: the registry adapters need --registry-account and --registry-region, "
        "or --registry-host HOST=ACCOUNT:REGION"
    )
    with pytest.raises(RuntimeError, match=re.escape(expected)):
        start_server(tmp_path, *adapters)


def test_the_host_header_does_not_choose_the_account(tmp_path: Path) -> None:
    server = start_server(tmp_path, *ADAPTERS)
    try:
        with AdminClient(server.admin, TOKEN) as admin:
            password = admin.get_login_password(PUSHER).password
        allowed, denied = "/v2/team-a/app/manifests/v1", "/v2/team-b/app/manifests/v1"
        for host in ("444455556666.dkr.ecr.us-east-1.amazonaws.com", "registry.example", ""):
            assert _check(server, "PUT", allowed, password, host) == 200
            assert _check(server, "PUT", denied, password, host) == 403
    finally:
        assert server.stop() == 0
