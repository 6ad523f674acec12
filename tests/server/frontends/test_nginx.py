"""The nginx auth_request endpoint over real sockets: answers nginx can use, the catalog, and the
HTTP/1.1 server under it keeping connections, refusing garbage and surviving it."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import h11
import pytest

from dockgate_server.frontends.http import HttpServer
from dockgate_server.frontends.nginx import ERROR_HEADER, UPSTREAM_HEADER, error_page, nginx_routes
from dockgate_server.registry.gate import (
    CHECKS_HEADER,
    GateAnswer,
    GateConfig,
    GateRequest,
    Network,
    RegistryGate,
    parse_networks,
)
from tests.server.frontends.test_envoy import call, check_request, headers_of
from tests.server.registry.test_gate import (
    CHALLENGE,
    DIGEST,
    HOST,
    PASSWORD,
    REGISTRY,
    FakeDecisions,
    FakeLogins,
    arn,
    basic,
    make_gate,
)

PULL = "ecr:BatchGetImage"
UPLOAD = "ecr:InitiateLayerUpload"
Scenario = Callable[[int], Awaitable[None]]


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def error(self) -> dict[str, Any]:
        found: dict[str, Any] = json.loads(self.body)["errors"][0]
        return found


def endpoint(
    gate: RegistryGate,
    *,
    trusted_proxies: tuple[Network, ...] | None = None,
    idle_timeout: float = 60.0,
    request_timeout: float = 10.0,
) -> HttpServer:
    """The nginx door's routes on the HTTP/1.1 server, as the door serves them (not started)."""
    return HttpServer(
        nginx_routes(gate, trusted_proxies=trusted_proxies),
        "127.0.0.1",
        0,
        name="http auth",
        error_page=error_page,
        idle_timeout=idle_timeout,
        request_timeout=request_timeout,
    )


def serve(gate: RegistryGate, scenario: Scenario, **options: Any) -> None:
    async def run() -> None:
        async with endpoint(gate, **options) as server:
            await asyncio.wait_for(scenario(server.port), 20)

    asyncio.run(run())


class Client:
    """One HTTP/1.1 connection, driven by h11 from the client side."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.connection = h11.Connection(h11.CLIENT)

    @classmethod
    async def open(cls, port: int) -> Client:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return cls(reader, writer)

    async def close(self) -> None:
        self.writer.close()
        await self.writer.wait_closed()

    async def request(
        self, method: str, target: str, headers: dict[str, str], body: bytes = b""
    ) -> Reply:
        if self.connection.our_state is h11.DONE:
            self.connection.start_next_cycle()
        fields = [("Host", HOST), *headers.items()]
        if body:
            fields.append(("Content-Length", str(len(body))))
        data = self.connection.send(h11.Request(method=method, target=target, headers=fields))
        if body:
            data = (data or b"") + (self.connection.send(h11.Data(data=body)) or b"")
        data = (data or b"") + (self.connection.send(h11.EndOfMessage()) or b"")
        self.writer.write(data)
        await self.writer.drain()
        return await self.response()

    async def response(self) -> Reply:
        status = 0
        headers: dict[str, str] = {}
        body = b""
        while True:
            event = self.connection.next_event()
            if event is h11.NEED_DATA:
                self.connection.receive_data(await self.reader.read(65536))
            elif isinstance(event, h11.Response):
                status = event.status_code
                headers = {k.decode().lower(): v.decode("latin-1") for k, v in event.headers}
            elif isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, h11.EndOfMessage):
                return Reply(status, headers, body)
            else:
                raise AssertionError(f"unexpected {event!r}")


def auth_headers(method: str, uri: str, authorization: str | None = None) -> dict[str, str]:
    headers = {"X-Original-Method": method, "X-Original-URI": uri}
    if authorization is None:
        authorization = basic()
    if authorization:
        headers["Authorization"] = authorization
    return headers


async def ask(port: int, method: str, uri: str, authorization: str | None = None) -> Reply:
    client = await Client.open(port)
    try:
        return await client.request("GET", "/auth", auth_headers(method, uri, authorization))
    finally:
        await client.close()


async def raw(port: int, data: bytes) -> bytes:
    """Send bytes as they are and read until the server closes."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(data)
        await writer.drain()
        return await reader.read(-1)
    finally:
        writer.close()
        await writer.wait_closed()


# -- /auth ----------------------------------------------------------------------------------------


def test_an_allowed_call_is_200_with_the_upstream_uri() -> None:
    decisions = FakeDecisions(allowed={(PULL, "app")})

    async def scenario(port: int) -> None:
        reply = await ask(port, "GET", "/v2/app/manifests/latest")
        assert reply.status == 200
        assert reply.headers[UPSTREAM_HEADER.lower()] == "/v2/app/manifests/latest"
        assert reply.headers[CHECKS_HEADER.lower()] == f"{PULL} repository/app=Allowed"
        assert reply.body == b""

    serve(make_gate(decisions), scenario)
    assert decisions.calls[0][1:3] == (PULL, arn("app"))


def test_the_original_method_decides_not_the_sub_request_method() -> None:
    decisions = FakeDecisions(allowed={(PULL, "app")})

    async def scenario(port: int) -> None:
        reply = await ask(port, "DELETE", f"/v2/app/manifests/{DIGEST}")
        assert reply.status == 403
        assert reply.error()["code"] == "DENIED"

    serve(make_gate(decisions), scenario)
    assert decisions.calls[0][1] == "ecr:BatchDeleteImage"


def test_a_denied_mount_upstreams_a_plain_upload() -> None:
    decisions = FakeDecisions(allowed={(UPLOAD, "app")})

    async def scenario(port: int) -> None:
        reply = await ask(port, "POST", f"/v2/app/blobs/uploads/?mount={DIGEST}&from=base")
        assert reply.status == 200
        assert reply.headers[UPSTREAM_HEADER.lower()] == "/v2/app/blobs/uploads/"

    serve(make_gate(decisions), scenario)


def test_no_credentials_is_401_with_the_challenge() -> None:
    async def scenario(port: int) -> None:
        reply = await ask(port, "GET", "/v2/", "")
        assert reply.status == 401
        assert reply.headers["www-authenticate"] == CHALLENGE
        assert reply.error()["code"] == "UNAUTHORIZED"

    serve(make_gate(), scenario)


def test_a_denied_call_is_403() -> None:
    async def scenario(port: int) -> None:
        reply = await ask(port, "PUT", "/v2/app/manifests/v1")
        assert reply.status == 403
        assert reply.error()["message"].startswith("User: ")
        assert PASSWORD not in json.dumps(reply.headers)

    serve(make_gate(), scenario)


@pytest.mark.parametrize(
    "headers",
    [
        {"X-Original-URI": "/v2/app/manifests/latest"},
        {"X-Original-Method": "GET"},
        {},
        {"X-Original-Method": "", "X-Original-URI": "/v2/app/manifests/latest"},
    ],
)
def test_without_the_original_call_it_is_403(headers: dict[str, str]) -> None:
    decisions = FakeDecisions(allowed={(PULL, "app")})
    logins = FakeLogins()

    async def scenario(port: int) -> None:
        client = await Client.open(port)
        try:
            reply = await client.request("GET", "/auth", {**headers, "Authorization": basic()})
        finally:
            await client.close()
        assert reply.status == 403
        assert "X-Original-Method" in reply.error()["message"]

    serve(make_gate(decisions, logins=logins), scenario)
    assert decisions.calls == []
    assert logins.calls == []


def test_a_repeated_original_header_is_403() -> None:
    async def scenario(port: int) -> None:
        request = (
            b"GET /auth HTTP/1.1\r\nHost: x\r\nX-Original-Method: GET\r\n"
            b"X-Original-Method: DELETE\r\nX-Original-URI: /v2/\r\nConnection: close\r\n\r\n"
        )
        assert (await raw(port, request)).startswith(b"HTTP/1.1 403 ")

    serve(make_gate(), scenario)


@pytest.mark.parametrize(
    ("method", "uri", "status"),
    [
        ("GET", "/v2/a%2Fb/manifests/latest", "400"),
        ("GET", "/v3/", "404"),
        ("DELETE", f"/v2/app/blobs/{DIGEST}", "405"),
    ],
)
def test_other_refusals_are_403_naming_the_real_status(method: str, uri: str, status: str) -> None:
    async def scenario(port: int) -> None:
        reply = await ask(port, method, uri)
        assert reply.status == 403  # nginx turns anything but 401 and 403 into a 500
        assert reply.headers["x-dockgate-status"] == status

    serve(make_gate(FakeDecisions(allowed={(PULL, "app")})), scenario)


def test_the_catalog_through_auth_is_403() -> None:
    async def scenario(port: int) -> None:
        reply = await ask(port, "GET", "/v2/_catalog")
        assert reply.status == 403
        assert "/v2/_catalog" in reply.error()["message"]

    serve(make_gate(repositories=[arn("a")]), scenario)


# -- who the client is ----------------------------------------------------------------------------


def context_seen(
    headers: dict[str, str], config: GateConfig | None = None, **options: Any
) -> dict[str, Any]:
    decisions = FakeDecisions(allowed={(PULL, "app")})

    async def scenario(port: int) -> None:
        client = await Client.open(port)
        try:
            fields = {**auth_headers("GET", "/v2/app/manifests/latest"), **headers}
            reply = await client.request("GET", "/auth", fields)
        finally:
            await client.close()
        assert reply.status == 200

    serve(make_gate(decisions, config=config), scenario, **options)
    return dict(decisions.calls[0][3])


def test_loopback_nginx_is_trusted_by_default() -> None:
    context = context_seen({"X-Forwarded-For": "203.0.113.5", "X-Forwarded-Proto": "https"})
    assert context["aws:SourceIp"] == "203.0.113.5"
    assert context["aws:SecureTransport"] == "true"


def test_an_untrusted_peer_is_the_client() -> None:
    context = context_seen(
        {"X-Forwarded-For": "203.0.113.5", "X-Forwarded-Proto": "https"}, trusted_proxies=()
    )
    assert context["aws:SourceIp"] == "127.0.0.1"
    assert context["aws:SecureTransport"] == "false"


def test_the_gates_own_proxies_stay_trusted() -> None:
    config = GateConfig(registry=REGISTRY, trusted_proxies=parse_networks(["10.0.0.0/8"]))
    context = context_seen({"X-Forwarded-For": "203.0.113.5, 10.1.1.1"}, config)
    assert context["aws:SourceIp"] == "203.0.113.5"


# -- the catalog ----------------------------------------------------------------------------------


def test_the_catalog_is_served_in_full() -> None:
    decisions = FakeDecisions(allowed={("ecr:DescribeRepositories", n) for n in ["a", "c"]})
    gate = make_gate(decisions, repositories=[arn("a"), arn("b"), arn("c")])

    async def scenario(port: int) -> None:
        client = await Client.open(port)
        try:
            page = await client.request("GET", "/v2/_catalog?n=1", {"Authorization": basic()})
            assert page.status == 200
            assert json.loads(page.body) == {"repositories": ["a"]}
            assert page.headers["link"] == '</v2/_catalog?last=a&n=1>; rel="next"'
            assert page.headers["content-type"] == "application/json; charset=utf-8"
            unauthenticated = await client.request("GET", "/v2/_catalog", {})
            assert unauthenticated.status == 401
            assert unauthenticated.headers["www-authenticate"] == CHALLENGE
            posted = await client.request("POST", "/v2/_catalog", {"Authorization": basic()})
            assert posted.status == 405
        finally:
            await client.close()

    serve(gate, scenario)


def test_any_other_path_is_404() -> None:
    async def scenario(port: int) -> None:
        client = await Client.open(port)
        try:
            for target in ["/", "/v2/", "/auth/x", "/v2/app/manifests/latest"]:
                reply = await client.request("GET", target, {"Authorization": basic()})
                assert reply.status == 404
        finally:
            await client.close()

    serve(make_gate(), scenario)


# -- HTTP ----------------------------------------------------------------------------------------


def test_two_requests_on_one_connection() -> None:
    decisions = FakeDecisions(allowed={(PULL, "app")})

    async def scenario(port: int) -> None:
        client = await Client.open(port)
        try:
            first = await client.request("GET", "/auth", auth_headers("GET", "/v2/app/manifests/a"))
            second = await client.request(
                "GET", "/auth", auth_headers("PUT", "/v2/app/manifests/a")
            )
        finally:
            await client.close()
        assert (first.status, second.status) == (200, 403)

    serve(make_gate(decisions), scenario)


def test_pipelined_requests_are_answered_in_order() -> None:
    one = b"GET /auth HTTP/1.1\r\nHost: x\r\nX-Original-Method: GET\r\nX-Original-URI: /v2/\r\n\r\n"
    last = b"GET /nothing HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"

    async def scenario(port: int) -> None:
        answer = await raw(port, one + one + last)
        assert answer.count(b"HTTP/1.1 401 ") == 2
        assert answer.count(b"HTTP/1.1 404 ") == 1

    serve(make_gate(), scenario)


def test_http_1_0_is_answered_and_closed() -> None:
    request = (
        f"GET /auth HTTP/1.0\r\nHost: {HOST}\r\nX-Original-Method: GET\r\n"
        f"X-Original-URI: /v2/\r\nAuthorization: {basic()}\r\n\r\n"
    ).encode()

    async def scenario(port: int) -> None:
        answer = await raw(port, request)  # returns only because the server closes
        assert answer.startswith(b"HTTP/1.1 200 ")
        assert answer.count(b"HTTP/1.1") == 1

    serve(make_gate(), scenario)


@pytest.mark.parametrize(
    ("data", "status"),
    [
        (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(64), b"400"),  # a TLS hello
        (b"NOT HTTP AT ALL\r\n\r\n", b"400"),
        (b"GET /auth HTTP/1.1\r\nno colon here\r\n\r\n", b"400"),
        (b"GET /auth HTTP/1.1\r\n\r\n", b"400"),  # HTTP/1.1 without Host
        (b"GET /auth HTTP/1.1\r\nHost: x\r\nX-Big: " + b"y" * 20_000 + b"\r\n\r\n", b"431"),
        (b"GET /auth HTTP/1.1\r\nHost: x\r\nX-Big: " + b"y" * 200_000, b"431"),  # never ends
    ],
)
def test_garbage_is_refused_and_the_server_goes_on(data: bytes, status: bytes) -> None:
    async def scenario(port: int) -> None:
        answer = await raw(port, data)
        assert answer.startswith(b"HTTP/1.1 " + status + b" ")
        reply = await ask(port, "GET", "/v2/")
        assert reply.status == 200

    serve(make_gate(), scenario)


def test_a_head_request_gets_no_body() -> None:
    request = b"HEAD /nothing HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"

    async def scenario(port: int) -> None:
        answer = await raw(port, request)
        head, _, body = answer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 404 ")
        assert b"content-length: " in head.lower()
        assert body == b""

    serve(make_gate(), scenario)


def test_a_request_body_is_read_and_dropped_up_to_a_bound() -> None:
    async def scenario(port: int) -> None:
        client = await Client.open(port)
        try:
            reply = await client.request(
                "POST", "/auth", auth_headers("GET", "/v2/"), body=b"x" * 1000
            )
            assert reply.status == 200
            again = await client.request("GET", "/auth", auth_headers("GET", "/v2/"))
            assert again.status == 200
        finally:
            await client.close()
        huge = b"POST /auth HTTP/1.1\r\nHost: x\r\nContent-Length: 200000\r\n\r\n" + b"x" * 200_000
        assert (await raw(port, huge)).startswith(b"HTTP/1.1 413 ")

    serve(make_gate(), scenario)


def test_an_idle_connection_is_closed() -> None:
    async def scenario(port: int) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            assert await asyncio.wait_for(reader.read(), 5) == b""
        finally:
            writer.close()
            await writer.wait_closed()

    serve(make_gate(), scenario, idle_timeout=0.1)


def test_a_stalled_request_is_closed() -> None:
    async def scenario(port: int) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            writer.write(b"GET /auth HTTP/1.1\r\nHost: x\r\n")  # and never the end of the head
            await writer.drain()
            assert await asyncio.wait_for(reader.read(), 5) == b""
        finally:
            writer.close()
            await writer.wait_closed()

    serve(make_gate(), scenario, request_timeout=0.1)


def test_closing_ends_open_connections() -> None:
    async def run() -> None:
        server = endpoint(make_gate())
        await server.start()
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        try:
            reply = await ask(server.port, "GET", "/v2/")
            assert reply.status == 200
            await server.close()
            assert await asyncio.wait_for(reader.read(), 5) == b""
        finally:
            writer.close()
            await writer.wait_closed()
        with pytest.raises(RuntimeError, match="not listening"):
            _ = server.port

    asyncio.run(run())


class BrokenGate(RegistryGate):
    def check(self, request: GateRequest) -> GateAnswer:
        raise RuntimeError("the gate broke")


def test_a_broken_gate_is_a_500_and_the_server_goes_on(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR)
    gate = BrokenGate(FakeLogins(), FakeDecisions(), list, GateConfig(registry=REGISTRY))

    async def scenario(port: int) -> None:
        for _ in range(2):
            reply = await ask(port, "GET", "/v2/")
            assert reply.status == 500
            assert reply.error()["code"] == "DENIED"

    serve(gate, scenario)
    assert [record.message for record in caplog.records] == ["http auth request failed"] * 2
    assert basic() not in caplog.text


# -- refusals nginx can pass on as Envoy does (issue 11 item 21) ----------------------------------


@pytest.mark.parametrize(
    ("method", "uri", "authorization"),
    [
        ("PUT", "/v2/app/manifests/v1", None),  # denied by policy: 403
        ("GET", "/v2/", ""),  # no credentials: 401
        ("GET", "/v2/", basic("expired")),  # a rejected token: 401 with a detail
        ("DELETE", f"/v2/app/blobs/{DIGEST}", None),  # not a registry call: 405 as a 403
    ],
)
def test_a_refusal_carries_its_body_and_checks_in_headers_as_envoy_answers(
    method: str, uri: str, authorization: str | None
) -> None:
    gate = make_gate(FakeDecisions(allowed={(PULL, "app")}))
    (envoy,) = call(gate, check_request(method, uri, authorization))
    denied = envoy.denied_response
    envoy_headers = headers_of(denied.headers)
    replies: list[Reply] = []

    async def scenario(port: int) -> None:
        replies.append(await ask(port, method, uri, authorization))

    serve(gate, scenario)
    (reply,) = replies
    assert reply.status in (401, 403)
    assert reply.headers[ERROR_HEADER.lower()].encode() == reply.body
    assert reply.body.decode() == denied.body
    assert reply.headers[CHECKS_HEADER.lower()] == envoy_headers[CHECKS_HEADER]
    assert reply.headers["content-type"] == envoy_headers["Content-Type"]


def test_a_refusal_without_the_original_call_carries_its_body_too() -> None:
    async def scenario(port: int) -> None:
        client = await Client.open(port)
        try:
            reply = await client.request("GET", "/auth", {"Authorization": basic()})
        finally:
            await client.close()
        assert reply.status == 403
        assert reply.headers[ERROR_HEADER.lower()].encode() == reply.body

    serve(make_gate(), scenario)


def test_an_allowed_call_carries_no_error_header() -> None:
    async def scenario(port: int) -> None:
        reply = await ask(port, "GET", "/v2/app/manifests/latest")
        assert reply.status == 200
        assert ERROR_HEADER.lower() not in reply.headers

    serve(make_gate(FakeDecisions(allowed={(PULL, "app")})), scenario)


class WordyGate(RegistryGate):
    """A gate whose refusals hold a body of `size` bytes."""

    size = 0

    def check(self, request: GateRequest) -> GateAnswer:
        body = json.dumps({"errors": [{"code": "DENIED", "message": "x" * self.size}]}).encode()
        return GateAnswer(403, (), body[: self.size] if len(body) > self.size else body, "")


@pytest.mark.parametrize(("size", "in_header"), [(2048, True), (2049, False)])
def test_an_error_body_too_long_for_a_header_is_left_to_nginx(size: int, in_header: bool) -> None:
    gate = WordyGate(FakeLogins(), FakeDecisions(), list, GateConfig(registry=REGISTRY))
    gate.size = size

    async def scenario(port: int) -> None:
        reply = await ask(port, "PUT", "/v2/app/manifests/v1")
        assert (reply.status, len(reply.body)) == (403, size)
        assert (ERROR_HEADER.lower() in reply.headers) is in_header

    serve(gate, scenario)
