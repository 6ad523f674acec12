"""StatementIndex: `candidates()` may return too much, never too little, and narrows for real."""

from __future__ import annotations

from typing import Any

import pytest

from dockgate_server.engine.compile import CompiledPolicy, CompiledStatement, compile_policy
from dockgate_server.engine.index import StatementIndex
from dockgate_server.engine.request import Request, build_request
from dockgate_server.policy.model import PolicyKind
from dockgate_server.policy.parse import parse_policy

A = "111122223333"
B = "444455556666"
ALICE = f"arn:aws:iam::{A}:user/alice"
SESSION = f"arn:aws:sts::{A}:assumed-role/ci/build"
TAGS = {"team": "team-a", "path": "team-a/app"}


def repo(name: str, account: str = A, region: str = "us-east-1") -> str:
    return f"arn:aws:ecr:{region}:{account}:repository/{name}"


def policy(
    *statements: dict[str, Any], name: str = "p", version: str = "2012-10-17"
) -> CompiledPolicy:
    document = {"Version": version, "Statement": list(statements)}
    return compile_policy(parse_policy(document, kind=PolicyKind.IDENTITY, name=name))


def request(
    action: str,
    resource: str,
    principal: str = ALICE,
    context: dict[str, str | list[str]] | None = None,
) -> Request:
    return build_request(principal, action, resource, context, principal_tags=TAGS)


def applies(statement: CompiledStatement, req: Request) -> bool:
    """What the index narrows on: the action and the resource (conditions are the evaluator's)."""
    return statement.matches_action(req) and statement.matches_resource(req)


def ids(policies: tuple[CompiledPolicy, ...]) -> list[tuple[str, int]]:
    return [(s.policy, s.index) for p in policies for s in p.statements]


def matching(index: StatementIndex, req: Request) -> list[tuple[str, int]]:
    return [(s.policy, s.index) for p in index.all() for s in p.statements if applies(s, req)]


def assert_keeps_every_match(index: StatementIndex, req: Request) -> list[tuple[str, int]]:
    found = ids(index.candidates(req))
    assert len(found) == len(set(found)), "a statement appears twice"
    missing = [entry for entry in matching(index, req) if entry not in found]
    assert not missing, f"candidates() dropped matching statements {missing} for {req.action}"
    return found


# Each case: a statement and a request it matches (by action and resource).
CASES: list[tuple[str, dict[str, Any], Request]] = [
    (
        "action-star",
        {"Effect": "Allow", "Action": "*", "Resource": repo("app")},
        request("ecr:BatchGetImage", repo("app")),
    ),
    (
        "action-star-other-service",
        {"Effect": "Allow", "Action": "*", "Resource": "arn:aws:s3:::bucket/*"},
        request("s3:GetObject", "arn:aws:s3:::bucket/key"),
    ),
    (
        "not-action",
        {"Effect": "Deny", "NotAction": "ecr:PutImage", "Resource": "*"},
        request("ecr:BatchGetImage", repo("app")),
    ),
    (
        "not-action-other-service",
        {"Effect": "Deny", "NotAction": ["ecr:*"], "Resource": "*"},
        request("s3:GetObject", "arn:aws:s3:::bucket/key"),
    ),
    (
        "not-action-star-request",
        {"Effect": "Allow", "NotAction": "s3:*", "Resource": "*"},
        request("ecr:GetAuthorizationToken", "*"),
    ),
    (
        "several-services",
        {"Effect": "Allow", "Action": ["s3:GetObject", "ecr:BatchGetImage"], "Resource": "*"},
        request("ecr:BatchGetImage", repo("app")),
    ),
    (
        "several-services-case",
        {"Effect": "Allow", "Action": ["sts:AssumeRole", "ECR:Batch*"], "Resource": "*"},
        request("ecr:batchgetimage", repo("app")),
    ),
    (
        "action-question-mark",
        {"Effect": "Allow", "Action": "ecr:?etDownloadUrlForLayer", "Resource": "*"},
        request("ecr:GetDownloadUrlForLayer", repo("team-a/app")),
    ),
    (
        "resource-star",
        {"Effect": "Allow", "Action": "ecr:*", "Resource": "*"},
        request("ecr:PutImage", repo("team-b/app", B)),
    ),
    (
        "resource-star-star-request",
        {"Effect": "Allow", "Action": "ecr:GetAuthorizationToken", "Resource": "*"},
        request("ecr:GetAuthorizationToken", "*"),
    ),
    (
        "resource-star-in-list",
        {"Effect": "Allow", "Action": "ecr:Get*", "Resource": [repo("other"), "*"]},
        request("ecr:GetAuthorizationToken", "*"),
    ),
    (
        "not-resource",
        {"Effect": "Deny", "Action": "ecr:*", "NotResource": repo("public/*")},
        request("ecr:PutImage", repo("app")),
    ),
    (
        "not-resource-star-request",
        {"Effect": "Deny", "Action": "ecr:*", "NotResource": "arn:aws:ecr:*:*:repository/*"},
        request("ecr:GetAuthorizationToken", "*"),
    ),
    (
        "wildcard-region-account",
        {"Effect": "Allow", "Action": "ecr:*", "Resource": "arn:aws:ecr:*:*:repository/team-a/*"},
        request("ecr:PutImage", repo("team-a/app", B, "eu-west-1")),
    ),
    (
        "partial-wildcards-region-account",
        {
            "Effect": "Allow",
            "Action": "ecr:*",
            "Resource": "arn:aws:ecr:us-?ast-1:1111*:repository/app",
        },
        request("ecr:PutImage", repo("app")),
    ),
    (
        "wildcard-everything",
        {"Effect": "Allow", "Action": "ecr:*", "Resource": "arn:*:ecr:*:*:*"},
        request("ecr:ListImages", repo("x/y/z", B)),
    ),
    (
        "wildcard-inside-resource",
        {"Effect": "Allow", "Action": "ecr:*", "Resource": "arn:aws:ecr:*:*:repository/te*m-?/app"},
        request("ecr:ListImages", repo("team-b/app")),
    ),
    (
        "question-mark-in-resource",
        {"Effect": "Allow", "Action": "ecr:*", "Resource": "arn:aws:ecr:*:*:repository/team-?/app"},
        request("ecr:ListImages", repo("team-b/app")),
    ),
    (
        "wildcard-first-in-resource",
        {"Effect": "Allow", "Action": "ecr:*", "Resource": "arn:aws:ecr:*:*:*app"},
        request("ecr:ListImages", repo("team-b/app")),
    ),
    (
        "variable-username",
        {
            "Effect": "Allow",
            "Action": "ecr:*",
            "Resource": "arn:aws:ecr:*:*:repository/${aws:username}/*",
        },
        request("ecr:PutImage", repo("alice/tools")),
    ),
    (
        "variable-principal-tag",
        {
            "Effect": "Allow",
            "Action": "ecr:*",
            "Resource": "arn:aws:ecr:*:*:repository/${aws:PrincipalTag/team}/*",
        },
        request("ecr:PutImage", repo("team-a/app")),
    ),
    (
        "variable-holding-a-slash",
        {
            "Effect": "Allow",
            "Action": "ecr:*",
            "Resource": "arn:aws:ecr:*:*:repository/${aws:PrincipalTag/path}",
        },
        request("ecr:PutImage", repo("team-a/app")),
    ),
    (
        "variable-first-in-resource",
        {"Effect": "Allow", "Action": "ecr:*", "Resource": "arn:aws:ecr:*:*:${aws:PrincipalTag/x}"},
        request("ecr:PutImage", repo("app"), context={"aws:PrincipalTag/x": "repository/app"}),
    ),
    (
        "variable-with-default",
        {
            "Effect": "Allow",
            "Action": "ecr:*",
            "Resource": "arn:aws:ecr:*:*:repository/${aws:PrincipalTag/missing, 'shared'}/*",
        },
        request("ecr:PutImage", repo("shared/app")),
    ),
    (
        "variable-from-context",
        {
            "Effect": "Allow",
            "Action": "ecr:*",
            "Resource": "arn:aws:ecr:*:*:repository/${aws:RequestedRegion}-*",
        },
        request(
            "ecr:PutImage", repo("us-east-1-app"), context={"aws:RequestedRegion": "us-east-1"}
        ),
    ),
    (
        "variable-principal-account-of-a-session",
        {
            "Effect": "Allow",
            "Action": "ecr:*",
            "Resource": f"arn:aws:ecr:*:{A}:repository/${{aws:PrincipalAccount}}",
        },
        request("ecr:PutImage", repo(A), principal=SESSION),
    ),
    (
        "escape",
        # `$` is in no repository name (the request would be refused): an S3 key holds one
        {"Effect": "Allow", "Action": "s3:*", "Resource": "arn:aws:s3:::bucket/a${$}b"},
        request("s3:PutObject", "arn:aws:s3:::bucket/a$b"),
    ),
    (
        "two-patterns-one-statement",
        {
            "Effect": "Allow",
            "Action": "ecr:*",
            "Resource": [repo("team-a/*"), repo("team-a/app"), "arn:aws:ecr:*:*:repository/t*"],
        },
        request("ecr:PutImage", repo("team-a/app")),
    ),
    (
        "other-service-resource",
        {"Effect": "Allow", "Action": "s3:Get*", "Resource": "arn:aws:s3:::bucket/*"},
        request("s3:GetObject", "arn:aws:s3:::bucket/key"),
    ),
]

VERSION_2008_CASES: list[tuple[str, dict[str, Any], Request]] = [
    (
        "literal-variable-text",
        {
            "Effect": "Allow",
            "Action": "s3:*",
            "Resource": "arn:aws:s3:::bucket/${aws:username}",
        },
        request("s3:PutObject", "arn:aws:s3:::bucket/${aws:username}"),
    ),
]


@pytest.mark.parametrize(
    ("statement", "req", "version"),
    [pytest.param(s, r, "2012-10-17", id=name) for name, s, r in CASES]
    + [pytest.param(s, r, "2008-10-17", id=name) for name, s, r in VERSION_2008_CASES],
)
def test_a_matching_statement_is_a_candidate(
    statement: dict[str, Any], req: Request, version: str
) -> None:
    noise = [
        {"Effect": "Allow", "Action": "s3:PutObject", "Resource": "arn:aws:s3:::other/*"},
        {"Effect": "Allow", "Action": "ecr:DeleteRepository", "Resource": repo("zzz")},
    ]
    index = StatementIndex([policy(*noise, statement, *noise, version=version)])
    assert matching(index, req) == [("p", 2)]  # the case is not vacuous
    assert ("p", 2) in assert_keeps_every_match(index, req)


def test_every_request_keeps_every_matching_statement_across_policies() -> None:
    """All cases in one index of several policies, every request against all of them."""
    statements = [statement for _, statement, _ in CASES]
    policies = [
        policy(*statements[i : i + 5], name=f"policy-{i}") for i in range(0, len(statements), 5)
    ]
    index = StatementIndex(policies)
    requests = [req for _, _, req in CASES] + [
        request("ecr:GetAuthorizationToken", "*"),
        request("ecr:BatchGetImage", repo("zzz/nothing", B, "ap-south-1")),
        request("iam:PassRole", f"arn:aws:iam::{A}:role/x"),
        request("ecr:PutImage", "arn:aws:ecr:us-east-1:111122223333:"),
        request("ecr:PutImage", repo("team-a/app"), principal=SESSION),
    ]
    for req in requests:
        found = assert_keeps_every_match(index, req)
        order = [(int(name.split("-")[1]), number) for name, number in found]
        assert order == sorted(order), "candidates keep document order"
        # and a second look, from the kept action slice, finds the same
        assert ids(index.candidates(req)) == found


def test_candidates_keep_the_statements_policy_names() -> None:
    first = policy({"Effect": "Allow", "Action": "ecr:*", "Resource": "*"}, name="first")
    second = policy(
        {"Effect": "Deny", "Action": "ecr:PutImage", "Resource": repo("app")}, name="second"
    )
    index = StatementIndex([first, second])
    assert ids(index.candidates(request("ecr:PutImage", repo("app")))) == [
        ("first", 0),
        ("second", 0),
    ]
    assert ids(index.all()) == [("first", 0), ("second", 0)]


def test_an_empty_index_has_no_candidates() -> None:
    index = StatementIndex([])
    assert index.candidates(request("ecr:PutImage", repo("app"))) == ()
    assert index.all() == ()
    assert index.statement_count == 0


def test_many_distinct_actions_stay_exact() -> None:
    """Past the bound on kept action slices, candidates are computed per request, still exact."""
    index = StatementIndex(
        [
            policy(
                {"Effect": "Allow", "Action": "ecr:*", "Resource": "arn:aws:ecr:*:*:repository/*"},
                {"Effect": "Deny", "Action": "ecr:Action1*", "Resource": "*"},
            )
        ]
    )
    for number in range(400):
        req = request(f"ecr:Action{number}", repo("app"))
        found = assert_keeps_every_match(index, req)
        assert found == ([("p", 0), ("p", 1)] if str(number).startswith("1") else [("p", 0)])


TEAM_STATEMENTS = [
    {"Effect": "Allow", "Action": ["ecr:BatchGetImage", "ecr:PutImage"], "Resource": repo(name)}
    for name in ("team-a/app", "team-a/web", "team-b/app", "team-c/app", "tools")
] + [
    {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::bucket/*"},
    {"Effect": "Deny", "Action": "ecr:DeleteRepository", "Resource": "*"},
]


@pytest.mark.parametrize(
    ("req", "expected"),
    [
        pytest.param(request("s3:GetObject", "arn:aws:s3:::bucket/key"), [5], id="other-service"),
        pytest.param(request("sts:AssumeRole", "*"), [], id="unrelated-service"),
        pytest.param(request("ecr:BatchGetImage", repo("team-b/app")), [2], id="one-repository"),
        pytest.param(request("ecr:BatchGetImage", repo("elsewhere")), [], id="no-repository"),
        pytest.param(request("ecr:DeleteRepository", repo("tools")), [6], id="other-action"),
        pytest.param(request("ecr:GetAuthorizationToken", "*"), [], id="star-request"),
    ],
)
def test_candidates_narrow_for_an_unrelated_service_or_resource(
    req: Request, expected: list[int]
) -> None:
    index = StatementIndex([policy(*TEAM_STATEMENTS)])
    found = assert_keeps_every_match(index, req)
    assert [number for _, number in found] == expected
    assert len(found) < index.statement_count == len(ids(index.all()))
