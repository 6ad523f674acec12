"""The token door over real sockets: scopes decided by the real engine, partial grants, 401s,
the OAuth2 form and refresh tokens, the JWKS document, 503 and no token when stale, the client's
address from trusted proxies only, and the door's options."""

from __future__ import annotations

import argparse
import asyncio
import base64
import http.client
import json
import socket
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from ipaddress import ip_network
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlencode

import pytest

from dockgate_server.cli_serve import add_serve_options
from dockgate_server.credentials.login import Login, LoginRejected, Rejection
from dockgate_server.engine.decision import Decision
from dockgate_server.frontends.door import Runtime, Site, StartupError, Unavailable
from dockgate_server.frontends.http import HttpServer
from dockgate_server.frontends.registry import RegistrySettings
from dockgate_server.frontends.token import (
    JWKS_PATH,
    TokenDoor,
    TokenSettings,
    error_page,
    token_routes,
)
from dockgate_server.registry.token.issue import TokenConfig
from dockgate_server.registry.token.jwt import verify_access_token
from dockgate_server.registry.token.keys import Keyring
from tests.server.registry.token.fleet import (
    ALICE,
    BOB,
    CAROL,
    REGISTRY,
    REPOSITORIES,
    Decisions,
    arn,
)
from tests.server.registry.token.keys_for_tests import NOW, keyring

SERVICE = "dockgate-registry"
CONFIG = TokenConfig(service=SERVICE, issuer="dockgate", registry=REGISTRY)
PASSWORDS = {"alice-password": ALICE, "bob-password": BOB, "carol-password": CAROL}
FORM = "application/x-www-form-urlencoded"


class FixedClock:
    def __init__(self, now: float) -> None:
        self.moment = now

    def now(self) -> float:
        return self.moment


@dataclass
class FakeRuntime:
    """The parts of a `Runtime` the token door uses: the real engine over the small fleet, a
    keyring, logins by password, and a switch that makes it stale (`Unavailable`)."""

    ring: Keyring = field(default_factory=keyring)
    stale: bool = False
    decisions: Decisions = field(default_factory=Decisions)
    contexts: list[dict[str, str]] = field(default_factory=list)
    clock: FixedClock = field(default_factory=lambda: FixedClock(NOW))
    metrics: None = None

    def _fresh(self) -> None:
        if self.stale:
            raise Unavailable("the policy is older than --max-staleness allows")

    def decide(
        self, principal: str, action: str, resource: str, context: Mapping[str, str]
    ) -> Decision:
        self._fresh()
        self.contexts.append(dict(context))
        return self.decisions(principal, action, resource, context)

    def repositories(self) -> list[str]:
        self._fresh()
        return [arn(name) for name in REPOSITORIES]

    def verify_login(self, password: str) -> Login:
        self._fresh()
        if password == "expired-password":
            raise LoginRejected(Rejection.EXPIRED, "your authorization token has expired")
        if password not in PASSWORDS:
            raise LoginRejected(Rejection.MALFORMED, "not a login token")
        return Login(PASSWORDS[password], NOW + 12 * 3600)

    def token_keyring(self) -> Keyring:
        if self.stale:
            raise Unavailable("the signing keys cannot be read: the store is down")
        return self.ring


def as_runtime(fake: FakeRuntime) -> Runtime:
    """The fake as the door sees it: it has only the parts a token door uses."""
    return cast(Runtime, fake)


@dataclass(frozen=True)
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    def claims(self, runtime: FakeRuntime) -> dict[str, Any]:
        assert self.status == 200, self.body
        token = self.json()["token"]
        return verify_access_token(
            token, runtime.ring, issuer="dockgate", audience=SERVICE, now=NOW
        )


Scenario = Callable[[int], Awaitable[None]]


def serve(runtime: FakeRuntime, scenario: Scenario, config: TokenConfig = CONFIG) -> None:
    async def run() -> None:
        server = HttpServer(
            token_routes(config, as_runtime(runtime)),
            "127.0.0.1",
            0,
            name="token",
            error_page=error_page,
        )
        async with server:
            await asyncio.wait_for(scenario(server.port), 20)

    asyncio.run(run())


async def call(
    port: int,
    method: str,
    target: str,
    *,
    password: str | None = None,
    headers: Mapping[str, str] | None = None,
    form: Mapping[str, Any] | None = None,
) -> Reply:
    """One request over a real socket (http.client, in a thread)."""
    sent = dict(headers or {})
    if password is not None:
        sent["Authorization"] = "Basic " + base64.b64encode(f"AWS:{password}".encode()).decode()
    body = None
    if form is not None:
        body = urlencode(form, doseq=True).encode()
        sent.setdefault("Content-Type", FORM)

    def send() -> Reply:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        try:
            connection.request(method, target, body=body, headers=sent)
            response = connection.getresponse()
            return Reply(response.status, dict(response.getheaders()), response.read())
        finally:
            connection.close()

    return await asyncio.to_thread(send)


def token_path(*scopes: str, service: str = SERVICE) -> str:
    return "/token?" + urlencode({"service": service, "scope": list(scopes)}, doseq=True)


# -- GET /token ---------------------------------------------------------------------------------


def test_a_get_grants_what_iam_allows_in_a_signed_token() -> None:
    runtime = FakeRuntime()

    async def scenario(port: int) -> None:
        path = token_path("repository:team-a/app:pull,push", "repository:prod/secret:pull")
        reply = await call(port, "GET", path, password="alice-password")
        claims = reply.claims(runtime)
        assert claims["sub"] == ALICE and claims["iss"] == "dockgate" and claims["aud"] == SERVICE
        assert claims["exp"] - claims["iat"] == 300 and claims["nbf"] <= claims["iat"]
        # prod/* is explicitly denied to alice: it is left out, not an error
        assert claims["access"] == [
            {"type": "repository", "name": "team-a/app", "actions": ["pull", "push"]}
        ]
        assert reply.headers["Cache-Control"] == "no-store"
        assert reply.json()["expires_in"] == 300

    serve(runtime, scenario)


def test_a_partial_grant_carries_only_the_actions_allowed() -> None:
    """carol, another account, may pull team-a/app through its repository policy, not push."""
    runtime = FakeRuntime()

    async def scenario(port: int) -> None:
        path = token_path("repository:team-a/app:pull,push", "repository:team-b/tools:pull")
        reply = await call(port, "GET", path, password="carol-password")
        assert reply.claims(runtime)["access"] == [
            {"type": "repository", "name": "team-a/app", "actions": ["pull"]}
        ]

    serve(runtime, scenario)


def test_nothing_granted_is_a_token_with_empty_access() -> None:
    runtime = FakeRuntime()

    async def scenario(port: int) -> None:
        path = token_path("repository:team-b/tools:pull")
        reply = await call(port, "GET", path, password="carol-password")
        assert reply.claims(runtime)["access"] == []

    serve(runtime, scenario)


@pytest.mark.parametrize(
    ("password", "message"),
    [
        (None, "authentication required"),
        ("not-a-password", "your authorization token is invalid"),
        ("expired-password", "your authorization token has expired"),
    ],
)
def test_missing_wrong_or_expired_credentials_get_401_and_no_token(
    password: str | None, message: str
) -> None:
    runtime = FakeRuntime()

    async def scenario(port: int) -> None:
        reply = await call(port, "GET", token_path("repository:team-a/app:pull"), password=password)
        assert reply.status == 401
        assert reply.headers["WWW-Authenticate"] == f'Basic realm="{SERVICE}"'
        assert "token" not in reply.json()
        assert reply.json()["errors"][0]["message"] == message

    serve(runtime, scenario)
    assert runtime.contexts == []  # nothing was decided


def test_another_service_is_refused() -> None:
    async def scenario(port: int) -> None:
        path = token_path("repository:team-a/app:pull", service="another-registry")
        reply = await call(port, "GET", path, password="alice-password")
        assert reply.status == 400 and "token" not in reply.json()
        assert (
            reply.json()["errors"][0]["message"] == "service `another-registry` is not served here"
        )

    serve(FakeRuntime(), scenario)


def test_stale_policy_is_503_and_no_token() -> None:
    runtime = FakeRuntime(stale=True)

    async def scenario(port: int) -> None:
        reply = await call(
            port, "GET", token_path("repository:team-a/app:pull"), password="alice-password"
        )
        assert reply.status == 503 and "token" not in reply.json()
        assert reply.json()["errors"][0]["code"] == "UNAVAILABLE"
        reply = await call(
            port,
            "POST",
            "/token",
            form={"grant_type": "password", "username": "AWS", "password": "alice-password"}
            | {"service": SERVICE},
        )
        assert reply.status == 503 and reply.json()["error"] == "temporarily_unavailable"
        assert (await call(port, "GET", JWKS_PATH)).status == 503

    serve(runtime, scenario)


def test_stale_decisions_with_a_readable_keyring_are_503_too() -> None:
    """The keys read fine but a decision cannot be made: still no token."""

    class StaleDecisions(FakeRuntime):
        def decide(
            self, principal: str, action: str, resource: str, context: Mapping[str, str]
        ) -> Decision:
            raise Unavailable("the policy is older than --max-staleness allows")

    async def scenario(port: int) -> None:
        reply = await call(
            port, "GET", token_path("repository:team-a/app:pull"), password="alice-password"
        )
        assert reply.status == 503 and "token" not in reply.json()

    serve(StaleDecisions(), scenario)


# -- the client's address -----------------------------------------------------------------------


def test_the_peer_is_the_source_ip_and_forwarded_headers_do_not_count_by_default() -> None:
    """bob may pull only from 10.0.0.0/8; the test connects from 127.0.0.1, and loopback is not
    a trusted proxy unless --trusted-proxy says so."""
    runtime = FakeRuntime()
    forwarded = {"X-Forwarded-For": "10.1.2.3", "X-Forwarded-Proto": "https"}

    async def scenario(port: int) -> None:
        path = token_path("repository:team-b/tools:pull")
        reply = await call(port, "GET", path, password="bob-password", headers=forwarded)
        assert reply.claims(runtime)["access"] == []

    serve(runtime, scenario)
    assert {c["aws:SourceIp"] for c in runtime.contexts} == {"127.0.0.1"}
    assert {c["aws:SecureTransport"] for c in runtime.contexts} == {"false"}


def test_behind_a_trusted_proxy_the_forwarded_client_is_decided_for() -> None:
    runtime = FakeRuntime()
    config = TokenConfig(
        service=SERVICE,
        issuer="dockgate",
        registry=REGISTRY,
        trusted_proxies=(ip_network("127.0.0.0/8"),),
    )
    forwarded = {"X-Forwarded-For": "10.1.2.3", "X-Forwarded-Proto": "https"}

    async def scenario(port: int) -> None:
        path = token_path("repository:team-b/tools:pull")
        reply = await call(port, "GET", path, password="bob-password", headers=forwarded)
        assert reply.claims(runtime)["access"] == [
            {"type": "repository", "name": "team-b/tools", "actions": ["pull"]}
        ]

    serve(runtime, scenario, config)
    assert {c["aws:SourceIp"] for c in runtime.contexts} == {"10.1.2.3"}
    assert {c["aws:SecureTransport"] for c in runtime.contexts} == {"true"}
    assert {c["aws:RequestedRegion"] for c in runtime.contexts} == {"us-east-1"}


# -- POST /token: the OAuth2 form ---------------------------------------------------------------


def test_the_oauth2_form_and_a_refresh_token() -> None:
    runtime = FakeRuntime()

    async def scenario(port: int) -> None:
        form = {
            "grant_type": "password",
            "username": "AWS",
            "password": "alice-password",
            "service": SERVICE,
            "scope": "repository:team-a/app:pull,delete",
            "access_type": "offline",
        }
        reply = await call(port, "POST", "/token", form=form)
        got = reply.json()
        assert got["scope"] == "repository:team-a/app:pull"  # alice may not delete
        assert reply.claims(runtime)["access"][0]["actions"] == ["pull"]
        refresh = {
            "grant_type": "refresh_token",
            "refresh_token": got["refresh_token"],
            "service": SERVICE,
            "scope": "repository:team-a/app:push",
        }
        again = await call(port, "POST", "/token", form=refresh)
        assert again.status == 200 and again.json()["refresh_token"] == got["refresh_token"]
        assert again.json()["scope"] == "repository:team-a/app:push"

        wrong = await call(port, "POST", "/token", form={**form, "password": "nope"})
        assert wrong.status == 401 and wrong.json()["error"] == "invalid_grant"
        assert "access_token" not in wrong.json()

    serve(runtime, scenario)


def test_a_post_that_is_not_a_form_is_refused() -> None:
    async def scenario(port: int) -> None:
        reply = await call(
            port,
            "POST",
            "/token",
            form={"grant_type": "password"},
            headers={"Content-Type": "application/json"},
        )
        assert reply.status == 400 and reply.json()["error"] == "invalid_request"

    serve(FakeRuntime(), scenario)


# -- the JWKS document and what the server refuses ---------------------------------------------


def test_the_jwks_document_lists_the_public_keys() -> None:
    runtime = FakeRuntime()

    async def scenario(port: int) -> None:
        reply = await call(port, "GET", JWKS_PATH)
        assert reply.status == 200 and reply.json() == runtime.ring.jwks()
        assert all("d" not in key for key in reply.json()["keys"])
        assert reply.headers["Cache-Control"] == "no-cache"

    serve(runtime, scenario)


def test_other_paths_and_methods_get_the_registry_error_format() -> None:
    async def scenario(port: int) -> None:
        missing = await call(port, "GET", "/v2/")
        assert missing.status == 404 and missing.json()["errors"][0]["code"] == "NOT_FOUND"
        put = await call(port, "PUT", "/token")
        assert put.status == 405 and put.json()["errors"][0]["code"] == "UNSUPPORTED"
        assert {m.strip() for m in put.headers["Allow"].split(",")} == {"GET", "POST"}

    serve(FakeRuntime(), scenario)


# -- the door -----------------------------------------------------------------------------------


def parsed(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_serve_options(parser, "/data")
    return parser.parse_args(list(argv))


REGISTRY_ARGS = ("--registry-account", "111122223333", "--registry-region", "us-east-1")


def test_the_door_is_off_without_token_listen() -> None:
    assert TokenDoor().configure(parsed(*REGISTRY_ARGS)) is None


def test_the_door_settings_from_the_options() -> None:
    arguments = parsed(
        "--token-listen",
        "127.0.0.1:0",
        "--token-service",
        SERVICE,
        "--token-ttl",
        "120",
        "--token-issuer",
        "me",
        *REGISTRY_ARGS,
    )
    settings = TokenDoor().configure(arguments)
    assert settings == TokenSettings("127.0.0.1:0", SERVICE, REGISTRY, "me", 120, 43200)
    assert [(listen.option, listen.announce) for listen in TokenDoor().listens(settings)] == [
        ("--token-listen", "token_port")
    ]
    # a host map naming one registry is that registry
    mapped = parsed(
        "--token-listen",
        "127.0.0.1:0",
        "--token-service",
        SERVICE,
        "--registry-host",
        "registry.example=111122223333:us-east-1",
    )
    found = TokenDoor().configure(mapped)
    assert found is not None and found.registry == REGISTRY


ON = ("--token-listen", "127.0.0.1:0", "--token-service", SERVICE)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (("--token-service", SERVICE), "--token-service needs --token-listen"),
        (("--token-ttl", "60"), "--token-ttl needs --token-listen"),
        (
            ("--token-listen", "127.0.0.1:0", *REGISTRY_ARGS),
            "--token-listen needs --token-service NAME (the registry's auth.token.service)",
        ),
        (
            ("--token-listen", "127.0.0.1:0", "--token-service", 'a"b', *REGISTRY_ARGS),
            '--token-service `a"b`: expected printable ASCII without `"`',
        ),
        (
            (*ON, "--token-ttl", "59", *REGISTRY_ARGS),
            "--token-ttl `59`: expected at least 60 and at most 43200 seconds",
        ),
        (
            (*ON, "--token-ttl", "5m", *REGISTRY_ARGS),
            "--token-ttl `5m`: expected a whole number of seconds, at least 60 and at most 43200",
        ),
        (
            (*ON, "--token-ttl", "600", "--token-refresh-ttl", "300", *REGISTRY_ARGS),
            "--token-refresh-ttl `300`: expected at least 600 seconds",
        ),
        (
            ON,
            "the registry adapters need --registry-account and --registry-region, "
            "or --registry-host HOST=ACCOUNT:REGION",
        ),
        (
            (
                *ON,
                "--registry-host",
                "a.example=111122223333:us-east-1",
                "--registry-host",
                "b.example=444455556666:us-east-1",
            ),
            "--token-listen: --registry-host names several registries and a token request "
            "names none: give --registry-account and --registry-region",
        ),
    ],
)
def test_settings_that_cannot_work_name_the_option(argv: tuple[str, ...], message: str) -> None:
    with pytest.raises(ValueError, match=r".") as raised:
        TokenDoor().configure(parsed(*argv))
    assert str(raised.value) == message


def test_the_door_opens_serves_and_drains(tmp_path: Path) -> None:
    runtime = FakeRuntime()
    settings = TokenSettings("127.0.0.1:0", SERVICE, REGISTRY)
    site = Site(
        as_runtime(runtime),
        tmp_path,
        RegistrySettings(account="111122223333", region="us-east-1"),
    )

    async def run() -> None:
        opened = await TokenDoor().open(settings, site)
        await opened.serve()
        port = opened.ports["token_port"]
        assert port > 0
        reply = await call(
            port, "GET", token_path("repository:team-a/app:pull"), password="alice-password"
        )
        assert reply.claims(runtime)["access"][0]["actions"] == ["pull"]
        await opened.drain(1.0)
        with pytest.raises(OSError):
            await call(port, "GET", JWKS_PATH)

    asyncio.run(run())


def test_a_port_in_use_is_a_startup_error_naming_the_option(tmp_path: Path) -> None:
    site = Site(
        as_runtime(FakeRuntime()),
        tmp_path,
        RegistrySettings(account="111122223333", region="us-east-1"),
    )
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        address = f"127.0.0.1:{taken.getsockname()[1]}"
        settings = TokenSettings(address, SERVICE, REGISTRY)
        with pytest.raises(StartupError) as raised:
            asyncio.run(TokenDoor().open(settings, site))
    message = str(raised.value)
    assert message.startswith(f"--token-listen {address}: ") and message.endswith("in use")
