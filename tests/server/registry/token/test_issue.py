"""One token request → its answer: `GET /token` with Basic credentials, the OAuth2 form, refresh
tokens, bad credentials, and no token at all when anything fails."""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from ipaddress import ip_network
from typing import Any
from urllib.parse import urlencode

import pytest

from dockgate_server.credentials.login import Login, LoginRejected, Rejection
from dockgate_server.engine.decision import Decision
from dockgate_server.registry.context import ClientFacts
from dockgate_server.registry.gate import DecisionUnavailable
from dockgate_server.registry.token.issue import (
    MAX_SCOPES,
    TokenAnswer,
    TokenConfig,
    TokenRequest,
    issue_token,
)
from dockgate_server.registry.token.jwt import verify_access_token
from dockgate_server.registry.token.keys import Keyring, load_keyring
from tests.server.registry.token.fleet import ALICE, BOB, REGISTRY, REPOSITORIES, Decisions, arn
from tests.server.registry.token.keys_for_tests import NOW, keyring

SERVICE = "dockgate-registry"
CONFIG = TokenConfig(service=SERVICE, issuer="dockgate", registry=REGISTRY)
INSIDE = ClientFacts("10.1.2.3")
FORM = "application/x-www-form-urlencoded"


@dataclass
class Logins:
    """Each password stands for a principal until it is revoked."""

    principals: dict[str, str] = field(
        default_factory=lambda: {"alice-password": ALICE, "bob-password": BOB}
    )
    revoked: set[str] = field(default_factory=set)
    expires_at: float = NOW + 12 * 3600

    def __call__(self, password: str) -> Login:
        if password in self.revoked:
            raise LoginRejected(Rejection.REVOKED, "the login token was revoked")
        if password == "expired-password":
            raise LoginRejected(Rejection.EXPIRED, "your authorization token has expired")
        if password not in self.principals:
            raise LoginRejected(Rejection.MALFORMED, "not a login token")
        return Login(self.principals[password], self.expires_at)


def basic(password: str, user: str = "AWS") -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def ask(
    query: Mapping[str, Any] | None = None,
    *,
    authorization: str | None = None,
    password: str | None = "alice-password",
    form: Mapping[str, Any] | None = None,
    content_type: str = FORM,
    method: str | None = None,
    client: ClientFacts = INSIDE,
    config: TokenConfig = CONFIG,
    logins: Logins | None = None,
    decide: Any = None,
    keys: Keyring | None = None,
) -> TokenAnswer:
    if authorization is None and password is not None and form is None:
        authorization = basic(password)
    request = TokenRequest(
        method or ("POST" if form is not None else "GET"),
        urlencode(query or {"service": SERVICE}, doseq=True),
        client,
        authorization,
        content_type if form is not None else None,
        urlencode(form or {}, doseq=True).encode(),
    )
    listed = [arn(name) for name in REPOSITORIES]
    ring = keys or keyring()
    return issue_token(
        request,
        config,
        verify_login=logins or Logins(),
        decide=decide or Decisions(),
        repositories=lambda: listed,
        keys=lambda: ring,
        clock=lambda: NOW,
    )


def body(answer: TokenAnswer) -> dict[str, Any]:
    value: dict[str, Any] = json.loads(answer.body)
    return value


def claims_of(answer: TokenAnswer) -> dict[str, Any]:
    assert answer.status == 200, answer.body
    token = body(answer)["token"]
    return verify_access_token(token, keyring(), issuer="dockgate", audience=SERVICE, now=NOW)


def scopes(*values: str, **more: str) -> dict[str, Any]:
    return {"service": SERVICE, "scope": list(values), **more}


# -- GET /token ---------------------------------------------------------------------------------


def test_a_get_with_basic_credentials_gets_a_token_of_the_granted_access() -> None:
    answer = ask(scopes("repository:team-a/app:pull,push,delete", "repository:team-b/tools:pull"))
    assert answer.status == 200 and answer.principal == ALICE
    got = body(answer)
    assert got["token"] == got["access_token"]
    assert got["expires_in"] == 300 and got["issued_at"] == "2023-11-14T22:13:20Z"
    assert "refresh_token" not in got and "scope" not in got
    claims = claims_of(answer)
    assert claims["sub"] == ALICE and claims["aud"] == SERVICE and claims["iss"] == "dockgate"
    assert claims["exp"] == int(NOW) + 300
    assert claims["access"] == [
        {"type": "repository", "name": "team-a/app", "actions": ["pull", "push"]}
    ]
    headers = dict(answer.headers)
    assert headers["Content-Type"] == "application/json"
    assert headers["Cache-Control"] == "no-store"


def test_a_login_without_scope_gets_a_token_with_empty_access() -> None:
    """What `docker login` asks: credentials are checked, nothing is granted."""
    assert claims_of(ask({"service": SERVICE, "account": "AWS"}))["access"] == []


def test_nothing_granted_is_a_token_with_empty_access_not_an_error() -> None:
    assert claims_of(ask(scopes("repository:prod/secret:pull")))["access"] == []


def test_scopes_that_do_not_parse_are_ignored_and_reported() -> None:
    answer = ask(scopes("repository:team-a/app:pull", "bogus"))
    assert claims_of(answer)["access"] == [
        {"type": "repository", "name": "team-a/app", "actions": ["pull"]}
    ]
    assert answer.ignored_scopes == ("bogus",)


def test_the_token_never_outlives_the_login() -> None:
    logins = Logins(expires_at=NOW + 100)
    answer = ask(scopes("repository:team-a/app:pull"), logins=logins)
    assert claims_of(answer)["exp"] == int(NOW) + 100
    assert body(answer)["expires_in"] == 100


@pytest.mark.parametrize(
    ("authorization", "message"),
    [
        (None, "authentication required"),
        ("Bearer abc", "basic credentials are required"),
        ("Basic !!!", "malformed basic credentials"),
        (basic("alice-password", user="alice"), "the user name must be `AWS`"),
        (basic(""), "no authorization token"),
        (basic("wrong"), "your authorization token is invalid"),
        (basic("expired-password"), "your authorization token has expired"),
    ],
)
def test_missing_or_wrong_credentials_are_a_401_with_a_basic_challenge(
    authorization: str | None, message: str
) -> None:
    answer = ask(scopes("repository:team-a/app:pull"), authorization=authorization, password=None)
    assert answer.status == 401
    assert dict(answer.headers)["WWW-Authenticate"] == f'Basic realm="{SERVICE}"'
    (error,) = body(answer)["errors"]
    assert error["code"] == "UNAUTHORIZED" and error["message"] == message
    assert "token" not in body(answer)
    assert b"alice-password" not in answer.body


def test_a_revoked_login_gets_no_token() -> None:
    answer = ask(scopes("repository:team-a/app:pull"), logins=Logins(revoked={"alice-password"}))
    assert answer.status == 401
    assert body(answer)["errors"][0]["detail"] == {"rejection": "revoked"}


def test_another_service_is_refused() -> None:
    answer = ask({"service": "someone-else", "scope": "repository:team-a/app:pull"})
    assert answer.status == 400 and "service `someone-else`" in answer.body.decode()


def test_too_many_scopes_are_refused() -> None:
    many = [f"repository:team-a/app{i}:pull" for i in range(MAX_SCOPES + 1)]
    assert ask(scopes(*many)).status == 400


def test_another_method_is_refused() -> None:
    answer = ask(method="PUT")
    assert answer.status == 405 and dict(answer.headers)["Allow"] == "GET, POST"


# -- the context of each decision ---------------------------------------------------------------


def test_the_source_ip_comes_from_a_trusted_proxy_only() -> None:
    wanted = scopes("repository:team-b/tools:pull")
    behind = ClientFacts("127.0.0.1", forwarded_for="10.9.9.9")
    trusting = TokenConfig(
        service=SERVICE,
        issuer="dockgate",
        registry=REGISTRY,
        trusted_proxies=(ip_network("127.0.0.1/32"),),
    )
    bob = "bob-password"
    assert claims_of(ask(wanted, password=bob, client=behind, config=trusting))["access"]
    # not trusted: the peer (127.0.0.1) is the source, and bob may pull only from 10.0.0.0/8
    assert claims_of(ask(wanted, password=bob, client=behind))["access"] == []


def test_the_decisions_see_the_gates_context() -> None:
    decisions = Decisions()
    seen: list[tuple[str, str, str, dict[str, Any]]] = []

    def recording(p: str, a: str, r: str, context: Mapping[str, Any]) -> Decision:
        seen.append((p, a, r, dict(context)))
        return decisions(p, a, r, context)

    client = ClientFacts("::ffff:10.1.2.3", secure=True)
    ask(scopes("repository:team-a/app:pull"), decide=recording, client=client)
    assert seen[0] == (
        ALICE,
        "ecr:BatchGetImage",
        arn("team-a/app"),
        {
            "aws:SourceIp": "10.1.2.3",
            "aws:SecureTransport": "true",
            "aws:RequestedRegion": "us-east-1",
            "aws:CurrentTime": "2023-11-14T22:13:20Z",
            "aws:EpochTime": str(int(NOW)),
        },
    )


def test_an_unknown_client_address_gets_no_token() -> None:
    answer = ask(scopes("repository:team-a/app:pull"), client=ClientFacts("somewhere"))
    assert answer.status == 403 and "token" not in body(answer)


# -- failing closed -----------------------------------------------------------------------------


def stale(principal: str, action: str, resource: str, context: Mapping[str, Any]) -> Decision:
    raise DecisionUnavailable("the policy is 30 s behind the store")


def broken(principal: str, action: str, resource: str, context: Mapping[str, Any]) -> Decision:
    raise RuntimeError("the snapshot broke")


def test_a_decision_that_cannot_be_made_is_a_503_without_a_token() -> None:
    answer = ask(scopes("repository:team-a/app:pull"), decide=stale)
    assert answer.status == 503 and "token" not in body(answer)
    assert body(answer)["errors"][0]["code"] == "UNAVAILABLE"


def test_a_failure_is_a_500_without_a_token(caplog: pytest.LogCaptureFixture) -> None:
    answer = ask(scopes("repository:team-a/app:pull"), decide=broken)
    assert answer.status == 500 and "token" not in body(answer)
    assert "no token is issued" in caplog.text and "alice-password" not in caplog.text


def test_without_a_signing_key_no_token_is_issued() -> None:
    answer = ask(scopes("repository:team-a/app:pull"), keys=load_keyring([], NOW))
    assert answer.status == 503 and "no token-signing key" in answer.body.decode()


# -- the OAuth2 form and refresh tokens -------------------------------------------------------


def password_form(**more: str) -> dict[str, str]:
    return {
        "grant_type": "password",
        "username": "AWS",
        "password": "alice-password",
        "service": SERVICE,
        "client_id": "skopeo",
        **more,
    }


def test_the_oauth2_password_grant_gets_a_token_and_its_scope() -> None:
    answer = ask(form=password_form(scope="repository:team-a/app:pull,push,delete"))
    got = body(answer)
    assert answer.status == 200 and got["token"] == got["access_token"]
    assert got["scope"] == "repository:team-a/app:pull repository:team-a/app:push"
    assert "refresh_token" not in got
    assert claims_of(answer)["access"][0]["actions"] == ["pull", "push"]


def test_a_refresh_token_gets_tokens_for_other_scopes_and_comes_back_unchanged() -> None:
    first = ask(form=password_form(access_type="offline"))
    refresh = body(first)["refresh_token"]
    second = ask(
        form={
            "grant_type": "refresh_token",
            "refresh_token": refresh,
            "service": SERVICE,
            "scope": "repository:team-a/app:pull",
        }
    )
    assert body(second)["refresh_token"] == refresh
    assert claims_of(second)["sub"] == ALICE
    assert claims_of(second)["access"] == [
        {"type": "repository", "name": "team-a/app", "actions": ["pull"]}
    ]


def test_a_get_with_offline_token_gets_a_refresh_token_too() -> None:
    answer = ask(scopes(offline_token="true"))
    refresh = body(answer)["refresh_token"]
    again = ask(form={"grant_type": "refresh_token", "refresh_token": refresh, "service": SERVICE})
    assert again.status == 200


def test_a_refresh_token_dies_with_its_login() -> None:
    refresh = body(ask(form=password_form(access_type="offline")))["refresh_token"]
    refreshing = {"grant_type": "refresh_token", "refresh_token": refresh, "service": SERVICE}
    answer = ask(form=refreshing, logins=Logins(revoked={"alice-password"}))
    assert answer.status == 401 and body(answer)["error"] == "invalid_grant"
    # the password now stands for someone else: the token is not theirs
    answer = ask(form=refreshing, logins=Logins(principals={"alice-password": BOB}))
    assert answer.status == 401


def test_a_refresh_token_for_another_service_or_forged_is_refused() -> None:
    refresh = body(ask(form=password_form(access_type="offline")))["refresh_token"]
    other = TokenConfig(service="other-registry", issuer="dockgate", registry=REGISTRY)
    form = {"grant_type": "refresh_token", "refresh_token": refresh, "service": "other-registry"}
    assert ask(form=form, config=other).status == 401
    forged = {
        "grant_type": "refresh_token",
        "refresh_token": refresh[:-3] + "AAA",
        "service": SERVICE,
    }
    assert ask(form=forged).status == 401


@pytest.mark.parametrize(
    ("form", "status", "error"),
    [
        ({"grant_type": "password", "service": SERVICE}, 401, "invalid_grant"),
        (password_form(username="alice"), 401, "invalid_grant"),
        (password_form(password="wrong"), 401, "invalid_grant"),
        ({"grant_type": "authorization_code", "service": SERVICE}, 400, "unsupported_grant_type"),
        ({"service": SERVICE}, 400, "invalid_request"),
        ({"grant_type": "refresh_token", "service": SERVICE}, 400, "invalid_request"),
        (
            {"grant_type": "password", "username": "AWS", "password": "alice-password"},
            400,
            "invalid_request",
        ),
    ],
)
def test_a_bad_oauth2_form_gets_an_oauth2_error(
    form: dict[str, str], status: int, error: str
) -> None:
    answer = ask(form=form)
    assert answer.status == status and body(answer)["error"] == error
    assert "error_description" in body(answer) and "token" not in body(answer)


def test_the_form_must_be_url_encoded() -> None:
    answer = ask(form=password_form(), content_type="application/json")
    assert answer.status == 400


# -- the configuration ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"ttl": 59}, "at least 60 seconds"),
        ({"service": 'a"b'}, "printable ASCII"),
        ({"service": ""}, "printable ASCII"),
        ({"issuer": ""}, "issuer is empty"),
        ({"ttl": 600, "refresh_ttl": 300}, "at least the token ttl"),
    ],
)
def test_a_configuration_that_would_issue_bad_tokens_is_refused(
    options: dict[str, Any], message: str
) -> None:
    settings: dict[str, Any] = {"service": SERVICE, "issuer": "dockgate", "registry": REGISTRY}
    with pytest.raises(ValueError, match=message):
        TokenConfig(**(settings | options))
