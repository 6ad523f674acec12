"""The registry's token server (Docker token authentication) in one process, on the HTTP server.

`GET /token` (Basic `AWS:<login password>`) and `POST /token` (the OAuth2 form) are answered by
`registry.token.issue_token`: every action a token grants is an IAM decision on the ECR actions
behind it, made with the context the registry gate uses. `GET /token/jwks.json` is the JWKS
document of the signing keys, for registries that fetch one (it sits under the realm's path, so
a proxy that forwards `/token` forwards it too). A registry with `auth: token` verifies the
tokens itself: no proxy stands between it and its clients.

Who the client is: docker, skopeo and the others connect to this door directly, so the TCP peer
is the client; `X-Forwarded-For` and `X-Forwarded-Proto` count only from `--trusted-proxy`
addresses. Unlike nginx's endpoint, loopback is not trusted by default: a client on this machine
could otherwise claim any source address. Past `--max-staleness`, or when the store cannot be
read, the answer is 503 and no token: a token would freeze a decision made on old policy.
"""

from __future__ import annotations

import argparse
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import ParamSpec, TypeVar

from dockgate_server.addresses import parse_address
from dockgate_server.frontends.door import (
    Listen,
    Option,
    Placement,
    Runtime,
    Section,
    Site,
    StartupError,
    Unavailable,
    cannot_listen,
)
from dockgate_server.frontends.http import HttpError, HttpRequest, HttpResponse, HttpServer, Route
from dockgate_server.frontends.registry import RegistrySettings, parse_registry_hosts
from dockgate_server.registry.context import ClientFacts
from dockgate_server.registry.context import parse_address as parse_ip
from dockgate_server.registry.gate import DecisionUnavailable, Network
from dockgate_server.registry.routes import Registry, registry_in
from dockgate_server.registry.token.issue import (
    DEFAULT_ISSUER,
    DEFAULT_TTL,
    MIN_TTL,
    TOKEN_PATH,
    TokenAnswer,
    TokenConfig,
    TokenRequest,
    issue_token,
)
from dockgate_server.registry.token.refresh import REFRESH_LIFETIME

__all__ = [
    "JWKS_PATH",
    "TOKEN_PATH",
    "TokenDoor",
    "TokenEndpoint",
    "TokenSettings",
    "error_page",
    "token_routes",
]

log = logging.getLogger("dockgate.token")

JWKS_PATH = "/token/jwks.json"
_JSON = ("Content-Type", "application/json")
_CODES = {404: "NOT_FOUND", 405: "UNSUPPORTED", 500: "UNKNOWN", 503: "UNAVAILABLE"}

P = ParamSpec("P")
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class TokenSettings:
    listen: str
    service: str
    """the registry's `auth.token.service`: every token's `aud`"""
    registry: Registry
    """the one registry whose repositories the token scopes name"""
    issuer: str = DEFAULT_ISSUER
    ttl: int = DEFAULT_TTL
    refresh_ttl: int = REFRESH_LIFETIME


class TokenDoor:
    name = "token"
    placement = Placement.ONE_PROCESS  # a few decisions a pull: the parent serves it
    announces = ("token_port",)
    uses_registry = True
    options = (
        Option(
            ("--token-listen",),
            {
                "metavar": "HOST:PORT",
                "help": "be the registry's token server (Docker token authentication): the "
                "realm is http://HOST:PORT/token; needs --token-service",
            },
            Section.REGISTRY,
            listens=True,
        ),
        Option(
            ("--token-service",),
            {
                "metavar": "NAME",
                "help": "the registry's auth.token.service: the tokens' audience (`aud`)",
            },
            Section.REGISTRY,
        ),
        Option(
            ("--token-issuer",),
            {
                "metavar": "NAME",
                "help": "the registry's auth.token.issuer: the tokens' issuer (`iss`, "
                f"default: {DEFAULT_ISSUER})",
            },
            Section.REGISTRY,
        ),
        Option(
            ("--token-ttl",),
            {
                "metavar": "SECONDS",
                "help": "how long a token lives (default: "
                f"{DEFAULT_TTL}): a decision frozen in a token outlives a policy change",
            },
            Section.REGISTRY,
        ),
        Option(
            ("--token-refresh-ttl",),
            {
                "metavar": "SECONDS",
                "help": "how long a refresh token lives at most (default: "
                f"{REFRESH_LIFETIME}; never past its login password)",
            },
            Section.REGISTRY,
        ),
    )

    def configure(self, arguments: argparse.Namespace) -> TokenSettings | None:
        listen = arguments.token_listen
        if listen is None:
            for option in ("token_service", "token_issuer", "token_ttl", "token_refresh_ttl"):
                if getattr(arguments, option) is not None:
                    flag = "--" + option.replace("_", "-")
                    raise ValueError(f"{flag} needs --token-listen")
            return None
        if not arguments.token_service:
            raise ValueError(
                "--token-listen needs --token-service NAME (the registry's auth.token.service)"
            )
        ttl = _seconds(arguments.token_ttl, "--token-ttl", DEFAULT_TTL, MIN_TTL, REFRESH_LIFETIME)
        refresh_ttl = _seconds(
            arguments.token_refresh_ttl, "--token-refresh-ttl", REFRESH_LIFETIME, ttl, None
        )
        issuer = arguments.token_issuer if arguments.token_issuer is not None else DEFAULT_ISSUER
        _check_name(arguments.token_service, "--token-service")
        _check_name(issuer, "--token-issuer")
        registry = _one_registry(RegistrySettings.from_arguments(arguments))
        return TokenSettings(listen, arguments.token_service, registry, issuer, ttl, refresh_ttl)

    def listens(self, settings: TokenSettings) -> tuple[Listen, ...]:
        return (Listen("--token-listen", settings.listen, "token_port"),)

    async def open(self, settings: TokenSettings, site: Site) -> TokenEndpoint:
        address = parse_address(settings.listen, "--token-listen", listen=True)
        proxies = site.registry.gate_config().trusted_proxies
        server = HttpServer(
            token_routes(_config(settings, proxies), site.runtime),
            address.host,
            address.port,
            name="token",
            error_page=error_page,
        )
        try:
            await server.start()
        except OSError as problem:
            raise StartupError(cannot_listen("--token-listen", settings.listen, problem)) from None
        return TokenEndpoint(server)


class TokenEndpoint:
    """The token server listening in one process."""

    def __init__(self, server: HttpServer) -> None:
        self.server = server
        self.ports = {"token_port": server.port}

    async def serve(self) -> None:
        """It answers from the moment it listens."""

    async def reflect(self, reachable: bool, fresh: bool) -> None:
        """Past `--max-staleness` each request is answered 503: nothing to turn off."""

    async def drain(self, grace: float) -> None:
        await self.server.close()


def token_routes(config: TokenConfig, runtime: Runtime) -> list[Route]:
    """`/token` (GET, POST) and `/token/jwks.json` (GET), answered from `runtime`."""
    answers = _Answers(config, runtime)
    return [
        Route(TOKEN_PATH, answers.token, methods=frozenset({"GET", "POST"})),
        Route(JWKS_PATH, answers.jwks, methods=frozenset({"GET"})),
    ]


def error_page(error: HttpError) -> HttpResponse:
    """What the server refuses by itself, in the registry's error format (as `GET /token`)."""
    code = _CODES.get(error.status, "INVALID_REQUEST")
    body = {"errors": [{"code": code, "message": error.message, "detail": None}]}
    return HttpResponse(error.status, (_JSON, *error.headers), json.dumps(body).encode())


class _Answers:
    def __init__(self, config: TokenConfig, runtime: Runtime) -> None:
        self.config = config
        self.runtime = runtime
        # past --max-staleness the runtime raises Unavailable: issue_token answers 503 for
        # DecisionUnavailable, and anything else would be a 500 with a logged traceback
        self.verify_login = _unavailable_as_decision(runtime.verify_login)
        self.decide = _unavailable_as_decision(runtime.decide)
        self.repositories = _unavailable_as_decision(runtime.repositories)
        self.keys = _unavailable_as_decision(runtime.token_keyring)

    async def token(self, request: HttpRequest) -> HttpResponse:
        answer = issue_token(
            TokenRequest(
                method=request.method,
                query=request.target.partition("?")[2],
                client=self._client(request),
                authorization=request.joined("authorization"),
                content_type=request.joined("content-type"),
                body=request.body,
            ),
            self.config,
            verify_login=self.verify_login,
            decide=self.decide,
            repositories=self.repositories,
            keys=self.keys,
            clock=self.runtime.clock.now,
        )
        _log(answer)
        return HttpResponse(answer.status, answer.headers, answer.body)

    async def jwks(self, request: HttpRequest) -> HttpResponse:
        try:
            keyring = self.runtime.token_keyring()
        except Unavailable as problem:
            raise HttpError(503, str(problem)) from None
        # no-cache: right after a rotation tokens are signed with a key an old copy lacks
        headers = (_JSON, ("Cache-Control", "no-cache"))
        return HttpResponse(200, headers, json.dumps(keyring.jwks()).encode())

    def _client(self, request: HttpRequest) -> ClientFacts:
        proto = request.joined("x-forwarded-proto")
        secure = None
        if proto and _trusts(self.config.trusted_proxies, request.peer):
            secure = proto.split(",")[0].strip().lower() == "https"
        return ClientFacts(request.peer, request.joined("x-forwarded-for"), secure)


# -- settings ---------------------------------------------------------------------------------


def _seconds(text: str | None, option: str, default: int, lowest: int, highest: int | None) -> int:
    """A whole number of seconds in [lowest, highest]; ValueError naming `option`."""
    if text is None:
        return default
    shown = text[:32]
    bounds = f"at least {lowest}" + (f" and at most {highest}" if highest is not None else "")
    if not text.isascii() or not text.strip().isdigit():
        raise ValueError(f"{option} `{shown}`: expected a whole number of seconds, {bounds}")
    value = int(text)
    if value < lowest or (highest is not None and value > highest):
        raise ValueError(f"{option} `{shown}`: expected {bounds} seconds")
    return value


def _check_name(value: str, option: str) -> None:
    """A value the registry's YAML and the `WWW-Authenticate` challenge quote: printable ASCII
    without `"`."""
    if not value or not all(" " <= c <= "~" and c != '"' for c in value):
        raise ValueError(f'{option} `{value[:200]}`: expected printable ASCII without `"`')


def _one_registry(settings: RegistrySettings) -> Registry:
    """The registry the tokens are for. A token request names no registry host, so a host map
    must map every host to the same registry. Raises ValueError naming the options."""
    settings.check(needed=True)
    if settings.account is not None and settings.region is not None:
        return registry_in(settings.account, settings.region)
    registries = set(parse_registry_hosts(settings.hosts).values())
    if len(registries) != 1:
        raise ValueError(
            "--token-listen: --registry-host names several registries and a token request "
            "names none: give --registry-account and --registry-region"
        )
    return registries.pop()


def _config(settings: TokenSettings, proxies: tuple[Network, ...]) -> TokenConfig:
    return TokenConfig(
        service=settings.service,
        issuer=settings.issuer,
        registry=settings.registry,
        ttl=settings.ttl,
        refresh_ttl=settings.refresh_ttl,
        trusted_proxies=proxies,
    )


# -- plumbing ---------------------------------------------------------------------------------


def _unavailable_as_decision(call: Callable[P, T]) -> Callable[P, T]:
    def called(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return call(*args, **kwargs)
        except Unavailable as stale:  # never a token from old policy
            raise DecisionUnavailable(str(stale)) from None

    return called


def _trusts(proxies: Sequence[Network], peer: str) -> bool:
    address = parse_ip(peer)
    return address is not None and any(address in network for network in proxies)


def _log(answer: TokenAnswer) -> None:
    """One line a request: a token is a decision that outlives it, worth a record."""
    fields: dict[str, object] = {"status": answer.status, "principal": answer.principal}
    if answer.status == 200:
        fields["access"] = [
            f"{entry.type}:{entry.name}:{','.join(entry.actions)}" for entry in answer.granted
        ]
        if answer.ignored_scopes:
            fields["ignored_scopes"] = list(answer.ignored_scopes)
        log.info("token issued", extra={"fields": fields})
    else:
        log.info("token refused", extra={"fields": fields})
