"""nginx's `auth_request` endpoint and the catalog: a small HTTP/1.1 server (h11 on asyncio).

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

HTTP/1.1 connections stay open between requests (HTTP/1.0 ones close after each); a request's
head is bounded, a body is read and dropped up to a bound; an idle connection closes after
`idle_timeout`, a request must arrive whole within `request_timeout`; garbage gets a 400.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Iterable, Sequence
from ipaddress import ip_network
from types import TracebackType

import h11

from dockgate_server.registry.gate import GateAnswer, GateRequest, Network, RegistryGate

__all__ = [
    "ERROR_HEADER",
    "LOOPBACK",
    "UPSTREAM_HEADER",
    "HttpAuthEndpoint",
    "start_http_auth",
]

log = logging.getLogger("dockgate.registry.http")

LOOPBACK: tuple[Network, ...] = (ip_network("127.0.0.0/8"), ip_network("::1/128"))
UPSTREAM_HEADER = "X-Dockgate-Upstream-URI"
ERROR_HEADER = "X-Dockgate-Error"
_MAX_ERROR_HEADER = 2048
"""Bytes of error body copied into a header at most (nginx reads a sub-request's headers into
one 4 KB buffer); a longer one is left out and nginx answers with its own"""
_STATUS_HEADER = "X-Dockgate-Status"
_MAX_HEAD = 16 * 1024
"""Bytes of request line and headers at most: a login token is about 2 KB."""
_MAX_BODY = 64 * 1024
"""Bytes of a request body read (and dropped) at most: nginx's sub-request has none."""
_CHUNK = 64 * 1024
_LINGER = 1.0
_LINGER_BYTES = 1024 * 1024
"""After a refusal, seconds and bytes read and dropped at most before closing."""
_Headers = Sequence[tuple[str, str]]
_Answer = tuple[int, _Headers, bytes]


class _Refused(Exception):  # noqa: N818 (control flow: a request refused before it is answered)
    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


class HttpAuthEndpoint:
    """The endpoint on `host:port` (0: any free port, see `port` once started)."""

    def __init__(
        self,
        gate: RegistryGate,
        host: str,
        port: int,
        *,
        trusted_proxies: Iterable[Network] | None = None,
        idle_timeout: float = 60.0,
        request_timeout: float = 10.0,
    ) -> None:
        proxies = (
            (*gate.config.trusted_proxies, *LOOPBACK)
            if trusted_proxies is None
            else tuple(trusted_proxies)
        )
        self.gate = gate.with_trusted_proxies(proxies)
        self.host = host
        self._port = port
        self.idle_timeout = idle_timeout
        self.request_timeout = request_timeout
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, self.host, self._port)

    @property
    def port(self) -> int:
        if self._server is None or not self._server.sockets:
            raise RuntimeError("the HTTP auth endpoint is not listening")
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    async def close(self) -> None:
        """Stop listening and end every connection, in flight or idle."""
        if self._server is None:
            return
        self._server.close()
        for task in list(self._connections):
            task.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)
        await self._server.wait_closed()
        self._server = None

    async def __aenter__(self) -> HttpAuthEndpoint:
        await self.start()
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    # -- one connection ----------------------------------------------------------------------

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._connections.add(task)
        try:
            await self._converse(reader, writer)
        except (ConnectionError, TimeoutError):
            pass  # the client went away or stalled: nothing to answer
        except Exception:  # a bug: this connection ends, the server goes on
            log.exception("http auth connection failed")
        finally:
            if task is not None:
                self._connections.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _converse(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connection = h11.Connection(h11.SERVER, max_incomplete_event_size=_MAX_HEAD)
        peername = writer.get_extra_info("peername")
        peer = str(peername[0]) if isinstance(peername, tuple) and peername else ""
        while True:
            try:
                request = await self._read_request(connection, reader)
            except h11.RemoteProtocolError as error:
                await self._refuse(connection, reader, writer, error.error_status_hint)
                return
            except _Refused as refused:
                await self._refuse(connection, reader, writer, refused.status)
                return
            if request is None:
                return
            try:
                answer = self._answer(request, peer)
            except Exception:  # a bug: a 500 (nginx denies on it too), and the server goes on
                log.exception("http auth request failed")
                answer = (
                    500,
                    _JSON_HEADERS,
                    _error_body("DENIED", "the call could not be authorized"),
                )
            await self._send(connection, writer, answer, head=request.method == b"HEAD")
            if connection.our_state is not h11.DONE or connection.their_state is not h11.DONE:
                return  # h11 says the connection must close (HTTP/1.0, `Connection: close`)
            connection.start_next_cycle()

    async def _read_request(
        self, connection: h11.Connection, reader: asyncio.StreamReader
    ) -> h11.Request | None:
        """The next whole request (its body dropped), or None when the client is done."""
        if not connection.trailing_data[0]:  # nothing pipelined: wait for the next request
            try:
                data = await asyncio.wait_for(reader.read(_CHUNK), self.idle_timeout)
            except TimeoutError:
                return None
            if not data:
                return None
            connection.receive_data(data)
        request: h11.Request | None = None
        size = 0
        async with asyncio.timeout(self.request_timeout):
            while True:
                event = connection.next_event()
                if event is h11.NEED_DATA:
                    connection.receive_data(await reader.read(_CHUNK))
                elif isinstance(event, h11.Request):
                    # h11 bounds a head only while it is incomplete: one read can bring it whole
                    if _head_size(event) > _MAX_HEAD:
                        raise _Refused(431)
                    request = event
                elif isinstance(event, h11.Data):
                    size += len(event.data)
                    if size > _MAX_BODY:
                        raise _Refused(413)
                elif isinstance(event, h11.EndOfMessage):
                    return request
                elif isinstance(event, h11.ConnectionClosed):
                    return None

    async def _refuse(
        self,
        connection: h11.Connection,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        status: int,
    ) -> None:
        """Answer a request that cannot be served, then drain what the client still sends: closing
        with unread data resets the connection, and the client may lose the answer."""
        if connection.our_state not in (h11.IDLE, h11.SEND_RESPONSE):
            return
        messages = {413: "the request body is too large", 431: "the request head is too large"}
        body = _error_body("BAD_REQUEST", messages.get(status, "the request is not valid HTTP/1.1"))
        headers = [("Content-Type", "application/json; charset=utf-8"), ("Connection", "close")]
        with contextlib.suppress(h11.LocalProtocolError):
            await self._send(connection, writer, (status, headers, body), head=False)
        with contextlib.suppress(OSError, TimeoutError):
            if writer.can_write_eof():
                writer.write_eof()
            async with asyncio.timeout(_LINGER):
                drained = 0
                while drained < _LINGER_BYTES and (data := await reader.read(_CHUNK)):
                    drained += len(data)

    async def _send(
        self,
        connection: h11.Connection,
        writer: asyncio.StreamWriter,
        answer: _Answer,
        *,
        head: bool,
    ) -> None:
        status, headers, body = answer
        encoded = [(name.encode("ascii"), value.encode("latin-1")) for name, value in headers]
        encoded.append((b"Content-Length", str(len(body)).encode("ascii")))
        data = connection.send(h11.Response(status_code=status, headers=encoded)) or b""
        if body and not head:  # a HEAD answer declares the length and sends no body
            data += connection.send(h11.Data(data=body)) or b""
        data += connection.send(h11.EndOfMessage()) or b""
        writer.write(data)
        await asyncio.wait_for(writer.drain(), self.request_timeout)

    # -- one request -------------------------------------------------------------------------

    def _answer(self, request: h11.Request, peer: str) -> _Answer:
        target = request.target.decode("latin-1")
        path = target.split("?", 1)[0]
        fields: dict[str, list[str]] = {}
        for name, value in request.headers:
            fields.setdefault(name.decode("ascii").lower(), []).append(value.decode("latin-1"))
        if path == "/auth":
            return self._auth(fields, peer)
        if path == "/v2/_catalog":
            return self._catalog(request.method.decode("ascii"), target, fields, peer)
        return 404, _JSON_HEADERS, _error_body("NOT_FOUND", f"no such endpoint `{path[:200]}`")

    def _auth(self, fields: dict[str, list[str]], peer: str) -> _Answer:
        method = _single(fields, "x-original-method")
        uri = _single(fields, "x-original-uri")
        if method is None or uri is None:
            # nginx's own method is always GET: without the original, a DELETE would pass as a pull
            message = "the auth request needs exactly one X-Original-Method and X-Original-URI"
            return _with_error_header(403, _JSON_HEADERS, _error_body("DENIED", message))
        answer = self.gate.check(self._gate_request(method, uri, fields, peer))
        if answer.status == 200 and not answer.answered_here:
            headers = [(UPSTREAM_HEADER, answer.upstream_target), *answer.headers]
            return 200, headers, b""
        if answer.answered_here:
            # proxied on, the registry's own catalog would list every repository
            message = "the catalog is served by Dockgate's `/v2/_catalog`: route it there"
            headers = [(_STATUS_HEADER, "403"), *_JSON_HEADERS]
            return _with_error_header(403, headers, _error_body("DENIED", message))
        return _for_nginx(answer)

    def _catalog(
        self, method: str, target: str, fields: dict[str, list[str]], peer: str
    ) -> _Answer:
        answer = self.gate.check(self._gate_request(method, target, fields, peer))
        if answer.status == 200 and not answer.answered_here:  # not a catalog after all
            return 403, _JSON_HEADERS, _error_body("DENIED", "not a catalog request")
        return answer.status, list(answer.headers), answer.body

    def _gate_request(
        self, method: str, target: str, fields: dict[str, list[str]], peer: str
    ) -> GateRequest:
        proto = _joined(fields, "x-forwarded-proto")
        secure = None
        if proto and self.gate.trusts(peer):
            secure = proto.split(",")[0].strip().lower() == "https"
        return GateRequest(
            method=method,
            target=target,
            host=_joined(fields, "host") or "",
            authorization=_joined(fields, "authorization"),
            peer=peer,
            forwarded_for=_joined(fields, "x-forwarded-for"),
            secure=secure,
        )


async def start_http_auth(
    gate: RegistryGate,
    host: str,
    port: int,
    *,
    trusted_proxies: Iterable[Network] | None = None,
) -> HttpAuthEndpoint:
    """The endpoint, listening; `close()` it when done."""
    endpoint = HttpAuthEndpoint(gate, host, port, trusted_proxies=trusted_proxies)
    await endpoint.start()
    return endpoint


_JSON_HEADERS: _Headers = (("Content-Type", "application/json; charset=utf-8"),)


def _for_nginx(answer: GateAnswer) -> _Answer:
    """401 and 403 as they are; any other refusal as a 403 naming the real status."""
    headers = [(_STATUS_HEADER, str(answer.status)), *answer.headers]
    status = answer.status if answer.status in (401, 403) else 403
    return _with_error_header(status, headers, answer.body)


def _with_error_header(status: int, headers: _Headers, body: bytes) -> _Answer:
    """The refusal with its body also in `X-Dockgate-Error`: nginx drops an auth sub-request's
    body but can `auth_request_set` a header, and so answer with the body Envoy passes on."""
    if len(body) <= _MAX_ERROR_HEADER and body.isascii() and b"\n" not in body:
        headers = [*headers, (ERROR_HEADER, body.decode("ascii"))]
    return status, headers, body


def _head_size(request: h11.Request) -> int:
    return len(request.target) + sum(len(name) + len(value) for name, value in request.headers)


def _single(fields: dict[str, list[str]], name: str) -> str | None:
    values = fields.get(name, [])
    return values[0] if len(values) == 1 and values[0] else None


def _joined(fields: dict[str, list[str]], name: str) -> str | None:
    values = fields.get(name)
    return ",".join(values) if values else None


def _error_body(code: str, message: str) -> bytes:
    return json.dumps({"errors": [{"code": code, "message": message, "detail": None}]}).encode()
