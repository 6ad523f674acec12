"""The Decision `authorize` returns: which statements or gates decided, and what did not convert."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from dockgate_server.engine import (
    CompiledPolicy,
    Decision,
    Outcome,
    Phase,
    PolicySet,
    Reason,
    RequestError,
    authorize,
    build_request,
    compile_policy,
)
from dockgate_server.policy.model import Effect, PolicyKind
from dockgate_server.policy.parse import parse_policy
from dockgate_server.simulate import ERROR, run_case

OWNER = "111122223333"
OTHER = "444455556666"
USER = f"arn:aws:iam::{OWNER}:user/alice"
SESSION = f"arn:aws:sts::{OWNER}:assumed-role/ci/build-1"
FEDERATED = f"arn:aws:sts::{OWNER}:federated-user/alice"
ROOT = f"arn:aws:iam::{OWNER}:root"
SERVICE = "codebuild.amazonaws.com"
REPO = f"arn:aws:ecr:us-east-1:{OWNER}:repository/team-a/app"
FOREIGN_REPO = f"arn:aws:ecr:us-east-1:{OTHER}:repository/team-a/app"
PULL = "ecr:BatchGetImage"

Statement = dict[str, Any]
Levels = tuple[tuple[CompiledPolicy, ...], ...]


def policy(kind: PolicyKind, name: str, *statements: Statement) -> CompiledPolicy:
    document = {"Version": "2012-10-17", "Statement": list(statements)}
    return compile_policy(parse_policy(document, kind=kind, name=name))


def allow(action: str | list[str] = "*", resource: str = "*", **more: Any) -> Statement:
    return {"Effect": "Allow", "Action": action, "Resource": resource, **more}


def deny(action: str | list[str] = "*", resource: str = "*", **more: Any) -> Statement:
    return {"Effect": "Deny", "Action": action, "Resource": resource, **more}


EVERYTHING = allow()


def decide(
    principal: str = USER,
    action: str = PULL,
    resource: str = REPO,
    context: Mapping[str, str | Sequence[str]] | None = None,
    *,
    identity: tuple[CompiledPolicy, ...] = (),
    repository: CompiledPolicy | None = None,
    boundary: CompiledPolicy | None = None,
    session: CompiledPolicy | None = None,
    scps: Levels | None = None,
    rcps: Levels | None = None,
) -> Decision:
    policies = PolicySet(identity, repository, boundary, session, scps, rcps)
    return authorize(build_request(principal, action, resource, context), policies)


def identity(*statements: Statement, name: str = "ci-push") -> tuple[CompiledPolicy, ...]:
    return (policy(PolicyKind.IDENTITY, name, *statements),)


def statement_of(reason: Reason) -> tuple[Phase, str | None, int | None, str | None, Effect | None]:
    return (reason.phase, reason.policy, reason.statement, reason.sid, reason.effect)


def gates(decision: Decision) -> list[Phase]:
    """The phases of the failed gates; a gate reason names no statement."""
    assert all(reason.policy is None for reason in decision.reasons), decision.reasons
    return [reason.phase for reason in decision.reasons]


# -- ExplicitlyDenied ---------------------------------------------------------------------------


def test_an_explicit_deny_lists_every_matching_deny_with_its_place() -> None:
    decision = decide(
        SESSION,
        identity=(
            policy(
                PolicyKind.IDENTITY,
                "ci-push",
                allow("ecr:*", Sid="AllowEcr"),
                deny(PULL, Sid="NoPull"),
                deny("ecr:PutImage", Sid="NoPush"),  # another action: does not match
            ),
            policy(
                PolicyKind.IDENTITY,
                "guard",
                {"Effect": "Deny", "NotAction": "s3:*", "Resource": "*"},
            ),
        ),
        boundary=policy(PolicyKind.BOUNDARY, "edge", EVERYTHING, deny("ecr:Batch*", Sid="Edge")),
        session=policy(PolicyKind.SESSION, "handoff", deny("ecr:*", REPO, Sid="Handoff")),
        repository=policy(
            PolicyKind.REPOSITORY,
            "team-a-app",
            {"Sid": "No pulls here", "Effect": "Deny", "Principal": "*", "Action": PULL},
            {"Effect": "Deny", "Principal": {"AWS": f"arn:aws:iam::{OTHER}:root"}, "Action": PULL},
        ),
        scps=(
            (policy(PolicyKind.SCP, "full-access", EVERYTHING),),
            (policy(PolicyKind.SCP, "no-ecr", deny("ecr:*", Sid="Scp")),),
        ),
        rcps=(
            (
                policy(
                    PolicyKind.RCP,
                    "perimeter",
                    {
                        "Sid": "Rcp",
                        "Effect": "Deny",
                        "Principal": "*",
                        "Action": "ecr:*",
                        "Resource": "*",
                    },
                ),
            ),
        ),
    )

    assert decision.outcome is Outcome.EXPLICITLY_DENIED
    found = [statement_of(reason) for reason in decision.reasons]
    assert sorted(found, key=str) == sorted(
        [
            (Phase.IDENTITY_POLICY, "ci-push", 1, "NoPull", Effect.DENY),
            (Phase.IDENTITY_POLICY, "guard", 0, None, Effect.DENY),
            (Phase.PERMISSIONS_BOUNDARY, "edge", 1, "Edge", Effect.DENY),
            (Phase.SESSION_POLICY, "handoff", 0, "Handoff", Effect.DENY),
            (Phase.RESOURCE_POLICY, "team-a-app", 0, "No pulls here", Effect.DENY),
            (Phase.SERVICE_CONTROL_POLICY, "no-ecr", 0, "Scp", Effect.DENY),
            (Phase.RESOURCE_CONTROL_POLICY, "perimeter", 0, "Rcp", Effect.DENY),
        ],
        key=str,
    )


def test_an_explicit_deny_reason_serialises_its_place() -> None:
    decision = decide(identity=identity(EVERYTHING, deny(PULL, Sid="NoPull")))

    (reason,) = decision.reasons
    assert reason.to_json() == {
        "phase": "IdentityPolicy",
        "policy": "ci-push",
        "statement": 1,
        "sid": "NoPull",
        "effect": "Deny",
        "detail": reason.detail,
    }
    assert "statement 1" in reason.detail
    assert "`ci-push`" in reason.detail


def test_a_deny_whose_condition_is_false_is_not_listed() -> None:
    condition = {"StringEquals": {"aws:PrincipalTag/team": "b"}}
    decision = decide(identity=identity(EVERYTHING, deny(PULL, Condition=condition)))

    assert decision.outcome is Outcome.ALLOWED
    assert all(reason.effect is not Effect.DENY for reason in decision.reasons)


def test_a_repository_deny_naming_someone_else_is_not_listed() -> None:
    other = {
        "Effect": "Deny",
        "Principal": {"AWS": f"arn:aws:iam::{OWNER}:user/bob"},
        "Action": PULL,
    }
    decision = decide(
        identity=identity(EVERYTHING), repository=policy(PolicyKind.REPOSITORY, "repo", other)
    )

    assert decision.outcome is Outcome.ALLOWED


# -- Allowed -------------------------------------------------------------------------------------


def test_allowed_lists_the_allowing_identity_statements() -> None:
    decision = decide(
        identity=(
            policy(
                PolicyKind.IDENTITY,
                "ci-push",
                allow("ecr:Batch*", Sid="Batch"),
                allow("ecr:PutImage", Sid="Push"),  # another action: not listed
                allow(PULL, REPO, Sid="Exact"),
            ),
            policy(PolicyKind.IDENTITY, "read-only", allow("ecr:*")),
        ),
        boundary=policy(PolicyKind.BOUNDARY, "edge", allow("ecr:*", Sid="EdgeEcr")),
    )

    assert decision.outcome is Outcome.ALLOWED
    found = {statement_of(reason) for reason in decision.reasons}
    assert {
        (Phase.IDENTITY_POLICY, "ci-push", 0, "Batch", Effect.ALLOW),
        (Phase.IDENTITY_POLICY, "ci-push", 2, "Exact", Effect.ALLOW),
        (Phase.IDENTITY_POLICY, "read-only", 0, None, Effect.ALLOW),
    } <= found
    assert (Phase.IDENTITY_POLICY, "ci-push", 1, "Push", Effect.ALLOW) not in found
    assert all(reason.effect is Effect.ALLOW for reason in decision.reasons)
    assert decision.allowed


def test_allowed_by_a_repository_grant_to_the_caller_lists_that_statement() -> None:
    grant = {
        "Sid": "Pull for alice",
        "Effect": "Allow",
        "Principal": {"AWS": USER},
        "Action": ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
    }
    decision = decide(repository=policy(PolicyKind.REPOSITORY, "team-a-app", grant))

    assert decision.outcome is Outcome.ALLOWED
    assert [statement_of(r) for r in decision.reasons] == [
        (Phase.RESOURCE_POLICY, "team-a-app", 0, "Pull for alice", Effect.ALLOW)
    ]


def test_allowed_across_accounts_lists_both_sides() -> None:
    grant = {"Effect": "Allow", "Principal": {"AWS": OWNER}, "Action": PULL}
    decision = decide(
        USER,
        PULL,
        FOREIGN_REPO,
        identity=identity(allow(PULL, Sid="Pull")),
        repository=policy(PolicyKind.REPOSITORY, "foreign", grant),
    )

    assert decision.outcome is Outcome.ALLOWED
    assert {statement_of(r) for r in decision.reasons} == {
        (Phase.IDENTITY_POLICY, "ci-push", 0, "Pull", Effect.ALLOW),
        (Phase.RESOURCE_POLICY, "foreign", 0, None, Effect.ALLOW),
    }


def test_the_root_user_is_allowed_in_its_own_account_by_a_root_reason() -> None:
    decision = decide(ROOT)

    assert decision.outcome is Outcome.ALLOWED
    assert [reason.phase for reason in decision.reasons] == [Phase.ROOT_USER]


def test_a_service_principal_is_allowed_by_the_statement_naming_it() -> None:
    grant = {"Effect": "Allow", "Principal": {"Service": SERVICE}, "Action": PULL}
    decision = decide(SERVICE, repository=policy(PolicyKind.REPOSITORY, "repo", grant))

    assert decision.outcome is Outcome.ALLOWED
    assert [statement_of(r) for r in decision.reasons] == [
        (Phase.RESOURCE_POLICY, "repo", 0, None, Effect.ALLOW)
    ]


# -- ImplicitlyDenied: the gate that failed ------------------------------------------------------


def test_no_identity_allow_is_the_failed_gate() -> None:
    decision = decide(identity=identity(allow("ecr:PutImage")))

    assert decision.outcome is Outcome.IMPLICITLY_DENIED
    assert gates(decision) == [Phase.IDENTITY_POLICY]
    assert f"`{PULL}`" in decision.reasons[0].detail


def test_the_permissions_boundary_is_the_failed_gate() -> None:
    decision = decide(
        identity=identity(EVERYTHING),
        boundary=policy(PolicyKind.BOUNDARY, "edge", allow("s3:*")),
    )

    assert decision.outcome is Outcome.IMPLICITLY_DENIED
    assert gates(decision) == [Phase.PERMISSIONS_BOUNDARY]


def test_the_session_policy_is_the_failed_gate() -> None:
    decision = decide(
        SESSION,
        identity=identity(EVERYTHING),
        session=policy(PolicyKind.SESSION, "handoff", allow("ecr:PutImage")),
    )

    assert decision.outcome is Outcome.IMPLICITLY_DENIED
    assert gates(decision) == [Phase.SESSION_POLICY]


@pytest.mark.parametrize(
    ("levels", "failed"),
    [
        ((("full",), ("s3-only",)), 1),
        ((("full",), ("full",), ()), 2),  # IAM: a level with no policy allows nothing
        ((("s3-only", "full"), ("s3-only",)), 1),
        ((("s3-only",), ("full",)), 0),
    ],
)
def test_the_first_scp_level_without_an_allow_is_the_failed_gate(
    levels: tuple[tuple[str, ...], ...], failed: int
) -> None:
    documents = {"full": EVERYTHING, "s3-only": allow("s3:*")}
    decision = decide(
        identity=identity(EVERYTHING),
        scps=tuple(
            tuple(policy(PolicyKind.SCP, name, documents[name]) for name in level)
            for level in levels
        ),
    )

    assert decision.outcome is Outcome.IMPLICITLY_DENIED
    assert gates(decision) == [Phase.SERVICE_CONTROL_POLICY]
    assert f"level {failed}" in decision.reasons[0].detail


def test_a_missing_cross_account_resource_side_is_the_failed_gate() -> None:
    decision = decide(USER, PULL, FOREIGN_REPO, identity=identity(EVERYTHING))

    assert decision.outcome is Outcome.IMPLICITLY_DENIED
    assert gates(decision) == [Phase.RESOURCE_POLICY]
    assert f"`{OTHER}`" in decision.reasons[0].detail


def test_a_federated_user_without_a_session_policy_fails_the_session_gate() -> None:
    decision = decide(FEDERATED, identity=identity(EVERYTHING))

    assert decision.outcome is Outcome.IMPLICITLY_DENIED
    assert gates(decision) == [Phase.SESSION_POLICY]
    assert "session policy" in decision.reasons[0].detail


def test_a_federated_user_with_an_allowing_session_policy_is_allowed() -> None:
    decision = decide(
        FEDERATED,
        identity=identity(EVERYTHING),
        session=policy(PolicyKind.SESSION, "handoff", allow("ecr:*")),
    )

    assert decision.outcome is Outcome.ALLOWED


def test_every_failed_gate_is_listed() -> None:
    decision = decide(
        SESSION,
        PULL,
        FOREIGN_REPO,
        identity=identity(allow("s3:*")),
        boundary=policy(PolicyKind.BOUNDARY, "edge", allow("s3:*")),
        session=policy(PolicyKind.SESSION, "handoff", allow("s3:*")),
    )

    assert decision.outcome is Outcome.IMPLICITLY_DENIED
    assert gates(decision) == [
        Phase.IDENTITY_POLICY,
        Phase.PERMISSIONS_BOUNDARY,
        Phase.SESSION_POLICY,
        Phase.RESOURCE_POLICY,
    ]


def test_a_service_principal_without_a_grant_fails_the_repository_gate() -> None:
    decision = decide(SERVICE, identity=identity(EVERYTHING))

    assert decision.outcome is Outcome.IMPLICITLY_DENIED
    assert gates(decision) == [Phase.RESOURCE_POLICY]


# -- Decision.errors -----------------------------------------------------------------------------


def test_an_unconvertible_request_value_makes_its_condition_false_and_is_listed() -> None:
    condition = {"IpAddress": {"aws:SourceIp": "203.0.113.0/24"}}
    decision = decide(
        context={"aws:SourceIp": "somewhere"}, identity=identity(allow(Condition=condition))
    )

    assert decision.outcome is Outcome.IMPLICITLY_DENIED
    (error,) = decision.errors
    assert "`IpAddress`" in error
    assert "`aws:SourceIp`" in error
    assert "`somewhere`" in error


def test_an_unconvertible_request_value_makes_a_negated_condition_false_too() -> None:
    # semantics §4.2 step 4: false for negated operators too, so this Deny does not fire
    condition = {"NotIpAddress": {"aws:SourceIp": "203.0.113.0/24"}}
    decision = decide(
        context={"aws:SourceIp": "somewhere"},
        identity=identity(EVERYTHING, deny(Condition=condition)),
    )

    assert decision.outcome is Outcome.ALLOWED
    assert len(decision.errors) == 1
    assert "`somewhere`" in decision.errors[0]


@pytest.mark.parametrize(
    ("operator", "key", "value"),
    [
        ("NumericLessThan", "aws:MultiFactorAuthAge", "10abc"),
        ("DateGreaterThan", "aws:CurrentTime", "yesterday"),
        ("Bool", "aws:SecureTransport", "yes"),
        ("ArnLike", "aws:SourceArn", "not-an-arn"),
    ],
)
def test_every_operator_family_lists_its_unconvertible_request_values(
    operator: str, key: str, value: str
) -> None:
    operands = {
        "NumericLessThan": "3600",
        "DateGreaterThan": "2024-01-01T00:00:00Z",
        "Bool": "true",
        "ArnLike": "arn:aws:codebuild:*:*:project/*",
    }
    condition = {operator: {key: operands[operator]}}
    decision = decide(context={key: value}, identity=identity(allow(Condition=condition)))

    assert decision.outcome is Outcome.IMPLICITLY_DENIED
    assert len(decision.errors) == 1
    assert f"`{value}`" in decision.errors[0]


def test_an_unconvertible_policy_value_is_listed_and_another_value_may_still_match() -> None:
    condition = {"NumericLessThan": {"aws:MultiFactorAuthAge": ["ten", "3600"]}}
    decision = decide(
        context={"aws:MultiFactorAuthAge": "60"}, identity=identity(allow(Condition=condition))
    )

    assert decision.outcome is Outcome.ALLOWED
    (error,) = decision.errors
    assert "policy value `ten`" in error


def test_the_same_error_is_listed_once() -> None:
    condition = {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}
    decision = decide(
        context={"aws:SourceIp": "nowhere"},
        identity=identity(allow(Condition=condition), allow(PULL, Condition=condition)),
    )

    assert len(decision.errors) == 1


def test_a_decision_without_conversions_has_no_errors() -> None:
    condition = {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}
    decision = decide(
        context={"aws:SourceIp": "10.1.2.3"}, identity=identity(allow(Condition=condition))
    )

    assert decision.outcome is Outcome.ALLOWED
    assert decision.errors == ()


# -- malformed requests ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "principal",
    [
        "alice",
        "",
        "arn:aws:iam::1111:user/alice",
        "arn:aws:iam:us-east-1:111122223333:user/alice",
        "arn:aws:iam::111122223333:user/",
        "arn:aws:iam::111122223333:group/admins",
        "arn:aws:sts::111122223333:assumed-role/ci",
        "arn:aws:iam::111122223333",
    ],
)
def test_a_bad_principal_is_rejected(principal: str) -> None:
    with pytest.raises(RequestError):
        build_request(principal, PULL, REPO)


@pytest.mark.parametrize(
    "action", ["", "ecr", "ecr:", ":BatchGetImage", "ecr:Batch*", "ecr:Get Image", "e cr:Pull", "*"]
)
def test_a_bad_action_is_rejected(action: str) -> None:
    with pytest.raises(RequestError):
        build_request(USER, action, REPO)


@pytest.mark.parametrize(
    "resource",
    [
        "",
        "repository/team-a",
        "arn:aws:ecr:us-east-1:111122223333",
        "arn::ecr:us-east-1:111122223333:repository/a",
        "arn:aws:ecr:us-east-1:111122223333:repository/*",
        "arn:aws:ecr:us-east-1:111122223333:repository/te?m",
    ],
)
def test_a_bad_resource_is_rejected(resource: str) -> None:
    with pytest.raises(RequestError):
        build_request(USER, PULL, resource)


BAD_CONTEXTS: list[dict[Any, Any]] = [
    {"aws:SourceIp": 10},
    {"aws:SourceIp": None},
    {"aws:SourceIp": {"ip": "10.0.0.1"}},
    {"aws:TagKeys": ["env", 3]},
    {"aws:TagKeys": [["env"]]},
    {"": "x"},
    {"aws:SourceIp": "10.0.0.1", "AWS:SOURCEIP": "10.0.0.2"},
]


@pytest.mark.parametrize("context", BAD_CONTEXTS)
def test_a_bad_context_is_rejected(context: dict[Any, Any]) -> None:
    with pytest.raises(RequestError):
        build_request(USER, PULL, REPO, context)


@pytest.mark.parametrize("context", BAD_CONTEXTS)
def test_a_malformed_context_is_never_allowed(context: dict[Any, Any]) -> None:
    case = {
        "id": "malformed",
        "request": {"principal": ROOT, "action": PULL, "resource": REPO, "context": context},
        "identityPolicies": [{"Version": "2012-10-17", "Statement": [EVERYTHING]}],
        "resourcePolicy": {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Principal": "*", "Action": "*"}],
        },
    }

    result = run_case(case)

    assert result.decision == ERROR
    assert result.error is not None
    assert "request" in result.error


# -- imports, and engine bugs (tests written from the spec) -----------------------------------


@pytest.mark.parametrize(
    "module", ["dockgate_server.engine", "dockgate_server.conditions", "dockgate_server.simulate"]
)
def test_the_engine_imports_on_its_own(module: str) -> None:
    # a fresh interpreter: in-process imports hide an order-dependent import cycle
    run = subprocess.run(
        [sys.executable, "-c", f"import {module}"], capture_output=True, text=True, check=False
    )
    assert run.returncode == 0, run.stderr


@pytest.mark.parametrize("principal", [USER, ROOT])
def test_a_star_request_stays_in_the_callers_account_whatever_the_context(principal: str) -> None:
    # semantics §7.2: resource account = ... for `*` resources, the principal's account;
    # §8.2: GetAuthorizationToken comes from an identity-side statement with Resource `*`
    decision = decide(
        principal,
        "ecr:GetAuthorizationToken",
        "*",
        context={"aws:ResourceAccount": OTHER},
        identity=identity(allow("ecr:GetAuthorizationToken")),
    )

    assert decision.outcome is Outcome.ALLOWED
