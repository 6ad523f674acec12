"""Issuing sessions (AssumeRole, GetFederationToken), the login check, and how issued sessions
are then decided: session policies, session tags, token issue time, source identity, expiry.

Each test gets a small fleet in its own SQLite store (accounts 111111111111 and 222222222222),
a snapshot built from it, and stores the sessions it issues before deciding for them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from dockgate_server.credentials.sessions import (
    AccessDeniedError,
    AssumeRoleInput,
    CredentialInputError,
    FederationInput,
    assume_role,
    check_login,
    get_federation_token,
)
from dockgate_server.credentials.tokens import new_signing_key
from dockgate_server.engine.cache import DecisionCache
from dockgate_server.engine.decision import Decision, Outcome
from dockgate_server.engine.request import RawContext
from dockgate_server.engine.snapshot import Snapshot
from dockgate_server.policy.findings import PolicyError
from dockgate_server.service.follow import SnapshotFollower
from dockgate_server.store.model import ENDED_SESSION_MEMORY, Fleet, Repository, Role, Session, User
from dockgate_server.store.port import FleetStore, open_store
from dockgate_server.store.validate import StoreError

Doc = dict[str, Any]

A = "111111111111"
B = "222222222222"
NOW = 1_750_000_000.0
"""2025-06-15T15:06:40Z"""
BEFORE_2025 = 1_700_000_000.0
"""2023-11-14T22:13:20Z"""
HOUR = 3600

PULL = "ecr:BatchGetImage"
PUSH = "ecr:PutImage"
DESCRIBE = "ecr:DescribeRepositories"
LIST = "ecr:ListImages"
LOGIN = "ecr:GetAuthorizationToken"
ASSUME = "sts:AssumeRole"
TAG = "sts:TagSession"
SET_SOURCE = "sts:SetSourceIdentity"


def document(*statements: Doc) -> Doc:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def allow(actions: str | Sequence[str], resource: str = "*", **extra: Any) -> Doc:
    return {"Effect": "Allow", "Action": actions, "Resource": resource, **extra}


def trusts(
    principals: str | Sequence[str],
    actions: Sequence[str] = (ASSUME,),
    *,
    effect: str = "Allow",
    condition: Doc | None = None,
) -> Doc:
    statement: Doc = {
        "Effect": effect,
        "Principal": {"AWS": principals if isinstance(principals, str) else list(principals)},
        "Action": list(actions),
    }
    if condition is not None:
        statement["Condition"] = condition
    return statement


def user_arn(name: str, account: str = A, path: str = "/") -> str:
    return f"arn:aws:iam::{account}:user{path}{name}"


def role_arn(name: str, path: str = "/") -> str:
    return f"arn:aws:iam::{A}:role{path}{name}"


def repository(name: str) -> str:
    return f"arn:aws:ecr:us-east-1:{A}:repository/{name}"


def session_arn(role: str, name: str) -> str:
    return f"arn:aws:sts::{A}:assumed-role/{role}/{name}"


def federated_arn(name: str) -> str:
    return f"arn:aws:sts::{A}:federated-user/{name}"


ROOT_A = f"arn:aws:iam::{A}:root"

# -- users ------------------------------------------------------------------------------------

DEV = user_arn("dev")
ASSUMER = user_arn("assumer", path="/ops/")
ASSUMER_RED = user_arn("assumer-red")
ADMIN = user_arn("admin")
OTHER = user_arn("other")
FED = user_arn("fed")
FED_NO_TAG = user_arn("fed-notag")
NOFED = user_arn("nofed")
BOB = user_arn("bob")
PARTNER = user_arn("partner", B)
PARTNER_BARE = user_arn("partner-bare", B)

# -- roles ------------------------------------------------------------------------------------

BY_USER = role_arn("by-user")
BY_ACCOUNT = role_arn("by-account")
CROSS = role_arn("cross")
BY_PARTNER_ACCOUNT = role_arn("by-partner-account")
FOR_CODEBUILD = role_arn("for-codebuild")
DENIER = role_arn("denier")
LOCKED = role_arn("locked")
EXTERNAL = role_arn("external")
TEAM_GATED = role_arn("team-gated")
NO_TRUST = role_arn("no-trust")
TAGGER = role_arn("tagger")
SOURCER = role_arn("sourcer")
WORKER = role_arn("worker", "/ci/")
CHAIN = role_arn("chain")
VIEWER = role_arn("viewer")
TAGGED = role_arn("tagged")
CONDITIONED = role_arn("conditioned")

# -- repositories -----------------------------------------------------------------------------

APP = repository("app")
BLUE_APP = repository("blue/app")
RED_APP = repository("red/app")
SHARED_BY_ROLE = repository("shared-role")
SHARED_BY_SESSION = repository("shared-session")
FED_ONLY = repository("fed-only")
BOBS = repository("bobs")

VIEWER_SESSION = session_arn("viewer", "s1")
FED_SESSION = federated_arn("fedsess")
EXTERNAL_ID = "the-external-id"

ASSUMES_ROLES = document(allow([ASSUME, TAG, SET_SOURCE], f"arn:aws:iam::{A}:role/*"))


def _fleet() -> Fleet:
    users = (
        User(A, "dev", tags={"team": "blue"}),
        User(A, "assumer", "/ops/", tags={"team": "blue"}, inline={"roles": ASSUMES_ROLES}),
        User(A, "assumer-red", tags={"team": "red"}, inline={"roles": ASSUMES_ROLES}),
        User(A, "admin", inline={"all": document(allow("*"))}),
        User(A, "other"),
        User(
            A,
            "fed",
            tags={"team": "blue", "Cost": "1"},
            inline={
                "fed": document(
                    allow(["sts:GetFederationToken", TAG, LOGIN]),
                    allow([PULL, PUSH], APP),
                    allow(
                        LIST,
                        APP,
                        Condition={
                            "StringEquals": {"aws:PrincipalTag/team": "blue"},
                            "StringEqualsIgnoreCase": {"aws:PrincipalTag/cost": "2"},
                        },
                    ),
                )
            },
        ),
        User(A, "fed-notag", inline={"fed": document(allow("sts:GetFederationToken"))}),
        User(A, "nofed", inline={"login": document(allow(LOGIN))}),
        User(A, "bob", inline={"ecr": document(allow("ecr:*"))}),
        User(B, "partner", inline={"roles": ASSUMES_ROLES}),
        User(B, "partner-bare"),
    )
    roles = (
        Role(A, "by-user", trust_policy=document(trusts(DEV))),
        Role(A, "by-account", trust_policy=document(trusts(ROOT_A))),
        Role(A, "cross", trust_policy=document(trusts([PARTNER, PARTNER_BARE]))),
        Role(A, "by-partner-account", trust_policy=document(trusts(B))),
        Role(
            A,
            "for-codebuild",
            trust_policy=document(
                {
                    "Effect": "Allow",
                    "Principal": {"Service": "codebuild.amazonaws.com"},
                    "Action": ASSUME,
                }
            ),
        ),
        Role(
            A,
            "denier",
            trust_policy=document(trusts(ROOT_A), trusts(ASSUMER, effect="Deny")),
        ),
        Role(A, "locked", trust_policy=document(trusts(OTHER))),
        Role(
            A,
            "external",
            trust_policy=document(
                trusts(DEV, condition={"StringEquals": {"sts:ExternalId": EXTERNAL_ID}})
            ),
        ),
        Role(
            A,
            "team-gated",
            trust_policy=document(
                trusts(ROOT_A, condition={"StringEquals": {"aws:PrincipalTag/team": "blue"}})
            ),
        ),
        Role(A, "no-trust"),
        Role(A, "tagger", trust_policy=document(trusts(DEV, [ASSUME, TAG]))),
        Role(A, "sourcer", trust_policy=document(trusts(DEV, [ASSUME, SET_SOURCE]))),
        Role(
            A,
            "worker",
            "/ci/",
            trust_policy=document(trusts(DEV, [ASSUME, TAG, SET_SOURCE])),
            tags={"Team": "red"},
            max_session_duration=2 * HOUR,
            inline={
                "ecr": document(
                    allow("ecr:*", f"arn:aws:ecr:us-east-1:{A}:repository/*"), allow(LOGIN)
                )
            },
        ),
        Role(
            A,
            "chain",
            trust_policy=document(trusts(WORKER, [ASSUME, SET_SOURCE])),
            max_session_duration=12 * HOUR,
        ),
        Role(A, "viewer", trust_policy=document(trusts(DEV))),
        Role(
            A,
            "tagged",
            trust_policy=document(trusts(DEV, [ASSUME, TAG])),
            tags={"Team": "red"},
            inline={
                "team": document(
                    allow(
                        PULL, f"arn:aws:ecr:us-east-1:{A}:repository/${{aws:PrincipalTag/team}}/*"
                    )
                )
            },
        ),
        Role(
            A,
            "conditioned",
            trust_policy=document(trusts(DEV, [ASSUME, SET_SOURCE])),
            inline={
                "conditions": document(
                    allow(
                        PULL,
                        APP,
                        Condition={
                            "DateGreaterThan": {"aws:TokenIssueTime": "2025-01-01T00:00:00Z"}
                        },
                    ),
                    allow(PUSH, APP, Condition={"StringEquals": {"aws:SourceIdentity": "alice"}}),
                )
            },
        ),
    )

    def granting(principal: str) -> Doc:
        return document({"Effect": "Allow", "Principal": {"AWS": principal}, "Action": PULL})

    repositories = (
        Repository(APP),
        Repository(BLUE_APP),
        Repository(RED_APP),
        Repository(SHARED_BY_ROLE, policy=granting(VIEWER)),
        Repository(SHARED_BY_SESSION, policy=granting(VIEWER_SESSION)),
        Repository(FED_ONLY, policy=granting(FED_SESSION)),
        Repository(BOBS, policy=granting(BOB)),
    )
    return Fleet((A, B), users, roles=roles, repositories=repositories)


@dataclasses.dataclass
class World:
    store: FleetStore
    builder: SnapshotFollower
    snapshot: Snapshot

    @property
    def credentials(self) -> FleetStore:
        return self.store

    def assume(
        self, caller: str, role: str, name: str = "s1", *, now: float = NOW, **options: Any
    ) -> Session:
        return assume_role(self.snapshot, AssumeRoleInput(caller, role, name, **options), now)

    def federate(
        self, caller: str, name: str = "fedsess", *, now: float = NOW, **options: Any
    ) -> Session:
        return get_federation_token(self.snapshot, FederationInput(caller, name, **options), now)

    def issue(self, session: Session) -> Session:
        """Store `session` and catch the snapshot up, as a serving process would."""
        self.credentials.put_session(session)
        self.snapshot = self.builder.refresh(self.snapshot)
        return session

    def decide(
        self,
        principal: str,
        action: str,
        resource: str,
        context: RawContext | None = None,
        *,
        now: float = NOW + 60,
    ) -> Outcome:
        return self.snapshot.authorize(principal, action, resource, context, now=now).outcome


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    with open_store(tmp_path / "store.sqlite3") as store:
        store.import_fleet(_fleet())
        builder = SnapshotFollower(store)
        yield World(store, builder, builder.build())


def session_policy(*statements: Doc) -> Doc:
    return document(*statements)


NOT_ECR = session_policy(allow("s3:GetObject"))
"""a session policy that says nothing about ECR"""
ALL_ECR = session_policy(allow("ecr:*"))


def reasons(decision: Decision) -> str:
    return " ".join(reason.detail for reason in decision.reasons)


# == AssumeRole: the trust policy ===============================================================

TRUST_CASES = [
    pytest.param(DEV, BY_USER, {}, True, id="same-account-trust-names-user-no-identity-needed"),
    pytest.param(DEV, BY_ACCOUNT, {}, False, id="trust-names-account-caller-without-identity"),
    pytest.param(ASSUMER, BY_ACCOUNT, {}, True, id="trust-names-account-caller-with-identity"),
    pytest.param(PARTNER, CROSS, {}, True, id="cross-account-named-user-with-identity"),
    pytest.param(PARTNER_BARE, CROSS, {}, False, id="cross-account-named-user-without-identity"),
    pytest.param(PARTNER, BY_ACCOUNT, {}, False, id="cross-account-trust-names-other-account"),
    pytest.param(PARTNER, BY_PARTNER_ACCOUNT, {}, True, id="cross-account-trust-names-callers"),
    pytest.param(PARTNER_BARE, BY_PARTNER_ACCOUNT, {}, False, id="cross-account-no-identity"),
    pytest.param(ASSUMER, BY_PARTNER_ACCOUNT, {}, False, id="trust-names-another-account"),
    pytest.param("codebuild.amazonaws.com", FOR_CODEBUILD, {}, True, id="service-trusted"),
    pytest.param("ecs-tasks.amazonaws.com", FOR_CODEBUILD, {}, False, id="service-not-trusted"),
    pytest.param(DEV, FOR_CODEBUILD, {}, False, id="user-not-trusted-by-service-role"),
    pytest.param(ASSUMER, DENIER, {}, False, id="trust-denies-explicitly"),
    pytest.param(ASSUMER_RED, DENIER, {}, True, id="trust-deny-names-someone-else"),
    pytest.param(DEV, LOCKED, {}, False, id="no-statement-for-caller-without-identity"),
    pytest.param(ADMIN, LOCKED, {}, False, id="no-statement-for-caller-identity-allows-all"),
    pytest.param(ASSUMER, LOCKED, {}, False, id="no-statement-for-caller-identity-allows"),
    pytest.param(DEV, EXTERNAL, {"external_id": EXTERNAL_ID}, True, id="external-id-right"),
    pytest.param(DEV, EXTERNAL, {"external_id": "guess"}, False, id="external-id-wrong"),
    pytest.param(DEV, EXTERNAL, {}, False, id="external-id-missing"),
    pytest.param(ASSUMER, TEAM_GATED, {}, True, id="principal-tag-matches"),
    pytest.param(ASSUMER_RED, TEAM_GATED, {}, False, id="principal-tag-differs"),
    pytest.param(DEV, TEAM_GATED, {}, False, id="principal-tag-matches-but-no-identity"),
]


@pytest.mark.parametrize(("caller", "role", "options", "allowed"), TRUST_CASES)
def test_the_trust_policy_decides_who_assumes_a_role(
    world: World, caller: str, role: str, options: dict[str, Any], allowed: bool
) -> None:
    if allowed:
        session = world.assume(caller, role, **options)
        assert session.caller == caller
        assert session.arn == session_arn(role.rsplit("/", 1)[-1], "s1")
    else:
        with pytest.raises(AccessDeniedError) as denied:
            world.assume(caller, role, **options)
        assert "sts:AssumeRole" in str(denied.value)
        assert not denied.value.decision.allowed


def test_an_explicit_deny_in_the_trust_policy_is_an_explicit_denial(world: World) -> None:
    with pytest.raises(AccessDeniedError) as denied:
        world.assume(ASSUMER, DENIER)
    assert denied.value.decision.outcome is Outcome.EXPLICITLY_DENIED
    assert "explicitly denied" in str(denied.value)


def test_a_role_without_a_trust_policy_cannot_be_assumed(world: World) -> None:
    for caller in (DEV, ASSUMER, ADMIN):
        with pytest.raises(AccessDeniedError, match="no trust policy") as denied:
            world.assume(caller, NO_TRUST)
        assert denied.value.decision.outcome is Outcome.IMPLICITLY_DENIED


def test_an_issued_session_has_the_role_and_the_times_of_its_request(world: World) -> None:
    session = world.assume(DEV, WORKER, "build-42", policy=ALL_ECR, tags={"team": "blue"})
    assert session.arn == session_arn("worker", "build-42")  # the role's path is not in it
    assert session.base == f"role/{A}/worker"
    assert session.caller == DEV
    assert (session.issued_at, session.expires_at) == (NOW, NOW + HOUR)
    assert session.policy == ALL_ECR
    assert dict(session.tags) == {"team": "blue"}
    assert session.source_identity is None
    again = world.assume(DEV, WORKER, "build-42")
    assert again.session_id != session.session_id


# -- session tags and source identity ---------------------------------------------------------

TAGS = {"team": "blue", "cost-center": "42"}


def test_session_tags_need_tag_session_in_the_trust_policy(world: World) -> None:
    with pytest.raises(AccessDeniedError, match="sts:TagSession"):
        world.assume(DEV, BY_USER, tags=TAGS)
    assert dict(world.assume(DEV, TAGGER, tags=TAGS).tags) == TAGS
    assert dict(world.assume(DEV, BY_USER).tags) == {}  # no tags, no TagSession needed


def test_an_identity_policy_alone_does_not_allow_tagging_the_session(world: World) -> None:
    # the trust policy names the account for sts:AssumeRole only; ADMIN's identity allows `*`
    assert world.assume(ADMIN, BY_ACCOUNT).caller == ADMIN
    with pytest.raises(AccessDeniedError, match="sts:TagSession"):
        world.assume(ADMIN, BY_ACCOUNT, tags=TAGS)


def test_session_tags_are_request_tags_of_the_trust_decision(world: World) -> None:
    with open_store(world.store.describe()) as store:  # a second fleet writer, as an admin would be
        store.put_role(
            Role(
                A,
                "tag-checked",
                trust_policy=document(
                    trusts(DEV),
                    trusts(
                        DEV,
                        [TAG],
                        condition={"StringEquals": {"aws:RequestTag/team": "blue"}},
                    ),
                ),
            )
        )
    world.snapshot = world.builder.refresh(world.snapshot)
    checked = role_arn("tag-checked")
    assert dict(world.assume(DEV, checked, tags={"team": "blue"}).tags) == {"team": "blue"}
    with pytest.raises(AccessDeniedError, match="sts:TagSession"):
        world.assume(DEV, checked, tags={"team": "red"})


@pytest.mark.parametrize(
    "tags",
    [
        pytest.param({"aws:team": "x"}, id="reserved-prefix"),
        pytest.param({"": "x"}, id="empty-key"),
        pytest.param({"k" * 129: "x"}, id="key-too-long"),
        pytest.param({"team": "v" * 257}, id="value-too-long"),
        pytest.param({"team": "a", "TEAM": "b"}, id="keys-repeat-ignoring-case"),
        pytest.param({f"k{n}": "v" for n in range(51)}, id="more-than-50"),
        pytest.param({"team!": "x"}, id="bad-character"),
        pytest.param(
            {"team": "a\nb"},
            id="control-character",
        ),
    ],
)
def test_invalid_session_tags_are_refused(world: World, tags: dict[str, str]) -> None:
    with pytest.raises(CredentialInputError) as refused:
        world.assume(DEV, TAGGER, tags=tags)
    assert refused.value.field.startswith("tags")


def test_a_source_identity_needs_set_source_identity_in_the_trust_policy(world: World) -> None:
    with pytest.raises(AccessDeniedError, match="sts:SetSourceIdentity"):
        world.assume(DEV, BY_USER, source_identity="alice")
    assert world.assume(DEV, SOURCER, source_identity="alice").source_identity == "alice"


@pytest.mark.parametrize("value", ["a", "x" * 65, "aws:alice", "al ice", "alice/x"])
def test_an_invalid_source_identity_is_refused(world: World, value: str) -> None:
    with pytest.raises(CredentialInputError) as refused:
        world.assume(DEV, SOURCER, source_identity=value)
    assert refused.value.field == "source_identity"


# -- role chaining ----------------------------------------------------------------------------


def test_role_chaining_is_limited_to_one_hour_and_keeps_the_source_identity(
    world: World,
) -> None:
    first = world.issue(world.assume(DEV, WORKER, "first", source_identity="alice"))
    chained = world.assume(first.arn, CHAIN, "second", now=NOW + 10)
    assert chained.arn == session_arn("chain", "second")
    assert chained.caller == first.arn
    assert chained.source_identity == "alice"
    assert chained.expires_at - chained.issued_at == HOUR
    assert world.assume(first.arn, CHAIN, "third", duration=HOUR).source_identity == "alice"
    for duration in (HOUR + 1, 2 * HOUR, 12 * HOUR):  # CHAIN allows 12 h, but not when chained
        with pytest.raises(CredentialInputError) as refused:
            world.assume(first.arn, CHAIN, "second", duration=duration)
        assert refused.value.field == "duration_seconds"
    # unchained, CHAIN's own maximum applies (DEV is not trusted, so only the duration is checked)
    with pytest.raises(AccessDeniedError):
        world.assume(DEV, CHAIN, duration=12 * HOUR)


def test_a_chained_session_cannot_change_its_source_identity(world: World) -> None:
    first = world.issue(world.assume(DEV, WORKER, "first", source_identity="alice"))
    with pytest.raises(CredentialInputError) as refused:
        world.assume(first.arn, CHAIN, "second", source_identity="mallory")
    assert refused.value.field == "source_identity"
    same = world.assume(first.arn, CHAIN, "second", source_identity="alice")
    assert same.source_identity == "alice"


def test_a_chained_session_may_set_a_source_identity_when_none_was_set(world: World) -> None:
    first = world.issue(world.assume(DEV, WORKER, "first"))
    assert world.assume(first.arn, CHAIN, "second").source_identity is None
    assert world.assume(first.arn, CHAIN, "second", source_identity="bob").source_identity == "bob"


def test_an_expired_session_cannot_chain(world: World) -> None:
    first = world.issue(world.assume(DEV, WORKER, "first"))
    with pytest.raises(AccessDeniedError, match="expired"):
        world.assume(first.arn, CHAIN, "second", now=first.expires_at)


def test_the_session_policy_of_the_calling_session_limits_chaining(world: World) -> None:
    # CHAIN trusts WORKER's ARN: a grant to the role, limited by the session's policy (§7.5 (c))
    first = world.issue(world.assume(DEV, WORKER, "first", policy=ALL_ECR))
    with pytest.raises(AccessDeniedError):
        world.assume(first.arn, CHAIN, "second", now=NOW + 1)


# -- durations, names, roles, callers ---------------------------------------------------------


@pytest.mark.parametrize(
    ("duration", "lasts"),
    [
        pytest.param(0, HOUR, id="default-one-hour"),
        pytest.param(900, 900, id="minimum"),
        pytest.param(2 * HOUR, 2 * HOUR, id="role-maximum"),
        pytest.param(899, None, id="below-minimum"),
        pytest.param(2 * HOUR + 1, None, id="above-role-maximum"),
        pytest.param(-900, None, id="negative"),
    ],
)
def test_assume_role_durations(world: World, duration: int, lasts: int | None) -> None:
    if lasts is None:
        with pytest.raises(CredentialInputError) as refused:
            world.assume(DEV, WORKER, duration=duration)
        assert refused.value.field == "duration_seconds"
    else:
        session = world.assume(DEV, WORKER, duration=duration)
        assert session.expires_at - session.issued_at == lasts


def test_a_role_with_the_default_maximum_allows_one_hour(world: World) -> None:
    assert world.assume(DEV, BY_USER, duration=HOUR).expires_at == NOW + HOUR
    with pytest.raises(CredentialInputError):
        world.assume(DEV, BY_USER, duration=HOUR + 1)


@pytest.mark.parametrize(
    ("name", "valid"),
    [
        ("ab", True),
        ("x" * 64, True),
        ("ci_build+1=2,3.4@example-host", True),
        ("a", False),
        ("", False),
        ("x" * 65, False),
        ("with space", False),
        ("with/slash", False),
        ("colon:name", False),
        ("naïve", False),
    ],
)
def test_role_session_names(world: World, name: str, valid: bool) -> None:
    if valid:
        assert world.assume(DEV, BY_USER, name).arn == session_arn("by-user", name)
    else:
        with pytest.raises(CredentialInputError) as refused:
            world.assume(DEV, BY_USER, name)
        assert refused.value.field == "session_name"


@pytest.mark.parametrize(
    "arn",
    [
        pytest.param(role_arn("ghost"), id="unknown-role"),
        pytest.param(role_arn("worker"), id="path-missing"),
        pytest.param(role_arn("worker", "/other/"), id="wrong-path"),
        pytest.param(f"arn:aws:iam::{B}:role/ci/worker", id="other-account"),
        pytest.param(DEV, id="a-user"),
        pytest.param("worker", id="not-an-arn"),
        pytest.param(f"arn:aws:sts::{A}:role/ci/worker", id="wrong-service"),
    ],
)
def test_assume_role_needs_an_existing_role_arn(world: World, arn: str) -> None:
    with pytest.raises(CredentialInputError) as refused:
        world.assume(DEV, arn)
    assert refused.value.field == "role_arn"


@pytest.mark.parametrize(
    "caller",
    [
        pytest.param(ROOT_A, id="root"),
        pytest.param(FED_SESSION, id="federated-user"),
        pytest.param(WORKER, id="bare-role"),
        pytest.param("not a principal", id="garbage"),
    ],
)
def test_callers_that_cannot_assume_roles(world: World, caller: str) -> None:
    with pytest.raises(CredentialInputError) as refused:
        world.assume(caller, BY_ACCOUNT)
    assert refused.value.field == "caller"


def test_an_invalid_session_policy_is_refused(world: World) -> None:
    with pytest.raises(PolicyError):
        world.assume(DEV, WORKER, policy={"Version": "2012-10-17", "Statement": [{"Effect": "x"}]})
    huge = session_policy(*(allow(PULL, repository(f"r{n:04}")) for n in range(60)))
    with pytest.raises(CredentialInputError) as refused:
        world.assume(DEV, WORKER, policy=huge)
    assert refused.value.field == "policy"


# == decisions for an issued role session =======================================================


@pytest.mark.parametrize(
    ("policy", "action", "outcome"),
    [
        (None, PULL, Outcome.ALLOWED),
        (None, PUSH, Outcome.ALLOWED),
        (session_policy(allow(PULL)), PULL, Outcome.ALLOWED),
        (session_policy(allow(PULL)), PUSH, Outcome.IMPLICITLY_DENIED),
        (session_policy(allow(PUSH, RED_APP)), PUSH, Outcome.IMPLICITLY_DENIED),
        (session_policy(allow("ecr:*"), {**allow(PUSH), "Effect": "Deny"}), PUSH, "deny"),
    ],
)
def test_the_session_policy_narrows_the_role(
    world: World, policy: Doc | None, action: str, outcome: Outcome | str
) -> None:
    session = world.issue(world.assume(DEV, WORKER, policy=policy))
    expected = Outcome.EXPLICITLY_DENIED if outcome == "deny" else outcome
    assert world.decide(session.arn, action, APP) is expected


@pytest.mark.parametrize(
    ("resource", "policy", "outcome"),
    [
        pytest.param(SHARED_BY_ROLE, None, Outcome.ALLOWED, id="c-role-arn-no-session-policy"),
        pytest.param(
            SHARED_BY_ROLE, NOT_ECR, Outcome.IMPLICITLY_DENIED, id="c-role-arn-session-policy"
        ),
        pytest.param(SHARED_BY_SESSION, None, Outcome.ALLOWED, id="d-session-arn-no-policy"),
        pytest.param(SHARED_BY_SESSION, NOT_ECR, Outcome.ALLOWED, id="d-session-arn-policy"),
    ],
)
def test_repository_policies_naming_the_role_or_the_session(
    world: World, resource: str, policy: Doc | None, outcome: Outcome
) -> None:
    """Semantics §7.5 rows (c) and (d): VIEWER's own policies say nothing about ECR."""
    session = world.issue(world.assume(DEV, VIEWER, "s1", policy=policy))
    assert session.arn == VIEWER_SESSION
    assert world.decide(session.arn, PULL, resource) is outcome
    # another session of the same role is not the one the repository policy names
    other = world.issue(world.assume(DEV, VIEWER, "s2", policy=policy))
    expected = outcome if resource == SHARED_BY_ROLE else Outcome.IMPLICITLY_DENIED
    assert world.decide(other.arn, PULL, resource) is expected


@pytest.mark.parametrize(
    ("tags", "allowed", "denied"),
    [
        pytest.param({}, RED_APP, BLUE_APP, id="the-role-tag"),
        pytest.param({"team": "blue"}, BLUE_APP, RED_APP, id="session-tag-overrides-ignoring-case"),
        pytest.param({"TEAM": "blue"}, BLUE_APP, RED_APP, id="session-tag-key-in-capitals"),
        pytest.param({"other": "blue"}, RED_APP, BLUE_APP, id="unrelated-session-tag"),
    ],
)
def test_session_tags_feed_principal_tag_variables(
    world: World, tags: dict[str, str], allowed: str, denied: str
) -> None:
    session = world.issue(world.assume(DEV, TAGGED, tags=tags))
    assert world.decide(session.arn, PULL, allowed) is Outcome.ALLOWED
    assert world.decide(session.arn, PULL, denied) is Outcome.IMPLICITLY_DENIED


def test_token_issue_time_is_visible_to_policies(world: World) -> None:
    recent = world.issue(world.assume(DEV, CONDITIONED, "recent"))
    assert world.decide(recent.arn, PULL, APP) is Outcome.ALLOWED
    old = world.issue(world.assume(DEV, CONDITIONED, "old", now=BEFORE_2025))
    assert world.decide(old.arn, PULL, APP, now=BEFORE_2025 + 60) is Outcome.IMPLICITLY_DENIED
    # a session ARN Dockgate did not issue has no token issue time
    stranger = session_arn("conditioned", "stranger")
    assert world.decide(stranger, PULL, APP) is Outcome.IMPLICITLY_DENIED


@pytest.mark.parametrize(
    ("source_identity", "outcome"),
    [("alice", Outcome.ALLOWED), ("bob", Outcome.IMPLICITLY_DENIED), (None, "absent")],
)
def test_source_identity_is_visible_to_policies(
    world: World, source_identity: str | None, outcome: Outcome | str
) -> None:
    session = world.issue(world.assume(DEV, CONDITIONED, source_identity=source_identity))
    expected = Outcome.IMPLICITLY_DENIED if outcome == "absent" else outcome
    assert world.decide(session.arn, PUSH, APP) is expected


def test_the_source_identity_of_a_chain_is_visible_to_policies(world: World) -> None:
    with open_store(world.store.describe()) as store:
        store.put_role(
            Role(
                A,
                "chained-conditioned",
                # sts:SetSourceIdentity too: AWS may require it on every role of a chain
                trust_policy=document(trusts(WORKER, [ASSUME, SET_SOURCE])),
                inline={
                    "p": document(
                        allow(
                            PUSH, APP, Condition={"StringEquals": {"aws:SourceIdentity": "alice"}}
                        )
                    )
                },
            )
        )
    world.snapshot = world.builder.refresh(world.snapshot)
    first = world.issue(world.assume(DEV, WORKER, "first", source_identity="alice"))
    second = world.issue(world.assume(first.arn, role_arn("chained-conditioned"), "second"))
    assert world.decide(second.arn, PUSH, APP) is Outcome.ALLOWED


# -- expiry -----------------------------------------------------------------------------------


def test_an_issued_session_expires(world: World) -> None:
    session = world.issue(world.assume(DEV, WORKER))
    end = session.expires_at
    assert world.decide(session.arn, PUSH, APP, now=NOW) is Outcome.ALLOWED
    assert world.decide(session.arn, PUSH, APP, now=end - 1) is Outcome.ALLOWED
    for moment in (end, end + 1, end + 10 * HOUR):
        decision = world.snapshot.authorize(session.arn, PUSH, APP, now=moment)
        assert decision.outcome is Outcome.IMPLICITLY_DENIED
        assert "expired" in reasons(decision)
    # not issued by Dockgate: no expiry to check, the role decides
    assert world.decide(session_arn("worker", "other"), PUSH, APP, now=end) is Outcome.ALLOWED


def test_the_decision_cache_checks_expiry_first(world: World) -> None:
    session = world.issue(world.assume(DEV, WORKER))
    end = session.expires_at
    cache = DecisionCache(maxsize=100)
    assert cache.decide(world.snapshot, session.arn, PUSH, APP, now=NOW + 1).allowed
    assert cache.decide(world.snapshot, session.arn, PUSH, APP, now=end - 1).allowed
    assert cache.hits == 1  # the first decision was cached and served before expiry
    for moment in (end, end + HOUR):
        decision = cache.decide(world.snapshot, session.arn, PUSH, APP, now=moment)
        assert decision.outcome is Outcome.IMPLICITLY_DENIED
        assert "expired" in reasons(decision)
    off = DecisionCache(maxsize=0)
    assert off.decide(world.snapshot, session.arn, PUSH, APP, now=end - 1).allowed
    assert off.decide(world.snapshot, session.arn, PUSH, APP, now=end).outcome is (
        Outcome.IMPLICITLY_DENIED
    )


def test_an_expired_decision_is_not_served_to_a_renewed_session(world: World) -> None:
    session = world.issue(world.assume(DEV, WORKER))
    cache = DecisionCache(maxsize=100)
    late = session.expires_at + 5
    assert not cache.decide(world.snapshot, session.arn, PUSH, APP, now=late).allowed
    renewed = world.issue(world.assume(DEV, WORKER, now=late))
    assert renewed.arn == session.arn
    assert cache.decide(world.snapshot, session.arn, PUSH, APP, now=late + 1).allowed


# -- sessions Dockgate did not issue ----------------------------------------------------------


def test_a_session_dockgate_did_not_issue_is_its_role_without_a_session_policy(
    world: World,
) -> None:
    world.issue(world.assume(DEV, WORKER, "narrow", policy=session_policy(allow(PULL))))
    assert world.decide(session_arn("worker", "narrow"), PUSH, APP) is Outcome.IMPLICITLY_DENIED
    stranger = session_arn("worker", "stranger")
    assert world.decide(stranger, PUSH, APP) is Outcome.ALLOWED
    # session tags of a session Dockgate did not issue come in the context
    tagged = session_arn("tagged", "stranger")
    assert world.decide(tagged, PULL, RED_APP) is Outcome.ALLOWED
    assert world.decide(tagged, PULL, BLUE_APP) is Outcome.IMPLICITLY_DENIED
    context = {"aws:PrincipalTag/team": "blue"}
    assert world.decide(tagged, PULL, BLUE_APP, context) is Outcome.ALLOWED
    assert world.decide(tagged, PULL, RED_APP, context) is Outcome.IMPLICITLY_DENIED


def test_a_revoked_session_is_refused_until_issued_again(world: World) -> None:
    session = world.issue(world.assume(DEV, WORKER, policy=session_policy(allow(PULL))))
    assert world.decide(session.arn, PULL, APP) is Outcome.ALLOWED
    world.credentials.revoke_session(session.arn, NOW + 10)
    world.snapshot = world.builder.refresh(world.snapshot)
    for action in (PULL, PUSH):
        decision = world.snapshot.authorize(session.arn, action, APP, now=NOW + 20)
        assert decision.outcome is Outcome.IMPLICITLY_DENIED
        assert "revoked" in reasons(decision)
    with pytest.raises(AccessDeniedError, match="revoked"):
        check_login(world.snapshot, session.arn, {}, NOW + 20)
    with pytest.raises(AccessDeniedError):  # a revoked session cannot chain either
        world.assume(session.arn, CHAIN, "second", now=NOW + 20)
    again = world.issue(world.assume(DEV, WORKER, now=NOW + 30))
    assert again.arn == session.arn
    assert world.decide(session.arn, PUSH, APP) is Outcome.ALLOWED


# == GetFederationToken =========================================================================


def test_federation_needs_get_federation_token_in_the_identity_policy(world: World) -> None:
    for caller in (NOFED, DEV):
        with pytest.raises(AccessDeniedError, match="sts:GetFederationToken"):
            world.federate(caller)
    session = world.federate(FED, policy=ALL_ECR)
    assert session.arn == FED_SESSION
    assert session.base == f"user/{A}/fed"
    assert session.caller == FED
    assert session.policy == ALL_ECR
    assert session.source_identity is None


@pytest.mark.parametrize(
    "caller",
    [
        pytest.param(ROOT_A, id="root"),
        pytest.param(session_arn("worker", "s1"), id="role-session"),
        pytest.param(FED_SESSION, id="federated-user"),
        pytest.param(WORKER, id="role"),
        pytest.param(user_arn("ghost"), id="unknown-user"),
        pytest.param("garbage", id="garbage"),
    ],
)
def test_only_users_of_the_store_federate(world: World, caller: str) -> None:
    with pytest.raises(CredentialInputError) as refused:
        world.federate(caller)
    assert refused.value.field == "caller"


@pytest.mark.parametrize(
    ("duration", "lasts"),
    [
        pytest.param(0, 43_200, id="default-12-hours"),
        pytest.param(900, 900, id="minimum"),
        pytest.param(129_600, 129_600, id="maximum-36-hours"),
        pytest.param(899, None, id="below-minimum"),
        pytest.param(129_601, None, id="above-maximum"),
    ],
)
def test_federation_durations(world: World, duration: int, lasts: int | None) -> None:
    if lasts is None:
        with pytest.raises(CredentialInputError) as refused:
            world.federate(FED, duration=duration)
        assert refused.value.field == "duration_seconds"
    else:
        session = world.federate(FED, duration=duration)
        assert session.expires_at - session.issued_at == lasts


@pytest.mark.parametrize(
    ("name", "valid"),
    [
        ("ab", True),
        ("x" * 32, True),
        ("ci+bot=1,2.3@host-a_b", True),
        ("a", False),
        ("x" * 33, False),
        ("with space", False),
        ("with/slash", False),
    ],
)
def test_federated_user_names(world: World, name: str, valid: bool) -> None:
    if valid:
        assert world.federate(FED, name).arn == federated_arn(name)
    else:
        with pytest.raises(CredentialInputError) as refused:
            world.federate(FED, name)
        assert refused.value.field == "name"


@pytest.mark.parametrize(
    ("action", "outcome"),
    [
        pytest.param(PULL, Outcome.ALLOWED, id="both-allow"),
        pytest.param(PUSH, Outcome.IMPLICITLY_DENIED, id="only-the-user-allows"),
        pytest.param(DESCRIBE, Outcome.IMPLICITLY_DENIED, id="only-the-session-policy-allows"),
        pytest.param("ecr:DeleteRepository", Outcome.IMPLICITLY_DENIED, id="neither"),
    ],
)
def test_a_federated_session_gets_the_intersection(
    world: World, action: str, outcome: Outcome
) -> None:
    policy = session_policy(allow([PULL, DESCRIBE], APP))
    session = world.issue(world.federate(FED, policy=policy))
    assert world.decide(session.arn, action, APP) is outcome


def test_a_federated_session_without_a_session_policy_has_no_identity_permissions(
    world: World,
) -> None:
    session = world.issue(world.federate(FED, "fedsess"))
    assert session.policy is None
    decision = world.snapshot.authorize(session.arn, PULL, APP, now=NOW + 1)
    assert decision.outcome is Outcome.IMPLICITLY_DENIED
    assert "session policy" in reasons(decision)
    # §7.5 row (e): a repository policy naming the federated-user ARN itself allows
    assert world.decide(session.arn, PULL, FED_ONLY) is Outcome.ALLOWED
    # ... with or without a session policy that says nothing about ECR
    world.issue(world.federate(FED, "fedsess", policy=NOT_ECR))
    assert world.decide(session.arn, PULL, FED_ONLY) is Outcome.ALLOWED
    assert world.decide(federated_arn("someone"), PULL, FED_ONLY) is Outcome.IMPLICITLY_DENIED


@pytest.mark.parametrize(
    ("tags", "outcome"),
    [
        pytest.param({}, Outcome.IMPLICITLY_DENIED, id="user-tags-only"),
        pytest.param({"cost": "2"}, Outcome.ALLOWED, id="session-tag-overrides-ignoring-case"),
        pytest.param({"cost": "2", "team": "red"}, Outcome.IMPLICITLY_DENIED, id="both-overridden"),
    ],
)
def test_a_federated_session_has_the_user_tags_and_the_session_tags(
    world: World, tags: dict[str, str], outcome: Outcome
) -> None:
    session = world.issue(world.federate(FED, policy=ALL_ECR, tags=tags))
    assert dict(session.tags) == tags
    assert world.decide(session.arn, LIST, APP) is outcome


def test_federation_session_tags_need_tag_session(world: World) -> None:
    assert world.federate(FED_NO_TAG).tags == {}
    with pytest.raises(AccessDeniedError, match="sts:TagSession"):
        world.federate(FED_NO_TAG, tags={"team": "blue"})
    with pytest.raises(CredentialInputError):
        world.federate(FED, tags={"aws:team": "blue"})


def test_a_federated_name_unlike_the_user_still_has_that_users_permissions(world: World) -> None:
    # FED federates under the name of another IAM user, BOB, who may do anything in ECR
    session = world.issue(world.federate(FED, "bob", policy=ALL_ECR))
    assert session.arn == federated_arn("bob")
    assert world.decide(session.arn, PULL, APP) is Outcome.ALLOWED  # FED's policies
    assert world.decide(session.arn, PULL, RED_APP) is Outcome.IMPLICITLY_DENIED  # not BOB's
    assert world.decide(session.arn, "ecr:DeleteRepository", APP) is Outcome.IMPLICITLY_DENIED


def test_a_federated_name_does_not_borrow_another_users_repository_grants(world: World) -> None:
    session = world.issue(world.federate(FED, "bob", policy=ALL_ECR))
    assert world.decide(session.arn, PULL, BOBS) is Outcome.IMPLICITLY_DENIED


def test_a_federated_session_expires(world: World) -> None:
    session = world.issue(world.federate(FED, duration=900, policy=ALL_ECR))
    assert world.decide(session.arn, PULL, APP, now=NOW + 899) is Outcome.ALLOWED
    decision = world.snapshot.authorize(session.arn, PULL, FED_ONLY, now=NOW + 900)
    assert decision.outcome is Outcome.IMPLICITLY_DENIED
    assert "expired" in reasons(decision)


# == check_login ================================================================================


def test_check_login_for_users(world: World) -> None:
    check_login(world.snapshot, FED, {}, NOW)
    check_login(world.snapshot, NOFED, {}, NOW)
    for principal in (DEV, OTHER, user_arn("ghost")):
        with pytest.raises(AccessDeniedError, match="ecr:GetAuthorizationToken") as denied:
            check_login(world.snapshot, principal, {}, NOW)
        assert denied.value.decision.outcome is Outcome.IMPLICITLY_DENIED


@pytest.mark.parametrize(
    ("policy", "allowed"),
    [
        pytest.param(None, True, id="no-session-policy"),
        pytest.param(session_policy(allow(LOGIN)), True, id="session-policy-allows"),
        pytest.param(session_policy(allow(PULL)), False, id="session-policy-silent"),
        pytest.param(
            session_policy(allow("ecr:*"), {**allow(LOGIN), "Effect": "Deny"}),
            False,
            id="session-policy-denies",
        ),
    ],
)
def test_check_login_for_a_role_session(world: World, policy: Doc | None, allowed: bool) -> None:
    session = world.issue(world.assume(DEV, WORKER, policy=policy))
    if allowed:
        check_login(world.snapshot, session.arn, {}, NOW + 1)
    else:
        with pytest.raises(AccessDeniedError):
            check_login(world.snapshot, session.arn, {}, NOW + 1)
    with pytest.raises(AccessDeniedError, match="expired"):
        check_login(world.snapshot, session.arn, {}, session.expires_at)


@pytest.mark.parametrize(
    ("policy", "allowed"),
    [
        pytest.param(None, False, id="no-session-policy"),
        pytest.param(session_policy(allow(LOGIN)), True, id="session-policy-allows"),
        pytest.param(NOT_ECR, False, id="session-policy-silent"),
    ],
)
def test_check_login_for_a_federated_session(
    world: World, policy: Doc | None, allowed: bool
) -> None:
    session = world.issue(world.federate(FED, policy=policy))
    if allowed:
        check_login(world.snapshot, session.arn, {}, NOW + 1)
    else:
        with pytest.raises(AccessDeniedError):
            check_login(world.snapshot, session.arn, {}, NOW + 1)


def test_check_login_reads_the_context(world: World) -> None:
    with open_store(world.store.describe()) as store:
        store.put_user(
            User(
                A,
                "from-office",
                inline={
                    "login": document(
                        allow(LOGIN, Condition={"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}})
                    )
                },
            )
        )
    world.snapshot = world.builder.refresh(world.snapshot)
    office = user_arn("from-office")
    check_login(world.snapshot, office, {"aws:SourceIp": "10.1.2.3"}, NOW)
    for context in ({"aws:SourceIp": "192.0.2.1"}, {}):
        with pytest.raises(AccessDeniedError):
            check_login(world.snapshot, office, context, NOW)


# == the credential store and the snapshot ======================================================


def stored(arn: str, session_id: str, expires_at: float, **fields: Any) -> Session:
    return Session(arn, session_id, f"role/{A}/worker", DEV, NOW, expires_at, **fields)


def test_put_session_replaces_the_session_of_the_same_arn(world: World) -> None:
    credentials = world.credentials
    arn = session_arn("worker", "s1")
    first = credentials.put_session(stored(arn, "id-1", NOW + HOUR))
    assert first.sessions == frozenset({arn})
    assert not first.credentials
    second = credentials.put_session(
        stored(arn, "id-2", NOW + 2 * HOUR, tags={"team": "blue"}, policy=ALL_ECR)
    )
    assert second.revision == first.revision + 1
    loaded = credentials.load_session(arn)
    assert loaded == stored(arn, "id-2", NOW + 2 * HOUR, tags={"team": "blue"}, policy=ALL_ECR)
    assert [s.session_id for s in credentials.load_sessions()] == ["id-2"]
    assert credentials.load_session(session_arn("worker", "ghost")) is None


def test_a_session_round_trips_through_the_store(world: World) -> None:
    session = world.assume(
        DEV, WORKER, policy=ALL_ECR, tags={"team": "blue"}, source_identity="alice"
    )
    world.credentials.put_session(session)
    assert world.credentials.load_session(session.arn) == session


def test_revoke_session_leaves_a_tombstone(world: World) -> None:
    credentials = world.credentials
    arn = session_arn("worker", "s1")
    credentials.put_session(stored(arn, "id-1", NOW + HOUR, policy=ALL_ECR, tags={"a": "b"}))
    change = credentials.revoke_session(arn, NOW + 5)
    assert change.sessions == frozenset({arn})
    assert credentials.load_session(arn) == stored(
        arn, "id-1", NOW + HOUR, ended="revoked", ended_at=NOW + 5
    )
    assert credentials.load_sessions(live_only=True) == []
    assert [s.arn for s in credentials.load_sessions()] == [arn]
    revision = world.store.revision
    for again in (arn, session_arn("worker", "ghost")):
        with pytest.raises(StoreError):
            credentials.revoke_session(again, NOW + 6)
    assert world.store.revision == revision


def test_sweep_drops_expired_sessions_only(world: World) -> None:
    credentials = world.credentials
    short, long = session_arn("worker", "short"), session_arn("worker", "long")
    credentials.put_session(stored(short, "id-short", NOW + 10))
    credentials.put_session(stored(long, "id-long", NOW + HOUR))
    assert credentials.sweep(NOW + 9, key_lifetime=HOUR) is None
    revision = world.store.revision
    change = credentials.sweep(NOW + 10, key_lifetime=HOUR)
    assert change is not None
    assert change.revision == revision + 1
    assert change.sessions == frozenset({short})
    assert not change.credentials
    # the expired session stays as a tombstone, so its ARN keeps being refused
    assert credentials.load_session(short) == stored(
        short, "id-short", NOW + 10, ended="expired", ended_at=NOW + 10
    )
    assert [s.arn for s in credentials.load_sessions(live_only=True)] == [long]
    assert credentials.sweep(NOW + 10, key_lifetime=HOUR) is None
    assert world.store.revision == revision + 1
    # tombstones are forgotten after ENDED_SESSION_MEMORY; the long one ends meanwhile
    later = NOW + 10 + ENDED_SESSION_MEMORY
    change = credentials.sweep(later, key_lifetime=HOUR)
    assert change is not None and change.sessions == frozenset({short, long})
    assert credentials.load_session(short) is None
    ended = credentials.load_session(long)
    assert ended is not None and (ended.ended, ended.ended_at) == ("expired", NOW + HOUR)
    assert credentials.sweep(later, key_lifetime=HOUR) is None


def test_sweep_forgets_revoked_sessions_after_the_memory(world: World) -> None:
    credentials = world.credentials
    arn = session_arn("worker", "s1")
    credentials.put_session(stored(arn, "id-1", NOW + 30 * 24 * HOUR))
    credentials.revoke_session(arn, NOW)
    assert credentials.sweep(NOW + ENDED_SESSION_MEMORY - 1, key_lifetime=HOUR) is None
    change = credentials.sweep(NOW + ENDED_SESSION_MEMORY, key_lifetime=HOUR)
    assert change is not None and change.sessions == frozenset({arn})
    assert credentials.load_sessions() == []


def test_sweep_drops_revocations_of_expired_tokens(world: World) -> None:
    credentials = world.credentials
    credentials.revoke_token("t-early", NOW + 5)
    credentials.revoke_token("t-late", NOW + 50)
    assert credentials.revoked_tokens() == frozenset({"t-early", "t-late"})
    assert credentials.sweep(NOW, key_lifetime=HOUR) is None
    change = credentials.sweep(NOW + 10, key_lifetime=HOUR)
    assert change is not None and change.credentials and not change.sessions
    assert credentials.revoked_tokens() == frozenset({"t-late"})
    assert credentials.sweep(NOW + 10, key_lifetime=HOUR) is None


def test_sweep_drops_keys_retired_longer_than_the_lifetime(world: World) -> None:
    credentials = world.credentials
    keys = [new_signing_key(NOW + offset) for offset in (0, 100, 200)]
    for key in keys:
        assert credentials.add_signing_key(key).credentials
    held = credentials.signing_keys()
    assert [k.key_id for k in held] == [k.key_id for k in keys]  # the current one last
    assert [k.retired_at for k in held] == [NOW + 100, NOW + 200, None]
    assert credentials.sweep(NOW + 199, key_lifetime=100) is None
    change = credentials.sweep(NOW + 250, key_lifetime=100)
    assert change is not None and change.credentials
    assert [k.key_id for k in credentials.signing_keys()] == [keys[1].key_id, keys[2].key_id]
    assert credentials.sweep(NOW + 250, key_lifetime=100) is None
    # the current key is never retired by time alone
    credentials.sweep(NOW + 10**6, key_lifetime=100)
    assert [k.key_id for k in credentials.signing_keys()] == [keys[2].key_id]


def _credentials_summary(snapshot: Snapshot) -> tuple[object, ...]:
    state = snapshot.credentials
    sessions = {
        arn: (
            view.session_id,
            view.base,
            view.issued_at,
            view.expires_at,
            dict(view.tags),
            dict(view.keys),
            view.policy is not None,
            view.ended,
            view.ended_at,
        )
        for arn, view in state.sessions.items()
    }
    keys = {key_id: (key.secret, key.retired_at) for key_id, key in state.signing_keys.items()}
    return snapshot.revision, sessions, keys, state.current_key, state.revoked_tokens


def _decisions(snapshot: Snapshot, principals: Sequence[str]) -> list[Outcome]:
    return [
        snapshot.authorize(principal, action, APP, now=NOW + 60).outcome
        for principal in principals
        for action in (PULL, PUSH, LOGIN)
    ]


def test_refresh_sees_sessions_keys_and_revocations_as_a_fresh_build_does(world: World) -> None:
    credentials = world.credentials
    builder = world.builder
    snapshot = world.snapshot
    narrow = world.assume(DEV, WORKER, "narrow", policy=session_policy(allow(PULL)), tags=TAGS)
    fed = world.federate(FED, policy=ALL_ECR)
    principals = [narrow.arn, fed.arn]

    def step(write: Mapping[str, Any] | None = None) -> Snapshot:
        nonlocal snapshot
        snapshot = builder.refresh(snapshot)
        fresh = SnapshotFollower(world.store).build()
        assert _credentials_summary(snapshot) == _credentials_summary(fresh)
        assert _decisions(snapshot, principals) == _decisions(fresh, principals)
        return snapshot

    assert step() is snapshot  # nothing changed: the same snapshot
    credentials.put_session(narrow)
    assert narrow.arn in step().credentials.sessions
    assert snapshot.authorize(narrow.arn, PUSH, APP, now=NOW + 1).outcome is (
        Outcome.IMPLICITLY_DENIED
    )
    credentials.put_session(fed)
    assert step().credentials.sessions[fed.arn].session_id == fed.session_id
    key = new_signing_key(NOW)
    credentials.add_signing_key(key)
    assert step().credentials.current_key == key.key_id
    newer = new_signing_key(NOW + 1)
    credentials.add_signing_key(newer)
    assert step().credentials.current_key == newer.key_id
    assert snapshot.credentials.signing_keys[key.key_id].retired_at == NOW + 1
    credentials.revoke_token("t-1", NOW + HOUR)
    assert step().credentials.revoked_tokens == frozenset({"t-1"})
    credentials.revoke_session(narrow.arn, NOW + 2)
    assert step().credentials.sessions[narrow.arn].ended == "revoked"
    assert snapshot.authorize(narrow.arn, PULL, APP, now=NOW + 3).outcome is (
        Outcome.IMPLICITLY_DENIED
    )
    replaced = dataclasses.replace(fed, session_id="replaced", policy=None)
    credentials.put_session(replaced)
    assert step().credentials.sessions[fed.arn].session_id == "replaced"
    assert credentials.sweep(fed.expires_at, key_lifetime=0) is not None
    assert {arn: view.ended for arn, view in step().credentials.sessions.items()} == {
        narrow.arn: "revoked",
        fed.arn: "expired",
    }
    assert list(snapshot.credentials.signing_keys) == [newer.key_id]
    assert snapshot.credentials.revoked_tokens == frozenset()
    assert credentials.sweep(fed.expires_at + ENDED_SESSION_MEMORY, key_lifetime=0) is not None
    assert step().credentials.sessions == {}


def test_update_with_the_change_of_a_write_equals_refresh(world: World) -> None:
    session = world.assume(DEV, WORKER, tags=TAGS)
    change = world.credentials.put_session(session)
    updated = world.builder.update(world.snapshot, change)
    refreshed = world.builder.refresh(world.snapshot)
    assert _credentials_summary(updated) == _credentials_summary(refreshed)
    keys = updated.credentials.sessions[session.arn].keys
    assert dict(keys) == {"aws:tokenissuetime": "2025-06-15T15:06:40Z"}
