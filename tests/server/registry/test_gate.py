"""The registry gate: authentication first, then the checks, mounts, the catalog, context."""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from ipaddress import ip_network
from typing import Any

import pytest

from dockgate_server.credentials.login import Login, LoginRejected, Rejection
from dockgate_server.engine.decision import Decision, Outcome, Phase, Reason
from dockgate_server.policy.model import Effect
from dockgate_server.registry.gate import (
    CHECKS_HEADER,
    DecisionUnavailable,
    GateAnswer,
    GateConfig,
    GateRequest,
    RegistryGate,
    parse_networks,
)
from dockgate_server.registry.routes import Registry, strip_mount

ACCOUNT = "111122223333"
REGION = "us-east-1"
REGISTRY = Registry(ACCOUNT, REGION)
HOST = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com"
ALICE = f"arn:aws:iam::{ACCOUNT}:user/alice"
PASSWORD = "good-token"
NOW = 1_700_000_000.0
DIGEST = "sha256:" + "a" * 64
CHALLENGE = f'Basic realm="https://{HOST}/",service="ecr.amazonaws.com"'


def arn(name: str, account: str = ACCOUNT, region: str = REGION) -> str:
    return f"arn:aws:ecr:{region}:{account}:repository/{name}"


def basic(password: str = PASSWORD, user: str = "AWS") -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@dataclass
class FakeLogins:
    """`good-token` is alice; a password named after a rejection is rejected so."""

    calls: list[str] = field(default_factory=list)
    expires_at: float = NOW + 3600

    def __call__(self, password: str) -> Login:
        self.calls.append(password)
        for rejection in Rejection:
            if password == str(rejection):
                raise LoginRejected(rejection, f"login token {rejection}")
        if password == "boom":
            raise RuntimeError("verifier broke")
        if password != PASSWORD:
            raise LoginRejected(Rejection.MALFORMED, "not a login token")
        return Login(ALICE, self.expires_at)


@dataclass
class FakeDecisions:
    """Allowed: (action, repository name) pairs in `allowed`; explicit denies in `denied`.

    Names are of the test registry; other registries' repositories go by their ARN."""

    allowed: set[tuple[str, str]] = field(default_factory=set)
    denied: set[tuple[str, str]] = field(default_factory=set)
    reasons: tuple[Reason, ...] | None = None
    broken: bool = False
    calls: list[tuple[str, str, str, dict[str, str | Sequence[str]]]] = field(default_factory=list)

    def __call__(
        self, principal: str, action: str, resource: str, context: Mapping[str, str | Sequence[str]]
    ) -> Decision:
        self.calls.append((principal, action, resource, dict(context)))
        if self.broken:
            raise RuntimeError("the snapshot broke")
        # only repositories of the test registry are known by name
        name = resource.removeprefix(arn("")) if resource.startswith(arn("")) else resource
        if (action, name) in self.denied:
            deny = Reason(Phase.SERVICE_CONTROL_POLICY, "denies", Effect.DENY, "scp", 0)
            return Decision(Outcome.EXPLICITLY_DENIED, self.reasons or (deny,))
        if (action, name) in self.allowed:
            return Decision(Outcome.ALLOWED, ())
        gap = Reason(Phase.IDENTITY_POLICY, f"no identity-based policy allows `{action}`")
        return Decision(Outcome.IMPLICITLY_DENIED, self.reasons or (gap,))

    @property
    def checked(self) -> list[tuple[str, str]]:
        return [(action, resource) for _, action, resource, _ in self.calls]


def make_gate(
    decisions: FakeDecisions | None = None,
    *,
    logins: FakeLogins | None = None,
    repositories: Iterable[str] = (),
    config: GateConfig | None = None,
) -> RegistryGate:
    listed = list(repositories)
    return RegistryGate(
        logins or FakeLogins(),
        decisions or FakeDecisions(),
        lambda: listed,
        config or GateConfig(registry=REGISTRY),
        clock=lambda: NOW,
    )


def ask(
    gate: RegistryGate,
    method: str,
    target: str,
    authorization: str | None = None,
    *,
    host: str = HOST,
    peer: str = "198.51.100.1",
    forwarded_for: str | None = None,
    secure: bool | None = None,
) -> GateAnswer:
    if authorization is None:
        authorization = basic()
    return gate.check(
        GateRequest(method, target, host, authorization or None, peer, forwarded_for, secure)
    )


def header(answer: GateAnswer, name: str) -> str | None:
    values = [value for key, value in answer.headers if key.lower() == name.lower()]
    assert len(values) <= 1
    return values[0] if values else None


def error(answer: GateAnswer) -> dict[str, object]:
    body = json.loads(answer.body)
    assert len(body["errors"]) == 1
    found: dict[str, object] = body["errors"][0]
    return found


# -- authentication -------------------------------------------------------------------------------


def test_no_credentials_is_401_with_the_ecr_challenge() -> None:
    decisions = FakeDecisions()
    answer = ask(make_gate(decisions), "GET", "/v2/", "")
    assert answer.status == 401
    assert header(answer, "WWW-Authenticate") == CHALLENGE
    assert error(answer)["code"] == "UNAUTHORIZED"
    assert answer.principal is None
    assert decisions.calls == []


def test_a_mapped_host_challenges_with_its_registry_realm() -> None:
    other = Registry("444455556666", "cn-north-1", "aws-cn")
    gate = make_gate(config=GateConfig(hosts={"registry.example": other}))
    answer = ask(gate, "GET", "/v2/", "", host="registry.example")
    assert answer.status == 401
    assert header(answer, "WWW-Authenticate") == (
        'Basic realm="https://444455556666.dkr.ecr.cn-north-1.amazonaws.com.cn/",'
        'service="ecr.amazonaws.com"'
    )


@pytest.mark.parametrize(
    ("authorization", "message"),
    [
        (basic(user="alice"), "the user name must be `AWS`"),
        (basic(user="aws"), "the user name must be `AWS`"),
        ("Basic " + base64.b64encode(b"AWS").decode(), "the user name must be `AWS`"),
        (basic(""), "no authorization token"),
        ("Basic !!!not-base64!!!", "malformed basic credentials"),
        ("Basic " + base64.b64encode(b"AWS:\xff\xfe").decode(), "malformed basic credentials"),
        ("Bearer " + PASSWORD, "basic credentials are required"),
        ("Basic", "malformed basic credentials"),
    ],
)
def test_bad_basic_credentials_are_401(authorization: str, message: str) -> None:
    logins = FakeLogins()
    answer = ask(make_gate(logins=logins), "GET", "/v2/", authorization)
    assert answer.status == 401
    assert header(answer, "WWW-Authenticate") == CHALLENGE
    assert error(answer) == {"code": "UNAUTHORIZED", "message": message, "detail": None}
    assert logins.calls == []


@pytest.mark.parametrize("rejection", list(Rejection))
def test_each_rejection_is_401(rejection: Rejection) -> None:
    logins = FakeLogins()
    answer = ask(make_gate(logins=logins), "GET", "/v2/", basic(str(rejection)))
    assert answer.status == 401
    assert header(answer, "WWW-Authenticate") == CHALLENGE
    found = error(answer)
    assert found["code"] == "UNAUTHORIZED"
    assert found["detail"] == {"rejection": str(rejection)}
    assert logins.calls == [str(rejection)]
    if rejection is Rejection.EXPIRED:
        assert found["message"] == "your authorization token has expired"


def test_a_login_past_its_expiry_is_expired_whatever_the_verifier_says() -> None:
    answer = ask(make_gate(logins=FakeLogins(expires_at=NOW - 1)), "GET", "/v2/")
    assert answer.status == 401
    assert error(answer)["message"] == "your authorization token has expired"


def test_authentication_comes_before_routing() -> None:
    answer = ask(make_gate(), "GET", "/v2/no%2Fsuch/manifests/latest", "")
    assert answer.status == 401


def test_no_token_in_any_header_or_body() -> None:
    gate = make_gate(FakeDecisions(allowed={("ecr:BatchGetImage", "app")}))
    for target in [
        "/v2/",
        "/v2/app/manifests/latest",
        "/v2/app/manifests/v1?x=1",
        "/v2/other/tags/list",
    ]:
        answer = ask(gate, "GET", target)
        text = json.dumps(answer.headers) + answer.body.decode()
        assert PASSWORD not in text
        assert basic() not in text


# -- routes and decisions -------------------------------------------------------------------------

PULL = "ecr:BatchGetImage"
PUSH = "ecr:PutImage"

ROUTES = [
    ("GET", "/v2/app/manifests/latest", PULL, "app"),
    ("HEAD", f"/v2/app/manifests/{DIGEST}", PULL, "app"),
    ("PUT", "/v2/team/app/manifests/v1", PUSH, "team/app"),
    ("GET", f"/v2/app/blobs/{DIGEST}", "ecr:GetDownloadUrlForLayer", "app"),
    ("HEAD", f"/v2/app/blobs/{DIGEST}", "ecr:BatchCheckLayerAvailability", "app"),
    ("POST", "/v2/app/blobs/uploads/", "ecr:InitiateLayerUpload", "app"),
    ("GET", "/v2/app/tags/list?n=10", "ecr:ListImages", "app"),
]


@pytest.mark.parametrize(("method", "target", "action", "name"), ROUTES)
def test_an_allowed_call_passes_unchanged(method: str, target: str, action: str, name: str) -> None:
    decisions = FakeDecisions(allowed={(action, name)})
    answer = ask(make_gate(decisions), method, target)
    assert answer.status == 200
    assert answer.upstream_target == target
    assert answer.principal == ALICE
    assert not answer.answered_here
    assert (action, arn(name)) in decisions.checked
    assert f"{action} repository/{name}=Allowed" in (header(answer, CHECKS_HEADER) or "")


@pytest.mark.parametrize(("method", "target", "action", "name"), ROUTES)
def test_a_denied_call_is_403_naming_action_and_resource(
    method: str, target: str, action: str, name: str
) -> None:
    answer = ask(make_gate(FakeDecisions()), method, target)
    assert answer.status == 403
    assert answer.upstream_target == ""
    found = error(answer)
    assert found["code"] == "DENIED"
    assert found["message"] == (
        f"User: {ALICE} is not authorized to perform: {action} on resource: {arn(name)} "
        f"because no identity-based policy allows the {action} action"
    )
    assert found["detail"] == {
        "action": action,
        "resource": arn(name),
        "outcome": "ImplicitlyDenied",
    }
    assert header(answer, CHECKS_HEADER) == f"{action} repository/{name}=ImplicitlyDenied"


def test_base_is_200_without_checks() -> None:
    decisions = FakeDecisions()
    answer = ask(make_gate(decisions), "GET", "/v2/")
    assert (answer.status, answer.upstream_target, answer.principal) == (200, "/v2/", ALICE)
    assert header(answer, CHECKS_HEADER) == "none"
    assert decisions.calls == []


@pytest.mark.parametrize(
    ("phase", "clause"),
    [
        (Phase.SERVICE_CONTROL_POLICY, "with an explicit deny in a service control policy"),
        (Phase.IDENTITY_POLICY, "with an explicit deny in an identity-based policy"),
        (Phase.RESOURCE_POLICY, "with an explicit deny in a resource-based policy"),
        (Phase.PERMISSIONS_BOUNDARY, "with an explicit deny in a permissions boundary"),
        (Phase.SESSION_POLICY, "with an explicit deny in a session policy"),
        (Phase.RESOURCE_CONTROL_POLICY, "with an explicit deny in a resource control policy"),
    ],
)
def test_explicit_deny_names_the_policy_type(phase: Phase, clause: str) -> None:
    reasons = (Reason(phase, "statement 0 denies", Effect.DENY, "p", 0),)
    decisions = FakeDecisions(denied={(PUSH, "app")}, reasons=reasons)
    answer = ask(make_gate(decisions), "PUT", "/v2/app/manifests/v1")
    assert answer.status == 403
    assert error(answer)["message"] == (
        f"User: {ALICE} is not authorized to perform: {PUSH} on resource: {arn('app')} {clause}"
    )
    assert header(answer, CHECKS_HEADER) == f"{PUSH} repository/app=ExplicitlyDenied"


@pytest.mark.parametrize(
    ("reason", "clause"),
    [
        (
            Reason(Phase.RESOURCE_POLICY, "cross-account"),
            f"because no resource-based policy allows the {PUSH} action",
        ),
        (
            Reason(Phase.SERVICE_CONTROL_POLICY, "no scp"),
            f"because no service control policy allows the {PUSH} action",
        ),
        (
            Reason(Phase.REQUEST, "session `s` expired at 2023-01-01T00:00:00Z"),
            "because session `s` expired at 2023-01-01T00:00:00Z",
        ),
    ],
)
def test_implicit_deny_names_what_did_not_allow(reason: Reason, clause: str) -> None:
    answer = ask(make_gate(FakeDecisions(reasons=(reason,))), "PUT", "/v2/app/manifests/v1")
    assert str(error(answer)["message"]).endswith(f"on resource: {arn('app')} {clause}")


@pytest.mark.parametrize(
    "target",
    [
        "/v2/app%2Fx/manifests/latest",
        "/v2/App/manifests/latest",
        "/v3/",
        "/v2/app/nothing-here",
        "/",
    ],
)
def test_an_unparseable_call_is_refused_never_forwarded(target: str) -> None:
    decisions = FakeDecisions(allowed={(PULL, "app")})
    answer = ask(make_gate(decisions), "GET", target)
    assert 400 <= answer.status < 500
    assert answer.status != 401
    assert answer.upstream_target == ""
    assert "code" in error(answer)


def test_a_decision_that_raises_fails_closed_and_logs_no_credentials(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    answer = ask(make_gate(FakeDecisions(broken=True)), "GET", "/v2/app/manifests/latest")
    assert answer.status == 403
    assert error(answer)["code"] == "DENIED"
    assert header(answer, CHECKS_HEADER) == f"{PULL} repository/app=Error"
    assert len(caplog.records) == 1
    assert caplog.records[0].exc_info is not None
    assert PASSWORD not in caplog.text
    assert basic() not in caplog.text


def test_a_decider_that_cannot_decide_now_answers_503_and_logs_nothing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class Stale(FakeDecisions):
        def __call__(
            self, principal: str, action: str, resource: str, context: Mapping[str, Any]
        ) -> Decision:
            raise DecisionUnavailable("the store last answered 9.0 s ago")

    caplog.set_level(logging.DEBUG)
    answer = ask(make_gate(Stale()), "GET", "/v2/app/manifests/latest")
    assert answer.status == 503
    assert error(answer) == {
        "code": "UNAVAILABLE",
        "message": "the store last answered 9.0 s ago",
        "detail": None,
    }
    assert answer.upstream_target == ""
    assert header(answer, CHECKS_HEADER) == f"{PULL} repository/app=Error"
    assert caplog.records == []


def test_an_authenticator_that_raises_fails_closed(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    answer = ask(make_gate(), "GET", "/v2/", basic("boom"))
    assert answer.status == 403
    assert len(caplog.records) == 1
    assert basic("boom") not in caplog.text


def test_the_normal_path_logs_nothing(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    gate = make_gate(FakeDecisions(allowed={(PULL, "app")}))
    ask(gate, "GET", "/v2/app/manifests/latest")
    ask(gate, "PUT", "/v2/app/manifests/latest")
    ask(gate, "GET", "/v2/", "")
    assert caplog.records == []


# -- registries -----------------------------------------------------------------------------------


def test_without_configuration_the_host_name_never_names_the_account() -> None:
    # issue 11 item 16: `Host: 444455556666.dkr.ecr…` used to read that account's repositories
    decisions = FakeDecisions(allowed={(PULL, arn("app", "444455556666", "eu-west-1"))})
    logins = FakeLogins()
    gate = make_gate(decisions, logins=logins, config=GateConfig())
    for host in ("444455556666.dkr.ecr.eu-west-1.amazonaws.com", HOST, "registry.example"):
        for authorization in (basic(), ""):
            answer = ask(gate, "GET", "/v2/app/manifests/latest", authorization, host=host)
            assert answer.status == 403, host
            assert error(answer)["code"] == "DENIED"
            assert f"host `{host}` is not a registry served here" in str(error(answer)["message"])
            assert header(answer, "WWW-Authenticate") is None
    assert decisions.calls == []
    assert logins.calls == []  # refused before any credential is looked at


def test_the_configured_registry_wins_over_the_host_name() -> None:
    decisions = FakeDecisions(allowed={(PULL, "app")})
    gate = make_gate(decisions)
    for host in ("registry.internal:5000", "444455556666.dkr.ecr.eu-west-1.amazonaws.com", ""):
        answer = ask(gate, "GET", "/v2/app/manifests/latest", host=host)
        assert answer.status == 200
    assert decisions.checked == [(PULL, arn("app"))] * 3


OTHER = Registry("444455556666", "eu-west-1")
MAPPED = GateConfig(
    hosts={"registry.example": REGISTRY, "other.example:5000": OTHER, "[::1]:8443": OTHER}
)


@pytest.mark.parametrize(
    ("host", "registry"),
    [
        ("registry.example", REGISTRY),
        ("REGISTRY.Example.", REGISTRY),
        ("registry.example:443", REGISTRY),  # an entry without a port takes any port
        (" registry.example ", REGISTRY),
        ("other.example:5000", OTHER),
        ("[::1]:8443", OTHER),
    ],
)
def test_a_mapped_host_names_its_registry(host: str, registry: Registry) -> None:
    decisions = FakeDecisions(allowed={(PULL, "app")})
    answer = ask(make_gate(decisions, config=MAPPED), "GET", "/v2/app/manifests/latest", host=host)
    expected = arn("app", registry.account, registry.region)
    assert decisions.checked == [(PULL, expected)]
    assert answer.status == (200 if registry == REGISTRY else 403)
    assert decisions.calls[0][3]["aws:RequestedRegion"] == registry.region


@pytest.mark.parametrize(
    "host",
    [
        "444455556666.dkr.ecr.eu-west-1.amazonaws.com",
        HOST,
        "other.example",  # its entry names a port
        "other.example:5001",
        "registry.example.evil",
        "evil.registry.example",
        "[::1]",
        "[::1]:8444",
        "registry.example:http",
        "registry example",
        "",
        "r\u212aegistry.example",
    ],
)
def test_a_host_outside_the_map_is_refused(host: str) -> None:
    decisions = FakeDecisions(allowed={(PULL, "app")})
    logins = FakeLogins()
    gate = make_gate(decisions, logins=logins, config=MAPPED)
    answer = ask(gate, "GET", "/v2/app/manifests/latest", host=host)
    assert answer.status == 403
    assert error(answer)["code"] == "DENIED"
    assert "is not a registry served here" in str(error(answer)["message"])
    assert (decisions.calls, logins.calls) == ([], [])


def test_a_refused_host_is_shown_printable_and_short() -> None:
    host = "\x7f" + "h" * 500
    answer = ask(make_gate(config=MAPPED), "GET", "/v2/", host=host)
    message = str(error(answer)["message"])
    assert "?" + "h" * 199 + "`" in message
    assert all(" " <= c <= "~" for c in message)


# -- mounts ---------------------------------------------------------------------------------------

MOUNT = f"/v2/app/blobs/uploads/?mount={DIGEST}&from=base"
UPLOAD = "ecr:InitiateLayerUpload"
LAYER = "ecr:GetDownloadUrlForLayer"


def test_an_allowed_mount_passes_unchanged() -> None:
    decisions = FakeDecisions(allowed={(UPLOAD, "app"), (LAYER, "base")})
    answer = ask(make_gate(decisions), "POST", MOUNT)
    assert (answer.status, answer.upstream_target) == (200, MOUNT)
    assert decisions.checked == [(UPLOAD, arn("app")), (LAYER, arn("base"))]
    assert header(answer, CHECKS_HEADER) == (
        f"{UPLOAD} repository/app=Allowed, {LAYER} repository/base=Allowed"
    )


def test_a_denied_mount_source_degrades_to_a_plain_upload() -> None:
    decisions = FakeDecisions(allowed={(UPLOAD, "app")})
    answer = ask(make_gate(decisions), "POST", MOUNT)
    assert answer.status == 200
    assert answer.upstream_target == strip_mount(MOUNT)
    assert "mount=" not in answer.upstream_target
    assert "from=" not in answer.upstream_target
    assert header(answer, CHECKS_HEADER) == (
        f"{UPLOAD} repository/app=Allowed, {LAYER} repository/base=ImplicitlyDenied"
    )


@pytest.mark.parametrize(
    "target",
    [
        f"/v2/app/blobs/uploads/?mount={DIGEST}&from=Not%2FValid",
        f"/v2/app/blobs/uploads/?mount={DIGEST}",
    ],
)
def test_a_mount_without_a_valid_source_degrades(target: str) -> None:
    decisions = FakeDecisions(allowed={(UPLOAD, "app"), (LAYER, "base")})
    answer = ask(make_gate(decisions), "POST", target)
    assert answer.status == 200
    assert answer.upstream_target == strip_mount(target)
    assert "mount=" not in answer.upstream_target


def test_a_mount_into_a_denied_target_is_403() -> None:
    decisions = FakeDecisions(allowed={(LAYER, "base")})
    answer = ask(make_gate(decisions), "POST", MOUNT)
    assert answer.status == 403
    assert decisions.checked == [(UPLOAD, arn("app"))]


# -- the catalog ----------------------------------------------------------------------------------

DESCRIBE = "ecr:DescribeRepositories"
KNOWN = [
    arn("d"),
    arn("a"),
    arn("team/b"),
    arn("c"),
    arn("a", account="444455556666"),
    arn("a", region="eu-west-1"),
]


def catalog_gate(decisions: FakeDecisions) -> RegistryGate:
    return make_gate(decisions, repositories=KNOWN)


def catalog(answer: GateAnswer) -> list[str]:
    assert answer.status == 200, answer.body
    assert answer.answered_here
    assert header(answer, "Content-Type") == "application/json; charset=utf-8"
    names: list[str] = json.loads(answer.body)["repositories"]
    return names


def allowing(*names: str) -> FakeDecisions:
    return FakeDecisions(allowed={(DESCRIBE, name) for name in names})


def test_the_catalog_lists_describable_repositories_of_this_registry() -> None:
    decisions = allowing("a", "team/b", "d")
    answer = ask(catalog_gate(decisions), "GET", "/v2/_catalog")
    assert catalog(answer) == ["a", "d", "team/b"]
    assert header(answer, "Link") is None
    assert sorted(decisions.checked) == sorted(
        (DESCRIBE, arn(n)) for n in ["a", "c", "d", "team/b"]
    )
    assert "ecr:DescribeRepositories repository/c=ImplicitlyDenied" in (
        header(answer, CHECKS_HEADER) or ""
    )


def test_the_catalog_pages_like_distribution() -> None:
    gate = catalog_gate(allowing("a", "team/b", "d"))
    first = ask(gate, "GET", "/v2/_catalog?n=2")
    assert catalog(first) == ["a", "d"]
    assert header(first, "Link") == '</v2/_catalog?last=d&n=2>; rel="next"'
    second = ask(gate, "GET", "/v2/_catalog?last=d&n=2")
    assert catalog(second) == ["team/b"]
    assert header(second, "Link") is None
    assert catalog(ask(gate, "GET", "/v2/_catalog?n=0")) == []
    assert catalog(ask(gate, "GET", "/v2/_catalog?last=team%2Fb")) == []


@pytest.mark.parametrize("n", ["x", "-1", "1.5", ""])
def test_a_bad_page_size_is_400(n: str) -> None:
    answer = ask(catalog_gate(allowing("a")), "GET", f"/v2/_catalog?n={n}")
    assert answer.status == 400
    assert error(answer)["code"] == "PAGINATION_NUMBER_INVALID"


def test_the_catalog_needs_credentials() -> None:
    decisions = allowing("a")
    answer = ask(catalog_gate(decisions), "GET", "/v2/_catalog", "")
    assert answer.status == 401
    assert not answer.answered_here
    assert decisions.calls == []


def test_a_catalog_decision_that_raises_fails_closed(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.CRITICAL + 1)
    answer = ask(catalog_gate(FakeDecisions(broken=True)), "GET", "/v2/_catalog")
    assert answer.status == 403
    assert not answer.answered_here


def test_the_checks_header_stays_short() -> None:
    names = [f"repo{i:03}" for i in range(60)]
    gate = make_gate(allowing(*names), repositories=[arn(n) for n in names])
    answer = ask(gate, "GET", "/v2/_catalog")
    assert len(catalog(answer)) == 60
    assert (header(answer, CHECKS_HEADER) or "").endswith(", +10 more")


# -- the request context --------------------------------------------------------------------------


def context_of(
    gate: RegistryGate, decisions: FakeDecisions, **request: object
) -> dict[str, object]:
    decisions.calls.clear()
    answer = ask(gate, "GET", "/v2/app/manifests/latest", **request)  # type: ignore[arg-type]
    assert answer.status == 200, answer.body
    return dict(decisions.calls[0][3])


def test_the_context_carries_the_global_keys() -> None:
    decisions = FakeDecisions(allowed={(PULL, "app")})
    assert context_of(make_gate(decisions), decisions) == {
        "aws:SourceIp": "198.51.100.1",
        "aws:SecureTransport": "false",
        "aws:RequestedRegion": REGION,
        "aws:CurrentTime": "2023-11-14T22:13:20Z",
        "aws:EpochTime": "1700000000",
    }


def test_secure_transport_from_the_front_door_else_the_configuration() -> None:
    decisions = FakeDecisions(allowed={(PULL, "app")})
    plain = make_gate(decisions)
    assert context_of(plain, decisions, secure=True)["aws:SecureTransport"] == "true"
    tls = make_gate(decisions, config=GateConfig(registry=REGISTRY, secure_transport=True))
    assert context_of(tls, decisions)["aws:SecureTransport"] == "true"
    assert context_of(tls, decisions, secure=False)["aws:SecureTransport"] == "false"


TRUSTED = GateConfig(registry=REGISTRY, trusted_proxies=parse_networks(["10.0.0.0/8", "fd00::/8"]))


@pytest.mark.parametrize(
    ("peer", "forwarded_for", "source"),
    [
        ("203.0.113.9", "198.51.100.1", "203.0.113.9"),  # an untrusted peer's header is ignored
        ("10.0.0.1", "198.51.100.1", "198.51.100.1"),
        ("10.0.0.1", "1.1.1.1, 198.51.100.1, 10.0.0.2", "198.51.100.1"),
        ("10.0.0.1", "10.0.0.3,10.0.0.2", "10.0.0.3"),
        ("10.0.0.1", None, "10.0.0.1"),
        ("10.0.0.1", "198.51.100.1, ", "198.51.100.1"),
        ("fd00::1", "2001:db8::7", "2001:db8::7"),
        ("10.0.0.1", "[2001:db8::7]", "2001:db8::7"),
        ("::ffff:198.51.100.7", None, "198.51.100.7"),
        ("::ffff:10.0.0.1", "198.51.100.1", "198.51.100.1"),
    ],
)
def test_forwarded_for_counts_only_from_trusted_proxies(
    peer: str, forwarded_for: str | None, source: str
) -> None:
    decisions = FakeDecisions(allowed={(PULL, "app")})
    gate = make_gate(decisions, config=TRUSTED)
    found = context_of(gate, decisions, peer=peer, forwarded_for=forwarded_for)
    assert found["aws:SourceIp"] == source


@pytest.mark.parametrize(
    ("peer", "forwarded_for"),
    [("10.0.0.1", "not-an-address"), ("10.0.0.1", "198.51.100.1:4000"), ("", None), ("x", None)],
)
def test_an_unknown_client_address_is_denied(peer: str, forwarded_for: str | None) -> None:
    decisions = FakeDecisions(allowed={(PULL, "app")})
    answer = ask(
        make_gate(decisions, config=TRUSTED),
        "GET",
        "/v2/app/manifests/latest",
        peer=peer,
        forwarded_for=forwarded_for,
    )
    assert answer.status == 403
    assert decisions.calls == []


def test_trusts_and_a_gate_with_other_proxies() -> None:
    gate = make_gate(config=TRUSTED)
    assert gate.trusts("10.1.2.3")
    assert not gate.trusts("127.0.0.1")
    assert not gate.trusts("nonsense")
    other = gate.with_trusted_proxies(parse_networks(["127.0.0.1"]))
    assert other.trusts("127.0.0.1")
    assert not other.trusts("10.1.2.3")
    assert other.config.registry == REGISTRY


def test_parse_networks_refuses_nonsense() -> None:
    assert parse_networks(["10.1.2.3", "::1"]) == (ip_network("10.1.2.3/32"), ip_network("::1"))
    with pytest.raises(ValueError, match="trusted proxy `nope` is not an IP address or network"):
        parse_networks(["nope"])
