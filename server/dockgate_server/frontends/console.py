"""The web console (`--console-listen`): a static front end and its JSON API, in one process.

The pages (`console-assets/`: HTML, CSS and plain JavaScript, shipped in the package, nothing
fetched from elsewhere) ask the questions of `console_api` through the runtime: a decision and
its reasons, who can, what can, a preview, the state. The console never writes: changes go
through the admin API. It has no login of its own, so it shows every policy to whoever reaches
it: keep it on 127.0.0.1. A request naming another host (`Host:`) than an IP address,
`localhost` or the listen address is refused, so a web page cannot reach it by DNS rebinding.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources

from dockgate_server.addresses import parse_address
from dockgate_server.frontends.console_api import ConsoleApi, api_routes
from dockgate_server.frontends.door import (
    Listen,
    Option,
    Placement,
    Site,
    StartupError,
    cannot_listen,
)
from dockgate_server.frontends.http import (
    Handler,
    HttpError,
    HttpRequest,
    HttpResponse,
    HttpServer,
    Route,
)

__all__ = ["ConsoleDoor", "ConsoleEndpoint", "ConsoleSettings", "console_routes", "error_page"]

ASSETS = ("index.html", "app.js", "app.css")
_TYPES = {
    "html": "text/html; charset=utf-8",
    "js": "text/javascript; charset=utf-8",
    "css": "text/css; charset=utf-8",
}
_SECURITY: Sequence[tuple[str, str]] = (
    (
        "Content-Security-Policy",
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
        "img-src 'self' data:; form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
    ),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
)


@dataclass(frozen=True, slots=True)
class ConsoleSettings:
    listen: str


class ConsoleDoor:
    name = "console"
    placement = Placement.ONE_PROCESS  # pages and analysis questions, not the hot path
    announces = ("console_port",)
    uses_registry = False
    options = (
        Option(
            ("--console-listen",),
            {
                "metavar": "HOST:PORT",
                "help": "serve the web console (ask, who can, what can, preview, state; it "
                "never writes) over HTTP here; it has no login and shows every policy: keep it "
                "on 127.0.0.1 (default: off)",
            },
            listens=True,
        ),
    )

    def configure(self, arguments: argparse.Namespace) -> ConsoleSettings | None:
        listen = arguments.console_listen
        return ConsoleSettings(listen) if listen is not None else None

    def listens(self, settings: ConsoleSettings) -> tuple[Listen, ...]:
        return (Listen("--console-listen", settings.listen, "console_port"),)

    async def open(self, settings: ConsoleSettings, site: Site) -> ConsoleEndpoint:
        address = parse_address(settings.listen, "--console-listen", listen=True)
        routes = console_routes(ConsoleApi(site.runtime), address.host)
        server = HttpServer(
            routes, address.host, address.port, name="console", error_page=error_page
        )
        try:
            await server.start()
        except OSError as problem:
            raise StartupError(
                cannot_listen("--console-listen", settings.listen, problem)
            ) from None
        return ConsoleEndpoint(server)


class ConsoleEndpoint:
    """The console listening in one process."""

    def __init__(self, server: HttpServer) -> None:
        self.server = server
        self.ports = {"console_port": server.port}

    async def serve(self) -> None:
        """It answers from the moment it listens."""

    async def reflect(self, reachable: bool, fresh: bool) -> None:
        """The state page reads the freshness itself; past `--max-staleness` the questions are
        answered 503."""

    async def drain(self, grace: float) -> None:
        await self.server.close()


def console_routes(api: ConsoleApi, listen_host: str) -> list[Route]:
    """The pages and `/api/`, each refusing a `Host:` that is not this console's."""
    pages = [Route("/", _asset("index.html"), methods=frozenset({"GET", "HEAD"}))]
    pages += [
        Route(f"/{name}", _asset(name), methods=frozenset({"GET", "HEAD"})) for name in ASSETS
    ]
    return [
        Route(route.path, _host_checked(route.handler, listen_host), route.methods, route.max_body)
        for route in (*pages, *api_routes(api))
    ]


def error_page(error: HttpError) -> HttpResponse:
    """`{"error": message}`: what the pages show."""
    body = json.dumps({"error": error.message}).encode()
    headers = (("Content-Type", "application/json; charset=utf-8"), *_SECURITY, *error.headers)
    return HttpResponse(error.status, headers, body)


def _asset(name: str) -> Handler:
    body = (
        resources.files("dockgate_server.frontends").joinpath("console-assets", name).read_bytes()
    )
    headers = (("Content-Type", _TYPES[name.rsplit(".", 1)[1]]), ("Cache-Control", "no-cache"))

    async def serve(request: HttpRequest) -> HttpResponse:
        return HttpResponse(200, (*headers, *_SECURITY), body)

    return serve


def _host_checked(handler: Handler, listen_host: str) -> Handler:
    async def checked(request: HttpRequest) -> HttpResponse:
        host = request.single("host")
        if host is None or not _is_own_host(host, listen_host):
            raise HttpError(421, f"host `{host}`: not this console's address")
        return await handler(request)

    return checked


def _is_own_host(host: str, listen_host: str) -> bool:
    """Whether a `Host:` header names this console: an IP address, `localhost`, or the host it
    listens on (a DNS name pointing at it from a web page's origin is none of these)."""
    name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
    name = name.strip("[]").lower()
    if name in ("localhost", listen_host.lower()):
        return True
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True
