"""A small HTTP/1.1 server (h11 on asyncio) that serves the routes a door hands it.

A route is a path, the methods it takes (or any) and an async handler from `HttpRequest` to
`HttpResponse`; a handler refuses a request by raising `HttpError`. The server owns the protocol:
connections stay open between requests (HTTP/1.0 ones close after each), pipelined requests are
answered in order, a request's head is bounded (431), its body is read whole up to the route's
bound (413), an idle connection closes after `idle_timeout`, a request must arrive whole within
`request_timeout`, garbage gets a 400, a HEAD answer has no body. Whatever the server refuses by
itself (400, 404, 405, 413, 431, and the 500 of a handler that failed) is rendered by the door's
`ErrorPage`, so each door keeps its own error bodies.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import ssl
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType, TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit

import h11

__all__ = [
    "MAX_BODY",
    "ErrorPage",
    "Handler",
    "HttpError",
    "HttpRequest",
    "HttpResponse",
    "HttpServer",
    "Route",
    "plain_error_page",
]

log = logging.getLogger("dockgate.http")

MAX_HEAD = 16 * 1024
"""Bytes of request line and headers at most: a login token is about 2 KB."""
MAX_BODY = 64 * 1024
"""Bytes of request body a route takes unless it says otherwise."""
_CHUNK = 64 * 1024
_LINGER = 1.0
_LINGER_BYTES = 1024 * 1024
"""After a refusal, seconds and bytes read and dropped at most before closing."""
_MESSAGES = {
    404: "no such endpoint",
    405: "method not allowed",
    413: "the request body is too large",
    431: "the request head is too large",
    500: "the request could not be served",
}
_FORM = "application/x-www-form-urlencoded"


class HttpError(Exception):
    """A request refused by a handler (or the server): the door's error page renders it."""

    def __init__(self, status: int, message: str, headers: Sequence[tuple[str, str]] = ()) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = tuple(headers)


@dataclass(frozen=True, slots=True)
class HttpRequest:
    method: str
    target: str
    """the raw path and query, as the client sent them"""
    headers: Mapping[str, tuple[str, ...]]
    """lower-case names → every value given, in order"""
    body: bytes
    peer: str
    """the address of whoever connected (a proxy, when there is one)"""

    @property
    def path(self) -> str:
        return self.target.split("?", 1)[0]

    @property
    def query(self) -> dict[str, list[str]]:
        """Every query parameter, repeated ones in order (`scope=a&scope=b`)."""
        return parse_qs(urlsplit(self.target).query, keep_blank_values=True)

    def single(self, name: str) -> str | None:
        """The header's value when it is given exactly once and is not empty, else None."""
        values = self.headers.get(name.lower(), ())
        return values[0] if len(values) == 1 and values[0] else None

    def joined(self, name: str) -> str | None:
        """Every value of the header joined with commas, as HTTP reads a repeated header."""
        values = self.headers.get(name.lower())
        return ",".join(values) if values else None

    def form(self) -> dict[str, list[str]]:
        """The `application/x-www-form-urlencoded` body; `HttpError` 400 for any other."""
        kind = (self.joined("content-type") or "").split(";", 1)[0].strip().lower()
        if kind != _FORM:
            raise HttpError(400, f"the body must be `{_FORM}`")
        try:
            text = self.body.decode("utf-8")
        except UnicodeDecodeError:
            raise HttpError(400, "the form body is not UTF-8") from None
        return parse_qs(text, keep_blank_values=True)

    def json(self) -> Any:
        """The JSON body; `HttpError` 400 when it is not JSON."""
        kind = (self.joined("content-type") or "").split(";", 1)[0].strip().lower()
        if kind != "application/json":
            raise HttpError(400, "the body must be `application/json`")
        try:
            return json.loads(self.body)
        except (ValueError, RecursionError):
            raise HttpError(400, "the body is not valid JSON") from None


@dataclass(frozen=True, slots=True)
class HttpResponse:
    status: int
    headers: tuple[tuple[str, str], ...] = ()
    """any header but Content-Length, which the server sets"""
    body: bytes = b""


Handler = Callable[[HttpRequest], Awaitable[HttpResponse]]
ErrorPage = Callable[[HttpError], HttpResponse]
"""The response for a request refused by the server or a handler (status, message, headers)."""


@dataclass(frozen=True, slots=True)
class Route:
    path: str
    """matched exactly, without the query"""
    handler: Handler
    methods: frozenset[str] | None = None
    """the methods taken (405 for others, with `Allow`); None: every method, the handler decides"""
    max_body: int = MAX_BODY
    """bytes of request body taken at most (413 past it)"""


def plain_error_page(error: HttpError) -> HttpResponse:
    """The message as plain text: the page of a door that chooses none."""
    headers = (("Content-Type", "text/plain; charset=utf-8"), *error.headers)
    return HttpResponse(error.status, headers, f"{error.message}\n".encode())


class _Refused(Exception):  # noqa: N818 (control flow: a request refused before it is answered)
    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


class HttpServer:
    """The routes on `host:port` (0: any free port, see `port` once started)."""

    def __init__(
        self,
        routes: Iterable[Route],
        host: str,
        port: int,
        *,
        name: str = "http",
        error_page: ErrorPage = plain_error_page,
        idle_timeout: float = 60.0,
        request_timeout: float = 10.0,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.tls = tls
        """HTTPS with this context (and mTLS when it requires client certificates); None: HTTP"""
        self.routes = {route.path: route for route in routes}
        self.host = host
        self.name = name
        """what the logs call this server (`<name> request failed`)"""
        self.error_page = error_page
        self.idle_timeout = idle_timeout
        self.request_timeout = request_timeout
        self._port = port
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        """Listening when this returns; `OSError` when the address cannot be listened on."""
        self._server = await asyncio.start_server(self._serve, self.host, self._port, ssl=self.tls)

    @property
    def port(self) -> int:
        if self._server is None or not self._server.sockets:
            raise RuntimeError(f"the {self.name} server is not listening")
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

    async def __aenter__(self) -> HttpServer:
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
        except asyncio.CancelledError:
            # `close` ended it: the task returns rather than ends cancelled, which asyncio's
            # stream callback (Python 3.11) would log as an error of the connection
            pass
        except Exception:  # a bug: this connection ends, the server goes on
            log.exception(f"{self.name} connection failed")
        finally:
            if task is not None:
                self._connections.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _converse(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connection = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEAD)
        peername = writer.get_extra_info("peername")
        peer = str(peername[0]) if isinstance(peername, tuple) and peername else ""
        while True:
            try:
                read = await self._read_request(connection, reader)
            except h11.RemoteProtocolError as error:
                await self._refuse(connection, reader, writer, error.error_status_hint)
                return
            except _Refused as refused:
                await self._refuse(connection, reader, writer, refused.status)
                return
            if read is None:
                return
            head, body = read
            response = await self._answer(head, body, peer)
            await self._send(connection, writer, response, head=head.method == b"HEAD")
            if connection.our_state is not h11.DONE or connection.their_state is not h11.DONE:
                return  # h11 says the connection must close (HTTP/1.0, `Connection: close`)
            connection.start_next_cycle()

    async def _read_request(
        self, connection: h11.Connection, reader: asyncio.StreamReader
    ) -> tuple[h11.Request, bytes] | None:
        """The next whole request and its body, or None when the client is done."""
        if not connection.trailing_data[0]:  # nothing pipelined: wait for the next request
            try:
                data = await asyncio.wait_for(reader.read(_CHUNK), self.idle_timeout)
            except TimeoutError:
                return None
            if not data:
                return None
            connection.receive_data(data)
        request: h11.Request | None = None
        bound = MAX_BODY
        body = bytearray()
        async with asyncio.timeout(self.request_timeout):
            while True:
                event = connection.next_event()
                if event is h11.NEED_DATA:
                    connection.receive_data(await reader.read(_CHUNK))
                elif isinstance(event, h11.Request):
                    # h11 bounds a head only while it is incomplete: one read can bring it whole
                    if _head_size(event) > MAX_HEAD:
                        raise _Refused(431)
                    request = event
                    route = self.routes.get(_path(event))
                    bound = route.max_body if route is not None else MAX_BODY
                elif isinstance(event, h11.Data):
                    body += event.data
                    if len(body) > bound:
                        raise _Refused(413)
                elif isinstance(event, h11.EndOfMessage):
                    return (request, bytes(body)) if request is not None else None
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
        message = _MESSAGES.get(status, "the request is not valid HTTP/1.1")
        response = self.error_page(HttpError(status, message, (("Connection", "close"),)))
        with contextlib.suppress(h11.LocalProtocolError):
            await self._send(connection, writer, response, head=False)
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
        response: HttpResponse,
        *,
        head: bool,
    ) -> None:
        encoded = [
            (name.encode("ascii"), value.encode("latin-1")) for name, value in response.headers
        ]
        encoded.append((b"Content-Length", str(len(response.body)).encode("ascii")))
        data = connection.send(h11.Response(status_code=response.status, headers=encoded)) or b""
        if response.body and not head:  # a HEAD answer declares the length and sends no body
            data += connection.send(h11.Data(data=response.body)) or b""
        data += connection.send(h11.EndOfMessage()) or b""
        writer.write(data)
        await asyncio.wait_for(writer.drain(), self.request_timeout)

    # -- one request -------------------------------------------------------------------------

    async def _answer(self, head: h11.Request, body: bytes, peer: str) -> HttpResponse:
        path = _path(head)
        route = self.routes.get(path)
        method = head.method.decode("ascii")
        try:
            if route is None:
                raise HttpError(404, f"no such endpoint `{path[:200]}`")
            if route.methods is not None and method not in route.methods:
                allowed = ", ".join(sorted(route.methods))
                raise HttpError(405, f"`{path}` takes {allowed}", (("Allow", allowed),))
            return await route.handler(_request(head, method, body, peer))
        except HttpError as refused:
            return self.error_page(refused)
        except Exception:  # a bug: a 500 from the door's error page, and the server goes on
            log.exception(f"{self.name} request failed")
            return self.error_page(HttpError(500, _MESSAGES[500]))


def _request(head: h11.Request, method: str, body: bytes, peer: str) -> HttpRequest:
    fields: dict[str, list[str]] = {}
    for name, value in head.headers:
        fields.setdefault(name.decode("ascii").lower(), []).append(value.decode("latin-1"))
    return HttpRequest(
        method=method,
        target=head.target.decode("latin-1"),
        headers=MappingProxyType({name: tuple(values) for name, values in fields.items()}),
        body=body,
        peer=peer,
    )


def _path(head: h11.Request) -> str:
    return head.target.decode("latin-1").split("?", 1)[0]


def _head_size(request: h11.Request) -> int:
    return len(request.target) + sum(len(name) + len(value) for name, value in request.headers)
