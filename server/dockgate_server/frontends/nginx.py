"""nginx's `auth_request` endpoint and the catalog, in one process, on the HTTP/1.1 server.

`/auth` answers nginx's sub-request (always a GET) about the call it names in `X-Original-Method`
and `X-Original-URI` (either missing: 403). nginx passes on only 401 and 403 (anything else becomes
a 500), so every other refusal is a 403 carrying the real status in `X-Dockgate-Status` and the
body. nginx drops a sub-request's body, so a 401 or 403 also carries it in `X-Dockgate-Error`
(with `X-Dockgate-Checks`, as Envoy answers): `auth_request_set` both and answer with them
(examples/nginx.conf). A 200 carries `X-Dockgate-Upstream-URI`, the target to proxy (the call
without `mount` and `from` when a cross-repository mount may not happen): `auth_request_set` it
and `proxy_pass` to it.

`/v2/_catalog` is answered here in full, because an auth sub-request cannot return a body: nginx
proxies that path straight to this endpoint, with the Host, Authorization and X-Forwarded-For
headers. Any other path is a 404.

Who the client is: the TCP peer of this endpoint is nginx, and nginx sets `X-Forwarded-For
$remote_addr`, so the header counts when the TCP peer is a trusted proxy. By default this endpoint
trusts the gate's trusted proxies plus loopback (`127.0.0.1`, `::1`): nginx nearly always runs on
the same machine as its auth endpoint, and without loopback every call would be judged as coming
from 127.0.0.1. The cost: a local process that reaches this port directly can claim any client
address. Pass `trusted_proxies` to choose otherwise (an empty tuple trusts nobody).
`X-Forwarded-Proto: https` from a trusted peer makes `aws:SecureTransport` true.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from ipaddress import ip_network

from dockgate_server.addresses import parse_address
from dockgate_server.frontends.door import (
    Listen,
    Option,
    Placement,
    Section,
    Site,
    StartupError,
    cannot_listen,
)
from dockgate_server.frontends.http import HttpError, HttpRequest, HttpResponse, HttpServer, Route
from dockgate_server.frontends.registry import registry_gate
from dockgate_server.registry.gate import GateAnswer, GateRequest, Network, RegistryGate

__all__ = [
    "ERROR_HEADER",
    "LOOPBACK",
    "UPSTREAM_HEADER",
    "NginxDoor",
    "NginxEndpoint",
    "NginxSettings",
    "error_page",
    "nginx_routes",
]

LOOPBACK: tuple[Network, ...] = (ip_network("127.0.0.0/8"), ip_network("::1/128"))
UPSTREAM_HEADER = "X-Dockgate-Upstream-URI"
ERROR_HEADER = "X-Dockgate-Error"
_MAX_ERROR_HEADER = 2048
"""Bytes of error body copied into a header at most (nginx reads a sub-request's headers into
one 4 KB buffer); a longer one is left out and nginx answers with its own"""
_STATUS_HEADER = "X-Dockgate-Status"
_JSON_HEADERS: Sequence[tuple[str, str]] = (("Content-Type", "application/json; charset=utf-8"),)
_CODES = {404: "NOT_FOUND", 500: "DENIED"}
_MESSAGES = {500: "the call could not be authorized"}  # nginx denies on a 500 too


@dataclass(frozen=True, slots=True)
class NginxSettings:
    listen: str


class NginxDoor:
    name = "nginx"
    placement = Placement.ONE_PROCESS  # light next to the decisions: the parent serves it
    announces = ("http_auth_port",)
    uses_registry = True
    options = (
        Option(
            ("--http-auth-listen",),
            {
                "metavar": "HOST:PORT",
                "help": "serve nginx's auth_request endpoint (/auth) and the catalog over HTTP "
                "here",
            },
            Section.REGISTRY,
            listens=True,
        ),
    )

    def configure(self, arguments: argparse.Namespace) -> NginxSettings | None:
        listen = arguments.http_auth_listen
        return NginxSettings(listen) if listen is not None else None

    def listens(self, settings: NginxSettings) -> tuple[Listen, ...]:
        return (Listen("--http-auth-listen", settings.listen, "http_auth_port"),)

    async def open(self, settings: NginxSettings, site: Site) -> NginxEndpoint:
        address = parse_address(settings.listen, "--http-auth-listen", listen=True)
        gate = registry_gate(site.registry, site.runtime)
        server = HttpServer(
            nginx_routes(gate), address.host, address.port, name="http auth", error_page=error_page
        )
        try:
            await server.start()
        except OSError as problem:
            raise StartupError(
                cannot_listen("--http-auth-listen", settings.listen, problem)
            ) from None
        return NginxEndpoint(server)


class NginxEndpoint:
    """The endpoint listening in one process."""

    def __init__(self, server: HttpServer) -> None:
        self.server = server
        self.ports = {"http_auth_port": server.port}

    async def serve(self) -> None:
        """It answers from the moment it listens."""

    async def reflect(self, reachable: bool, fresh: bool) -> None:
        """Past `--max-staleness` each call is answered 503 by the gate: nothing to turn off."""

    async def drain(self, grace: float) -> None:
        await self.server.close()


def nginx_routes(
    gate: RegistryGate, *, trusted_proxies: Iterable[Network] | None = None
) -> list[Route]:
    """`/auth` and `/v2/_catalog` answered from `gate`; `trusted_proxies` None: the gate's and
    loopback."""
    proxies = (
        (*gate.config.trusted_proxies, *LOOPBACK)
        if trusted_proxies is None
        else tuple(trusted_proxies)
    )
    answers = _Answers(gate.with_trusted_proxies(proxies))
    return [Route("/auth", answers.auth), Route("/v2/_catalog", answers.catalog)]


def error_page(error: HttpError) -> HttpResponse:
    """A registry error body: `BAD_REQUEST` for what is not HTTP, `DENIED` for a failure."""
    code = _CODES.get(error.status, "BAD_REQUEST")
    body = _error_body(code, _MESSAGES.get(error.status, error.message))
    return HttpResponse(error.status, (*_JSON_HEADERS, *error.headers), body)


class _Answers:
    def __init__(self, gate: RegistryGate) -> None:
        self.gate = gate

    async def auth(self, request: HttpRequest) -> HttpResponse:
        method = request.single("x-original-method")
        uri = request.single("x-original-uri")
        if method is None or uri is None:
            # nginx's own method is always GET: without the original, a DELETE would pass as a pull
            message = "the auth request needs exactly one X-Original-Method and X-Original-URI"
            return _with_error_header(403, _JSON_HEADERS, _error_body("DENIED", message))
        answer = self.gate.check(self._gate_request(method, uri, request))
        if answer.status == 200 and not answer.answered_here:
            return HttpResponse(200, ((UPSTREAM_HEADER, answer.upstream_target), *answer.headers))
        if answer.answered_here:
            # proxied on, the registry's own catalog would list every repository
            message = "the catalog is served by Dockgate's `/v2/_catalog`: route it there"
            headers = [(_STATUS_HEADER, "403"), *_JSON_HEADERS]
            return _with_error_header(403, headers, _error_body("DENIED", message))
        return _for_nginx(answer)

    async def catalog(self, request: HttpRequest) -> HttpResponse:
        answer = self.gate.check(self._gate_request(request.method, request.target, request))
        if answer.status == 200 and not answer.answered_here:  # not a catalog after all
            body = _error_body("DENIED", "not a catalog request")
            return HttpResponse(403, tuple(_JSON_HEADERS), body)
        return HttpResponse(answer.status, answer.headers, answer.body)

    def _gate_request(self, method: str, target: str, request: HttpRequest) -> GateRequest:
        proto = request.joined("x-forwarded-proto")
        secure = None
        if proto and self.gate.trusts(request.peer):
            secure = proto.split(",")[0].strip().lower() == "https"
        return GateRequest(
            method=method,
            target=target,
            host=request.joined("host") or "",
            authorization=request.joined("authorization"),
            peer=request.peer,
            forwarded_for=request.joined("x-forwarded-for"),
            secure=secure,
        )


def _for_nginx(answer: GateAnswer) -> HttpResponse:
    """401 and 403 as they are; any other refusal as a 403 naming the real status."""
    headers = [(_STATUS_HEADER, str(answer.status)), *answer.headers]
    status = answer.status if answer.status in (401, 403) else 403
    return _with_error_header(status, headers, answer.body)


def _with_error_header(
    status: int, headers: Sequence[tuple[str, str]], body: bytes
) -> HttpResponse:
    """The refusal with its body also in `X-Dockgate-Error`: nginx drops an auth sub-request's
    body but can `auth_request_set` a header, and so answer with the body Envoy passes on."""
    if len(body) <= _MAX_ERROR_HEADER and body.isascii() and b"\n" not in body:
        headers = [*headers, (ERROR_HEADER, body.decode("ascii"))]
    return HttpResponse(status, tuple(headers), body)


def _error_body(code: str, message: str) -> bytes:
    return json.dumps({"errors": [{"code": code, "message": message, "detail": None}]}).encode()
