"""The HTTP/1.1 server doors hand routes to: query strings, form and JSON bodies, a body bound per
route, methods per route, any response header, refusals rendered by the door's error page."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable

import pytest

from dockgate_server.frontends.http import (
    HttpError,
    HttpRequest,
    HttpResponse,
    HttpServer,
    Route,
    plain_error_page,
)
from tests.server.frontends.test_nginx import Client, Reply, raw

Scenario = Callable[[Client, int], Awaitable[None]]


async def _echo(request: HttpRequest) -> HttpResponse:
    """What the server handed the handler, as JSON."""
    seen = {
        "method": request.method,
        "path": request.path,
        "query": request.query,
        "peer": request.peer,
        "x-many": list(request.headers.get("x-many", ())),
        "single": request.single("x-many"),
        "joined": request.joined("x-many"),
        "body": request.body.decode(),
    }
    return HttpResponse(200, (("Content-Type", "application/json"),), json.dumps(seen).encode())


async def _form(request: HttpRequest) -> HttpResponse:
    return HttpResponse(200, (), json.dumps(request.form()).encode())


async def _json(request: HttpRequest) -> HttpResponse:
    return HttpResponse(200, (), json.dumps({"got": request.json()}).encode())


async def _challenge(request: HttpRequest) -> HttpResponse:
    raise HttpError(
        401,
        "authentication required",
        (("WWW-Authenticate", 'Bearer realm="https://auth.example/token",service="registry"'),),
    )


async def _broken(request: HttpRequest) -> HttpResponse:
    raise RuntimeError("the handler broke")


ROUTES = [
    Route("/echo", _echo),
    Route("/form", _form, methods=frozenset({"POST"}), max_body=100),
    Route("/json", _json, methods=frozenset({"POST"})),
    Route("/challenge", _challenge, methods=frozenset({"GET"})),
    Route("/broken", _broken),
]


def serve(scenario: Scenario) -> None:
    async def run() -> None:
        async with HttpServer(ROUTES, "127.0.0.1", 0, name="test http") as server:
            client = await Client.open(server.port)
            try:
                await asyncio.wait_for(scenario(client, server.port), 20)
            finally:
                await client.close()

    asyncio.run(run())


def test_a_handler_sees_the_query_headers_body_and_peer() -> None:
    async def scenario(client: Client, port: int) -> None:
        reply = await client.request(
            "POST",
            "/echo?scope=repository:a:pull&scope=repository:b:push&service=reg&empty=",
            {"X-Many": "one"},
            body=b"payload",
        )
        seen = json.loads(reply.body)
        assert seen["query"] == {
            "scope": ["repository:a:pull", "repository:b:push"],
            "service": ["reg"],
            "empty": [""],
        }
        assert (seen["method"], seen["path"], seen["peer"]) == ("POST", "/echo", "127.0.0.1")
        assert (seen["single"], seen["joined"], seen["body"]) == ("one", "one", "payload")

    serve(scenario)


def test_a_repeated_header_is_no_single_value_and_joins_with_commas() -> None:
    async def scenario(client: Client, port: int) -> None:
        request = (
            b"GET /echo HTTP/1.1\r\nHost: x\r\nX-Many: a\r\nX-Many: b\r\nConnection: close\r\n\r\n"
        )
        answer = await raw(port, request)
        seen = json.loads(answer.partition(b"\r\n\r\n")[2])
        assert (seen["x-many"], seen["single"], seen["joined"]) == (["a", "b"], None, "a,b")

    serve(scenario)


def test_a_form_body_is_parsed() -> None:
    async def scenario(client: Client, port: int) -> None:
        form = {"Content-Type": "application/x-www-form-urlencoded"}
        body = b"grant_type=password&scope=a&scope=b%20c&password="
        reply = await client.request("POST", "/form", form, body=body)
        assert reply.status == 200
        assert json.loads(reply.body) == {
            "grant_type": ["password"],
            "scope": ["a", "b c"],
            "password": [""],
        }
        wrong = await client.request("POST", "/form", {"Content-Type": "text/plain"}, body=b"x")
        assert wrong.status == 400
        assert wrong.body == b"the body must be `application/x-www-form-urlencoded`\n"

    serve(scenario)


def test_a_json_body_is_parsed_and_garbage_is_a_400() -> None:
    async def scenario(client: Client, port: int) -> None:
        kind = {"Content-Type": "application/json; charset=utf-8"}
        reply = await client.request("POST", "/json", kind, body=b'{"subject": {"id": "a"}}')
        assert json.loads(reply.body) == {"got": {"subject": {"id": "a"}}}
        garbage = await client.request("POST", "/json", kind, body=b"{not json")
        assert (garbage.status, garbage.body) == (400, b"the body is not valid JSON\n")
        deep = await client.request("POST", "/json", kind, body=b"[" * 60_000)
        assert deep.status == 400

    serve(scenario)


def test_a_body_past_the_routes_bound_is_a_413_and_the_connection_closes() -> None:
    async def scenario(client: Client, port: int) -> None:
        head = (
            b"POST /form HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n"
        )
        fits = head + b"Content-Length: 100\r\nConnection: close\r\n\r\n" + b"a=" + b"x" * 98
        assert (await raw(port, fits)).startswith(b"HTTP/1.1 200 ")
        over = head + b"Content-Length: 101\r\n\r\n" + b"a=" + b"x" * 99
        answer = await raw(port, over)  # returns only because the server closes
        assert answer.startswith(b"HTTP/1.1 413 ")
        assert b"connection: close" in answer.lower()

    serve(scenario)


def test_a_method_the_route_does_not_take_is_a_405_naming_those_it_does() -> None:
    async def scenario(client: Client, port: int) -> None:
        reply = await client.request("GET", "/form", {})
        assert reply.status == 405
        assert reply.headers["allow"] == "POST"

    serve(scenario)


def test_a_handlers_refusal_carries_its_headers() -> None:
    async def scenario(client: Client, port: int) -> None:
        reply = await client.request("GET", "/challenge?scope=x", {})
        assert reply.status == 401
        assert reply.headers["www-authenticate"] == (
            'Bearer realm="https://auth.example/token",service="registry"'
        )
        assert reply.headers["content-type"] == "text/plain; charset=utf-8"
        assert reply.body == b"authentication required\n"

    serve(scenario)


def test_an_unknown_path_is_a_404(caplog: pytest.LogCaptureFixture) -> None:
    async def scenario(client: Client, port: int) -> None:
        reply = await client.request("GET", "/nothing?x=1", {})
        assert (reply.status, reply.body) == (404, b"no such endpoint `/nothing`\n")

    serve(scenario)


def test_a_failing_handler_is_a_500_and_the_connection_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.ERROR)

    async def scenario(client: Client, port: int) -> None:
        failed = await client.request("GET", "/broken", {})
        assert (failed.status, failed.body) == (500, b"the request could not be served\n")
        after: Reply = await client.request("GET", "/echo", {})
        assert after.status == 200

    serve(scenario)
    assert [record.message for record in caplog.records] == ["test http request failed"]


def test_the_plain_error_page_keeps_the_refusals_headers() -> None:
    page = plain_error_page(HttpError(405, "`/form` takes POST", (("Allow", "POST"),)))
    assert page == HttpResponse(
        405,
        (("Content-Type", "text/plain; charset=utf-8"), ("Allow", "POST")),
        b"`/form` takes POST\n",
    )
