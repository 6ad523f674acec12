"""Policy parsing and validation (semantics §2): one row per rule, each with its JSON pointer."""

from __future__ import annotations

import json
from typing import Any

import pytest

from dockgate_server.policy.findings import Finding, PolicyError, Severity
from dockgate_server.policy.model import (
    ConditionClause,
    Effect,
    Policy,
    PolicyKind,
    SetQualifier,
)
from dockgate_server.policy.parse import (
    MAX_JSON_DEPTH,
    JsonDepthError,
    load_json,
    parse_policy,
    validate_policy,
)
from dockgate_server.policy.principal import EntryKind

NAME = "ci-push"
V = "2012-10-17"
OWNER = "111122223333"
REPO = f"arn:aws:ecr:us-east-1:{OWNER}:repository/app"
CANONICAL = "79a59df900b949e55d96a1e698fbacedfd6e09d98eacf8f8d5218e7cd47ef2be"

IDENTITY = PolicyKind.IDENTITY
REPOSITORY = PolicyKind.REPOSITORY
BOUNDARY = PolicyKind.BOUNDARY
SESSION = PolicyKind.SESSION
SCP = PolicyKind.SCP
RCP = PolicyKind.RCP
IAM_KINDS = (IDENTITY, BOUNDARY, SESSION, SCP)


def statement(kind: PolicyKind, **fields: Any) -> dict[str, Any]:
    """A valid statement for `kind`, with `fields` replacing or (as `DROP`) removing elements."""
    base: dict[str, Any] = {"Effect": "Allow", "Action": "ecr:BatchGetImage"}
    if kind is REPOSITORY:
        base["Principal"] = {"AWS": OWNER}
    elif kind is RCP:
        base.update(Effect="Deny", Principal="*", Action="ecr:*", Resource="*")
    else:
        base["Resource"] = "*"
    for key, value in fields.items():
        if value is DROP:
            base.pop(key, None)
        else:
            base[key] = value
    return base


DROP = object()


def policy(kind: PolicyKind, *statements: dict[str, Any], version: object = V) -> dict[str, Any]:
    return {"Version": version, "Statement": list(statements) or [statement(kind)]}


def one(kind: PolicyKind, **fields: Any) -> dict[str, Any]:
    """A policy of one statement: the valid one for `kind`, changed by `fields`."""
    return policy(kind, statement(kind, **fields))


def condition(kind: PolicyKind, block: object, version: object = V) -> dict[str, Any]:
    return policy(kind, statement(kind, Condition=block), version=version)


def sized(kind: PolicyKind, length: int) -> dict[str, Any]:
    """A valid policy whose text is exactly `length` characters once whitespace is removed."""
    document = one(kind, Sid="")
    padding = length - len(json.dumps(document, separators=(",", ":")))
    assert padding >= 0
    document["Statement"][0]["Sid"] = "a" * padding
    return document


S0 = "/Statement/0"
C0 = "/Statement/0/Condition"
CASES: list[tuple[PolicyKind, object, str, str]] = [
    # §2.1 top level
    (IDENTITY, [], "", "object"),
    (IDENTITY, "policy", "", "object"),
    (IDENTITY, {**policy(IDENTITY), "Foo": 1}, "/Foo", "`foo`"),
    (IDENTITY, {**policy(IDENTITY), "statement": []}, "/statement", "`statement`"),
    (IDENTITY, {**policy(IDENTITY), "a/b": 1}, "/a~1b", "`a/b`"),
    (IDENTITY, {"Version": V}, "", "statement"),
    # IAM: "A JSON policy must include a statement", and `[]` includes none, for every kind
    *[(kind, {"Version": V, "Statement": []}, "/Statement", "statement") for kind in PolicyKind],
    (IDENTITY, policy(IDENTITY, version="2012-10-18"), "/Version", "2012-10-18"),
    (IDENTITY, policy(IDENTITY, version="2012-10-17 "), "/Version", "version"),
    (IDENTITY, policy(IDENTITY, version=2012), "/Version", "string"),
    (IDENTITY, policy(IDENTITY, version=None), "/Version", "null"),
    (IDENTITY, {**policy(IDENTITY), "Id": 5}, "/Id", "string"),
    (IDENTITY, {**policy(IDENTITY), "Id": None}, "/Id", "null"),
    (IDENTITY, {"Version": V, "Statement": "Allow"}, "/Statement", "object"),
    (IDENTITY, {"Version": V, "Statement": 1}, "/Statement", "object"),
    (IDENTITY, {"Version": V, "Statement": None}, "/Statement", "null"),
    (IDENTITY, {"Version": V, "Statement": [1]}, S0, "object"),
    (IDENTITY, {"Version": V, "Statement": [statement(IDENTITY), []]}, "/Statement/1", "object"),
    # §2.2 statement keys; null values
    (IDENTITY, one(IDENTITY, Principals="*"), f"{S0}/Principals", "`principals`"),
    (IDENTITY, one(IDENTITY, effect="Allow"), f"{S0}/effect", "`effect`"),
    (IDENTITY, one(IDENTITY, Resource=None), f"{S0}/Resource", "null"),
    (IDENTITY, one(IDENTITY, Condition=None), f"{S0}/Condition", "null"),
    (IDENTITY, one(IDENTITY, Sid=None), f"{S0}/Sid", "null"),
    (IDENTITY, one(IDENTITY, Action=None), f"{S0}/Action", "null"),
    (REPOSITORY, one(REPOSITORY, Principal=None), f"{S0}/Principal", "null"),
    # an element given statement-wide, as in a Statement object
    (
        IDENTITY,
        {"Version": V, "Statement": {**statement(IDENTITY), "Foo": 1}},
        "/Statement/Foo",
        "`foo`",
    ),
    # Effect
    (IDENTITY, one(IDENTITY, Effect=DROP), S0, "effect"),
    (IDENTITY, one(IDENTITY, Effect="allow"), f"{S0}/Effect", "`allow`"),
    (IDENTITY, one(IDENTITY, Effect="DENY"), f"{S0}/Effect", "`deny`"),
    (IDENTITY, one(IDENTITY, Effect="Permit"), f"{S0}/Effect", "`permit`"),
    (IDENTITY, one(IDENTITY, Effect=True), f"{S0}/Effect", "allow"),
    (IDENTITY, one(IDENTITY, Effect=["Allow"]), f"{S0}/Effect", "allow"),
    # Action / NotAction
    (IDENTITY, one(IDENTITY, Action=DROP), S0, "action"),
    (IDENTITY, one(IDENTITY, NotAction="ecr:PutImage"), S0, "notaction"),
    (IDENTITY, one(IDENTITY, Action=5), f"{S0}/Action", "string"),
    (IDENTITY, one(IDENTITY, Action={"ecr": "x"}), f"{S0}/Action", "string"),
    (IDENTITY, one(IDENTITY, Action=["ecr:PutImage", 3]), f"{S0}/Action/1", "string"),
    (IDENTITY, one(IDENTITY, Action=["ecr:PutImage", ["ecr:x"]]), f"{S0}/Action/1", "string"),
    (IDENTITY, one(IDENTITY, Action="ecrBatchGetImage"), f"{S0}/Action", "`ecrbatchgetimage`"),
    (IDENTITY, one(IDENTITY, Action=":BatchGetImage"), f"{S0}/Action", "`:batchgetimage`"),
    (IDENTITY, one(IDENTITY, Action="ec*:BatchGetImage"), f"{S0}/Action", "`ec*:batchgetimage`"),
    (IDENTITY, one(IDENTITY, Action="*:BatchGetImage"), f"{S0}/Action", "`*:batchgetimage`"),
    (IDENTITY, one(IDENTITY, Action="ecr_x:Get"), f"{S0}/Action", "`ecr_x:get`"),
    (IDENTITY, one(IDENTITY, Action="ecr:Batch:GetImage"), f"{S0}/Action", "`ecr:batch:getimage`"),
    (
        IDENTITY,
        one(IDENTITY, Action=DROP, NotAction=["ecr:*", "ecr"]),
        f"{S0}/NotAction/1",
        "`ecr`",
    ),
    (REPOSITORY, one(REPOSITORY, Action="ecr::PutImage"), f"{S0}/Action", "`ecr::putimage`"),
    # Resource / NotResource
    (IDENTITY, one(IDENTITY, Resource=DROP), S0, "resource"),
    (BOUNDARY, one(BOUNDARY, Resource=DROP), S0, "resource"),
    (SESSION, one(SESSION, Resource=DROP), S0, "resource"),
    (SCP, one(SCP, Resource=DROP), S0, "resource"),
    (RCP, one(RCP, Resource=DROP), S0, "resource"),
    (IDENTITY, one(IDENTITY, NotResource=REPO), S0, "notresource"),
    (REPOSITORY, one(REPOSITORY, Resource="*", NotResource=REPO), S0, "notresource"),
    (
        IDENTITY,
        one(IDENTITY, Resource=f"arn:aws:ecr:us-east-1:{OWNER}"),
        f"{S0}/Resource",
        f"arn:aws:ecr:us-east-1:{OWNER}",
    ),
    (IDENTITY, one(IDENTITY, Resource="repository/app"), f"{S0}/Resource", "`repository/app`"),
    (IDENTITY, one(IDENTITY, Resource=""), f"{S0}/Resource", "resource"),
    (
        IDENTITY,
        policy(
            IDENTITY, statement(IDENTITY, Resource=f"arn:aws:ec*:us-east-1:{OWNER}:repository/app")
        ),
        f"{S0}/Resource",
        "service",
    ),
    (
        IDENTITY,
        policy(
            IDENTITY, statement(IDENTITY, Resource=f"arn:aws:*:us-east-1:{OWNER}:repository/app")
        ),
        f"{S0}/Resource",
        "service",
    ),
    (
        IDENTITY,
        policy(
            IDENTITY, statement(IDENTITY, Resource=f"arn:aws:ec?:us-east-1:{OWNER}:repository/app")
        ),
        f"{S0}/Resource",
        "service",
    ),
    (IDENTITY, one(IDENTITY, Resource=["*", 5]), f"{S0}/Resource/1", "string"),
    (
        IDENTITY,
        one(IDENTITY, Resource=DROP, NotResource=[REPO, "app"]),
        f"{S0}/NotResource/1",
        "`app`",
    ),
    (REPOSITORY, one(REPOSITORY, Resource="app"), f"{S0}/Resource", "`app`"),
    # §5.1 variable syntax where variables are recognised (the resource part, 2012-10-17)
    (
        IDENTITY,
        policy(
            IDENTITY,
            statement(IDENTITY, Resource=f"arn:aws:ecr:*:{OWNER}:repository/${{aws:username"),
        ),
        f"{S0}/Resource",
        "brace",
    ),
    (
        IDENTITY,
        one(IDENTITY, Resource=f"arn:aws:ecr:*:{OWNER}:repository/${{}}"),
        f"{S0}/Resource",
        "empty",
    ),
    (
        IDENTITY,
        policy(
            IDENTITY,
            statement(IDENTITY, Resource=f"arn:aws:ecr:*:{OWNER}:repository/${{aws:username,'x'}}"),
        ),
        f"{S0}/Resource",
        "default",
    ),
    # §2.2 / §2.3 Principal and NotPrincipal per kind
    (IDENTITY, one(IDENTITY, Principal="*"), f"{S0}/Principal", "principal"),
    (BOUNDARY, one(BOUNDARY, Principal={"AWS": OWNER}), f"{S0}/Principal", "principal"),
    (SESSION, one(SESSION, NotPrincipal={"AWS": OWNER}), f"{S0}/NotPrincipal", "principal"),
    (SCP, one(SCP, Principal="*"), f"{S0}/Principal", "principal"),
    (REPOSITORY, one(REPOSITORY, Principal=DROP), S0, "principal"),
    (RCP, one(RCP, Principal=DROP), S0, "principal"),
    (REPOSITORY, one(REPOSITORY, Effect="Deny", NotPrincipal={"AWS": OWNER}), S0, "notprincipal"),
    (
        REPOSITORY,
        one(REPOSITORY, Principal=f"arn:aws:iam::{OWNER}:root"),
        f"{S0}/Principal",
        "object",
    ),
    (REPOSITORY, one(REPOSITORY, Principal=["*"]), f"{S0}/Principal", "object"),
    (REPOSITORY, one(REPOSITORY, Principal={"Aws": OWNER}), f"{S0}/Principal/Aws", "`aws`"),
    (REPOSITORY, one(REPOSITORY, Principal={"User": OWNER}), f"{S0}/Principal/User", "`user`"),
    (REPOSITORY, one(REPOSITORY, Principal={"AWS": 5}), f"{S0}/Principal/AWS", "string"),
    (
        REPOSITORY,
        policy(
            REPOSITORY, statement(REPOSITORY, Principal={"AWS": f"arn:aws:iam::{OWNER}:user/*"})
        ),
        f"{S0}/Principal/AWS",
        "wildcard",
    ),
    (
        REPOSITORY,
        one(REPOSITORY, Principal={"AWS": [OWNER, "1111222233*"]}),
        f"{S0}/Principal/AWS/1",
        "wildcard",
    ),
    (
        REPOSITORY,
        policy(
            REPOSITORY, statement(REPOSITORY, Principal={"AWS": f"arn:aws:iam::{OWNER}:role/ci-?"})
        ),
        f"{S0}/Principal/AWS",
        "wildcard",
    ),
    (
        REPOSITORY,
        one(REPOSITORY, Principal={"Service": "*"}),
        f"{S0}/Principal/Service",
        "wildcard",
    ),
    (REPOSITORY, one(REPOSITORY, Principal={"AWS": "alice"}), f"{S0}/Principal/AWS", "`alice`"),
    (
        REPOSITORY,
        policy(
            REPOSITORY,
            statement(REPOSITORY, Principal={"Service": ["codebuild.amazonaws.com", None]}),
        ),
        f"{S0}/Principal/Service/1",
        "string",
    ),
    # §2.2: NotPrincipal only with Deny
    (
        REPOSITORY,
        one(REPOSITORY, Principal=DROP, NotPrincipal={"AWS": OWNER}),
        f"{S0}/NotPrincipal",
        "deny",
    ),
    # §2.2 RCP restrictions
    (RCP, one(RCP, Effect="Allow"), f"{S0}/Effect", "deny"),
    (RCP, one(RCP, Action=DROP, NotAction="ecr:PutImage"), f"{S0}/NotAction", "notaction"),
    (RCP, one(RCP, Action="*"), f"{S0}/Action", "`*`"),
    (
        RCP,
        one(RCP, Principal=DROP, NotPrincipal={"AWS": OWNER}),
        f"{S0}/NotPrincipal",
        "notprincipal",
    ),
    (RCP, one(RCP, Action=["ecr:*", "*"]), f"{S0}/Action", "`*`"),
    (RCP, one(RCP, Principal={"AWS": OWNER}), f"{S0}/Principal", "`*`"),
    (RCP, policy(RCP, version="2008-10-17"), "/Version", "2012-10-17"),
    (RCP, {"Statement": [statement(RCP)]}, "", "2012-10-17"),
    # §2.6 condition block shape
    (IDENTITY, condition(IDENTITY, "aws:username"), C0, "object"),
    (IDENTITY, condition(IDENTITY, []), C0, "object"),
    (IDENTITY, condition(IDENTITY, {"StringEquals": "alice"}), f"{C0}/StringEquals", "object"),
    (IDENTITY, condition(IDENTITY, {"StringEquals": ["alice"]}), f"{C0}/StringEquals", "object"),
    (
        IDENTITY,
        condition(IDENTITY, {"StringEqualz": {"aws:username": "a"}}),
        f"{C0}/StringEqualz",
        "`stringequalz`",
    ),
    (
        IDENTITY,
        condition(IDENTITY, {"ForSomeValues:StringEquals": {"k": "a"}}),
        f"{C0}/ForSomeValues:StringEquals",
        "`forsomevalues:stringequals`",
    ),
    (IDENTITY, condition(IDENTITY, {"IfExists": {"k": "a"}}), f"{C0}/IfExists", "`ifexists`"),
    (
        IDENTITY,
        condition(IDENTITY, {"StringEqualsIfExist": {"k": "a"}}),
        f"{C0}/StringEqualsIfExist",
        "operator",
    ),
    (
        IDENTITY,
        condition(IDENTITY, {"StringEquals:IfExists": {"k": "a"}}),
        f"{C0}/StringEquals:IfExists",
        "operator",
    ),
    (IDENTITY, condition(IDENTITY, {"a/b": {"k": "a"}}), f"{C0}/a~1b", "`a/b`"),
    (
        IDENTITY,
        condition(IDENTITY, {"NullIfExists": {"k": "true"}}),
        f"{C0}/NullIfExists",
        "ifexists",
    ),
    (
        IDENTITY,
        condition(IDENTITY, {"ForAnyValue:NullIfExists": {"k": "true"}}),
        f"{C0}/ForAnyValue:NullIfExists",
        "ifexists",
    ),
    (
        IDENTITY,
        condition(IDENTITY, {"StringEquals": {"aws:username": "a", "AWS:UserName": "b"}}),
        f"{C0}/StringEquals/AWS:UserName",
        "different case",
    ),
    (
        IDENTITY,
        condition(
            IDENTITY, {"StringEquals": {"aws:PrincipalTag/team": "a", "aws:principaltag/TEAM": "b"}}
        ),
        f"{C0}/StringEquals/aws:principaltag~1TEAM",
        "different case",
    ),
    # §2.6 condition values: strings, numbers, booleans; not null, objects, nested arrays
    (
        IDENTITY,
        condition(IDENTITY, {"StringEquals": {"aws:username": None}}),
        f"{C0}/StringEquals/aws:username",
        "null",
    ),
    (
        IDENTITY,
        condition(IDENTITY, {"StringEquals": {"aws:username": {"a": 1}}}),
        f"{C0}/StringEquals/aws:username",
        "object",
    ),
    (
        IDENTITY,
        condition(IDENTITY, {"StringEquals": {"aws:username": [["a"]]}}),
        f"{C0}/StringEquals/aws:username/0",
        "list",
    ),
    (
        IDENTITY,
        condition(IDENTITY, {"StringEquals": {"aws:username": ["a", None]}}),
        f"{C0}/StringEquals/aws:username/1",
        "null",
    ),
    (
        IDENTITY,
        condition(IDENTITY, {"StringEquals": {"aws:username": ["a", {}]}}),
        f"{C0}/StringEquals/aws:username/1",
        "object",
    ),
    # §4.5: Null takes true or false
    (
        IDENTITY,
        condition(IDENTITY, {"Null": {"aws:username": "yes"}}),
        f"{C0}/Null/aws:username",
        "`yes`",
    ),
    (
        IDENTITY,
        condition(IDENTITY, {"Null": {"aws:username": ["true", "1"]}}),
        f"{C0}/Null/aws:username",
        "`1`",
    ),
    # §5.1 variable syntax in condition values (2012-10-17)
    (
        IDENTITY,
        condition(IDENTITY, {"StringEquals": {"k": "${aws:username"}}),
        f"{C0}/StringEquals/k",
        "brace",
    ),
    (IDENTITY, condition(IDENTITY, {"StringLike": {"k": "a${}"}}), f"{C0}/StringLike/k", "empty"),
    (
        IDENTITY,
        condition(IDENTITY, {"ArnLike": {"k": "${aws:PrincipalArn, x}"}}),
        f"{C0}/ArnLike/k",
        "default",
    ),
    # §2.2 Sid rules per kind: IAM policies take only letters and digits, unique
    *((kind, one(kind, Sid="My Sid"), f"{S0}/Sid", "`my sid`") for kind in IAM_KINDS),
    *((kind, one(kind, Sid="a-b"), f"{S0}/Sid", "`a-b`") for kind in IAM_KINDS),
    *((kind, one(kind, Sid="Café"), f"{S0}/Sid", "sid") for kind in IAM_KINDS),
    *(
        (
            kind,
            policy(kind, statement(kind, Sid="One"), statement(kind, Sid="One")),
            "/Statement/1/Sid",
            "duplicate",
        )
        for kind in IAM_KINDS
    ),
    (REPOSITORY, one(REPOSITORY, Sid=5), f"{S0}/Sid", "string"),
    (IDENTITY, one(IDENTITY, Sid=["a"]), f"{S0}/Sid", "string"),
    # §2.8 size limits, whitespace excluded
    (REPOSITORY, sized(REPOSITORY, 10_241), "", "10240"),
    (IDENTITY, sized(IDENTITY, 20_000), "", "characters"),
    (BOUNDARY, sized(BOUNDARY, 6_145), "", "6144"),
    (SESSION, sized(SESSION, 2_049), "", "2048"),
    (SCP, sized(SCP, 5_121), "", "5120"),
    (RCP, sized(RCP, 5_121), "", "5120"),
    # §2.7 IAM character set: TAB, LF, CR and U+0020-U+00FF
    (IDENTITY, condition(IDENTITY, {"StringEquals": {"k": "10 €"}}), "", "20ac"),
    (IDENTITY, condition(IDENTITY, {"StringEquals": {"k": "Ā"}}), "", "0100"),
    (BOUNDARY, condition(BOUNDARY, {"StringEquals": {"k": "日本"}}), "", "65e5"),
    (SESSION, condition(SESSION, {"StringEquals": {"k": "\U0001f600"}}), "", "1f600"),
]


def _case_id(row: tuple[PolicyKind, object, str, str]) -> str:
    kind, _, pointer, fragment = row
    return f"{kind}:{pointer or '-'}:{fragment}"


def _errors(document: object, kind: PolicyKind) -> tuple[Finding, ...]:
    return tuple(
        f for f in validate_policy(document, kind=kind, name=NAME) if f.severity is Severity.ERROR
    )


@pytest.mark.parametrize(
    ("kind", "document", "pointer", "fragment"), CASES, ids=map(_case_id, CASES)
)
def test_validation_error(kind: PolicyKind, document: object, pointer: str, fragment: str) -> None:
    found = [
        f
        for f in _errors(document, kind)
        if f.pointer == pointer and fragment.lower() in f.message.lower()
    ]
    assert found, [str(f) for f in _errors(document, kind)]
    message = str(found[0])
    assert message.startswith(f"policy `{NAME}`")
    assert f" at {pointer}:" in message if pointer else message.startswith(f"policy `{NAME}`: ")
    assert not found[0].message.endswith(".")

    with pytest.raises(PolicyError) as raised:
        parse_policy(document, kind=kind, name=NAME)
    error = raised.value
    assert str(error).startswith(f"policy `{NAME}`")
    assert any(f.pointer == pointer and fragment.lower() in f.message.lower() for f in error.errors)
    first = error.errors[0]
    assert first.pointer in str(error)


# the same rule, written as IAM allows it, must not be an error (the other side of each row)
NOT_ERRORS: list[tuple[PolicyKind, object]] = [
    (IDENTITY, policy(IDENTITY, version="2008-10-17")),
    (IDENTITY, {"Statement": [statement(IDENTITY)]}),
    (IDENTITY, {"Version": V, "Id": "my-id", "Statement": [statement(IDENTITY)]}),
    # §2.4: a name no action has is an unknown action, accepted (a fleet exported from AWS)
    (IDENTITY, one(IDENTITY, Action="s3:GetObject,PutObject")),
    (IDENTITY, one(IDENTITY, Action=["ecr:BatchGetImage", "ecr:Get-Image", "ecr:Pull!"])),
    (SCP, one(SCP, Action=DROP, NotAction="ecr:Put.Image")),
    (RCP, one(RCP, Action="ecr:Delete,Put")),
    (REPOSITORY, one(REPOSITORY, Action="ecr:BatchGetImage;PutImage")),
    # §2.5: a wildcard in the resource-type word is accepted and matches nothing
    (IDENTITY, one(IDENTITY, Resource=f"arn:aws:ecr:us-east-1:{OWNER}:*/team-a/app")),
    (IDENTITY, one(IDENTITY, Effect="Deny")),
    (IDENTITY, one(IDENTITY, Action="*")),
    (IDENTITY, one(IDENTITY, Action="ECR:batchgetimage")),
    (IDENTITY, one(IDENTITY, Action="ecr:*Image?")),
    (IDENTITY, one(IDENTITY, Action="s3:GetObject")),
    (IDENTITY, one(IDENTITY, Action="ecr:NoSuchAction")),
    (IDENTITY, one(IDENTITY, Action="ecr:")),
    (IDENTITY, one(IDENTITY, Action="aws-marketplace:ViewSubscriptions")),
    (IDENTITY, one(IDENTITY, Action=DROP, NotAction=["ecr:Delete*"])),
    (IDENTITY, one(IDENTITY, Resource=[REPO, "arn:aws:ecr:*:*:repository/*"])),
    (IDENTITY, one(IDENTITY, Resource="arn:aws:ecr:*:*:*")),
    (
        IDENTITY,
        policy(
            IDENTITY, statement(IDENTITY, Resource=f"arn:aws:ecr:us-east-?:{OWNER}:repository/a:b")
        ),
    ),
    (IDENTITY, one(IDENTITY, Resource="arn:aws:s3:::bucket/*")),
    (IDENTITY, one(IDENTITY, Resource=DROP, NotResource=REPO)),
    (
        IDENTITY,
        policy(
            IDENTITY, statement(IDENTITY, Resource="arn:aws:ecr:*:*:repository/${aws:username}/*")
        ),
    ),
    (
        IDENTITY,
        policy(
            IDENTITY,
            statement(
                IDENTITY, Resource="arn:aws:ecr:*:*:repository/${aws:PrincipalTag/team, 'shared'}/*"
            ),
        ),
    ),
    (IDENTITY, one(IDENTITY, Resource="arn:aws:ecr:*:*:repository/a${*}")),
    # §2.1: under 2008-10-17 or with no Version `${` is plain text, so nothing to reject
    (
        IDENTITY,
        policy(
            IDENTITY,
            statement(IDENTITY, Resource="arn:aws:ecr:*:*:repository/${aws:username"),
            version="2008-10-17",
        ),
    ),
    (IDENTITY, {"Statement": [statement(IDENTITY, Resource="arn:aws:ecr:*:*:repository/${}")]}),
    (
        IDENTITY,
        condition(IDENTITY, {"StringEquals": {"k": "${aws:username"}}, version="2008-10-17"),
    ),
    # §5.2: Numeric values take no variables, so `${` there is text (it never converts)
    (IDENTITY, condition(IDENTITY, {"NumericLessThan": {"k": "${"}})),
    (REPOSITORY, one(REPOSITORY, Principal="*")),
    (REPOSITORY, one(REPOSITORY, Principal={"AWS": "*"})),
    (
        REPOSITORY,
        policy(
            REPOSITORY,
            statement(
                REPOSITORY,
                Principal={
                    "AWS": [
                        OWNER,
                        f"arn:aws:iam::{OWNER}:root",
                        f"arn:aws:iam::{OWNER}:user/team/alice",
                        f"arn:aws:iam::{OWNER}:role/ci",
                        f"arn:aws:sts::{OWNER}:assumed-role/ci/run",
                        f"arn:aws:sts::{OWNER}:federated-user/bob",
                    ]
                },
            ),
        ),
    ),
    (
        REPOSITORY,
        policy(
            REPOSITORY,
            statement(
                REPOSITORY, Principal={"Service": ["codebuild.amazonaws.com", "ecs.amazonaws.com"]}
            ),
        ),
    ),
    (
        REPOSITORY,
        policy(
            REPOSITORY,
            statement(
                REPOSITORY,
                Principal={
                    "Federated": "cognito-identity.amazonaws.com",
                    "CanonicalUser": CANONICAL,
                },
            ),
        ),
    ),
    (REPOSITORY, one(REPOSITORY, Principal={"AWS": []})),
    (REPOSITORY, one(REPOSITORY, Principal={})),
    (
        REPOSITORY,
        policy(
            REPOSITORY,
            statement(
                REPOSITORY,
                Principal=DROP,
                Effect="Deny",
                NotPrincipal={"AWS": [OWNER, f"arn:aws:iam::{OWNER}:user/alice"]},
            ),
        ),
    ),
    (REPOSITORY, one(REPOSITORY, Resource="*")),
    (REPOSITORY, one(REPOSITORY, Resource=REPO)),
    (RCP, one(RCP, Principal={"AWS": "*"})),
    (
        RCP,
        policy(
            RCP, statement(RCP, Condition={"BoolIfExists": {"aws:PrincipalIsAWSService": "false"}})
        ),
    ),
    (IDENTITY, condition(IDENTITY, {})),
    (IDENTITY, condition(IDENTITY, {"StringEquals": {}})),
    (IDENTITY, condition(IDENTITY, {"StringEquals": {"k": []}})),
    (IDENTITY, condition(IDENTITY, {"ForAllValues:StringLikeIfExists": {"aws:TagKeys": ["a*"]}})),
    (IDENTITY, condition(IDENTITY, {"ForAllValues:Null": {"k": "true"}})),
    (IDENTITY, condition(IDENTITY, {"Null": {"k": ["TRUE", "False"]}})),
    (
        IDENTITY,
        condition(
            IDENTITY, {"StringEquals": {"aws:username": "a"}, "StringLike": {"AWS:UserName": "b"}}
        ),
    ),
    (IDENTITY, condition(IDENTITY, {"StringEquals": {"k": "${aws:username, 'nobody'}"}})),
    (IDENTITY, condition(IDENTITY, {"Bool": {"k": "${aws:PrincipalTag/flag}"}})),
    (IDENTITY, condition(IDENTITY, {"StringEquals": {"k": "ÿ é © ¡"}})),
    (IDENTITY, condition(IDENTITY, {"StringEquals": {"k": "tab\there\nline\r"}})),
    (REPOSITORY, condition(REPOSITORY, {"StringEquals": {"k": "10 € 日本 \U0001f600"}})),
    (IDENTITY, one(IDENTITY, Sid="AllowPull1")),
    (IDENTITY, policy(IDENTITY, statement(IDENTITY, Sid="One"), statement(IDENTITY, Sid="Two"))),
    (REPOSITORY, sized(REPOSITORY, 10_240)),
    (IDENTITY, sized(IDENTITY, 6_144)),
    (BOUNDARY, sized(BOUNDARY, 6_144)),
    (SESSION, sized(SESSION, 2_048)),
    (SCP, sized(SCP, 5_120)),
    (RCP, sized(RCP, 5_120)),
]


@pytest.mark.parametrize(("kind", "document"), NOT_ERRORS)
def test_valid_policy(kind: PolicyKind, document: object) -> None:
    assert _errors(document, kind) == ()
    assert isinstance(parse_policy(document, kind=kind, name=NAME), Policy)


def test_two_set_qualifiers_are_an_unknown_operator() -> None:
    spelled = "ForAllValues:ForAnyValue:StringEquals"
    document = condition(IDENTITY, {spelled: {"k": "a"}})
    assert any(f.pointer == f"{C0}/{spelled}" for f in _errors(document, IDENTITY))


@pytest.mark.parametrize("action", ["ecr:Batch GetImage", "ecr: BatchGetImage"])
def test_whitespace_in_an_action_name_is_not_an_error(action: str) -> None:
    assert _errors(one(IDENTITY, Action=action), IDENTITY) == ()


def test_every_error_is_reported_at_once() -> None:
    document = policy(
        IDENTITY,
        statement(IDENTITY, Effect="allow"),
        statement(IDENTITY, Action=DROP, Resource=DROP),
    )
    pointers = {f.pointer for f in _errors(document, IDENTITY)}
    assert {f"{S0}/Effect", "/Statement/1"} <= pointers
    with pytest.raises(PolicyError) as raised:
        parse_policy(document, kind=IDENTITY, name=NAME)
    assert len(raised.value.errors) >= 3
    assert "more)" in str(raised.value)


def test_error_message_names_policy_statement_and_pointer() -> None:
    document = policy(IDENTITY, statement(IDENTITY), statement(IDENTITY, Effect="Permit"))
    with pytest.raises(PolicyError) as raised:
        parse_policy(document, kind=IDENTITY, name=NAME)
    assert str(raised.value).startswith(f"policy `{NAME}` statement 1 at /Statement/1/Effect: ")
    assert "`Permit`" in str(raised.value)


# -- duplicate JSON keys (§2.7): reported at the second occurrence ---------------------------

STATEMENT_JSON = '{"Effect":"Allow","Action":"ecr:BatchGetImage","Resource":"*"}'
DUPLICATE_CASES = [
    (IDENTITY, f'{{"Version":"{V}","Version":"{V}","Statement":[{STATEMENT_JSON}]}}', "/Version"),
    (IDENTITY, f'{{"Version":"{V}","Statement":[{STATEMENT_JSON}],"Statement":[]}}', "/Statement"),
    (
        IDENTITY,
        f'{{"Version":"{V}","Statement":[{{"Effect":"Allow","Effect":"Deny",'
        '"Action":"ecr:BatchGetImage","Resource":"*"}]}',
        f"{S0}/Effect",
    ),
    (
        IDENTITY,
        f'{{"Version":"{V}","Statement":{{"Effect":"Allow","Action":"ecr:BatchGetImage",'
        '"Action":"ecr:PutImage","Resource":"*"}}',
        "/Statement/Action",
    ),
    (
        IDENTITY,
        f'{{"Version":"{V}","Statement":[{{"Effect":"Allow","Action":"ecr:BatchGetImage",'
        '"Resource":"*","Condition":{"StringEquals":{"k":"a"},"StringEquals":{"k":"b"}}}]}',
        f"{C0}/StringEquals",
    ),
    (
        IDENTITY,
        f'{{"Version":"{V}","Statement":[{{"Effect":"Allow","Action":"ecr:BatchGetImage",'
        '"Resource":"*","Condition":{"StringEquals":{"aws:PrincipalTag/t":"a",'
        '"aws:PrincipalTag/t":"b"}}}]}',
        f"{C0}/StringEquals/aws:PrincipalTag~1t",
    ),
    (
        REPOSITORY,
        f'{{"Version":"{V}","Statement":[{{"Effect":"Allow","Action":"ecr:BatchGetImage",'
        f'"Principal":{{"AWS":"{OWNER}","AWS":"*"}}}}]}}',
        f"{S0}/Principal/AWS",
    ),
]


@pytest.mark.parametrize(("kind", "text", "pointer"), DUPLICATE_CASES)
def test_duplicate_json_keys(kind: PolicyKind, text: str, pointer: str) -> None:
    document = load_json(text)
    found = [f for f in _errors(document, kind) if f.pointer == pointer]
    assert found
    assert "duplicate" in found[0].message.lower()
    with pytest.raises(PolicyError) as raised:
        parse_policy(document, kind=kind, name=NAME)
    assert str(raised.value).startswith(f"policy `{NAME}`")
    assert pointer in str(raised.value)


def test_load_json_without_duplicates_is_plain_json() -> None:
    text = f'{{"Version":"{V}","Statement":[{STATEMENT_JSON}]}}'
    assert load_json(text) == json.loads(text)
    assert load_json(text.encode()) == json.loads(text)
    assert _errors(load_json(text), IDENTITY) == ()


def test_whitespace_does_not_count_toward_the_size_limit() -> None:
    document = sized(SESSION, 2_048)
    text = json.dumps(document, indent=8)
    assert len(text) > 2_048
    assert _errors(load_json(text), SESSION) == ()


# -- what a valid document turns into ----------------------------------------------------


def _warnings(document: object, kind: PolicyKind) -> list[Finding]:
    return [
        f for f in validate_policy(document, kind=kind, name=NAME) if f.severity is Severity.WARNING
    ]


def test_statement_object_is_one_statement() -> None:
    parsed = parse_policy(
        {"Version": V, "Statement": statement(IDENTITY, Sid="Only")}, kind=IDENTITY, name=NAME
    )
    assert len(parsed.statements) == 1
    only = parsed.statements[0]
    assert (only.index, only.sid, only.effect) == (0, "Only", Effect.ALLOW)
    assert only.actions == ("ecr:BatchGetImage",)
    assert only.resources == ("*",)
    assert only.principals is None
    assert only.conditions == ()


def test_statement_lists_are_normalised() -> None:
    parsed = parse_policy(
        policy(
            IDENTITY,
            statement(IDENTITY, Action=["ecr:PutImage", "ecr:BatchGetImage"]),
            statement(
                IDENTITY,
                Effect="Deny",
                Action=DROP,
                NotAction="ecr:*",
                Resource=DROP,
                NotResource=REPO,
            ),
        ),
        kind=IDENTITY,
        name=NAME,
    )
    first, second = parsed.statements
    assert first.actions == ("ecr:PutImage", "ecr:BatchGetImage")
    assert not first.not_action
    assert not first.not_resource
    assert second.index == 1
    assert second.effect is Effect.DENY
    assert second.actions == ("ecr:*",)
    assert second.not_action
    assert second.resources == (REPO,)
    assert second.not_resource


@pytest.mark.parametrize("kind", list(PolicyKind))
def test_empty_statement_list_is_refused(kind: PolicyKind) -> None:
    with pytest.raises(PolicyError) as raised:
        parse_policy({"Version": V, "Statement": []}, kind=kind, name=NAME)
    assert [(f.pointer, f.message) for f in raised.value.errors] == [
        ("/Statement", "must hold at least one statement")
    ]


def test_version_and_id() -> None:
    parsed = parse_policy({**policy(IDENTITY), "Id": "pull"}, kind=IDENTITY, name=NAME)
    assert (parsed.name, parsed.kind, parsed.version, parsed.id) == (NAME, IDENTITY, V, "pull")
    assert parsed.has_variables
    legacy = parse_policy(policy(IDENTITY, version="2008-10-17"), kind=IDENTITY, name=NAME)
    assert legacy.version == "2008-10-17"
    assert not legacy.has_variables


def test_missing_version_is_a_warning() -> None:
    document = {"Statement": [statement(IDENTITY)]}
    parsed = parse_policy(document, kind=IDENTITY, name=NAME)
    assert parsed.version is None
    assert not parsed.has_variables
    assert any("version" in f.message.lower() for f in _warnings(document, IDENTITY))


def test_scalars_in_condition_values_become_their_json_text() -> None:
    document = condition(
        IDENTITY,
        {
            "NumericLessThan": {"aws:MultiFactorAuthAge": 3600},
            "NumericEquals": {"k": [10, 1.5, -2]},
            "Bool": {"aws:SecureTransport": True, "aws:ViaAWSService": False},
            "StringEquals": {"aws:username": ["alice", 7, False]},
        },
    )
    clauses = parse_policy(document, kind=IDENTITY, name=NAME).statements[0].conditions
    values = {(c.operator, c.key): c.values for c in clauses}
    assert values == {
        ("NumericLessThan", "aws:MultiFactorAuthAge"): ("3600",),
        ("NumericEquals", "k"): ("10", "1.5", "-2"),
        ("Bool", "aws:SecureTransport"): ("true",),
        ("Bool", "aws:ViaAWSService"): ("false",),
        ("StringEquals", "aws:username"): ("alice", "7", "false"),
    }


OPERATOR_SPELLINGS = [
    ("StringEquals", "StringEquals", None, False, False),
    ("stringequals", "StringEquals", None, False, True),
    ("STRINGLIKE", "StringLike", None, False, True),
    ("StringLikeIfExists", "StringLike", None, True, False),
    ("stringlikeifexists", "StringLike", None, True, True),
    ("ForAllValues:StringEquals", "StringEquals", SetQualifier.FOR_ALL_VALUES, False, False),
    ("ForAnyValue:ArnLikeIfExists", "ArnLike", SetQualifier.FOR_ANY_VALUE, True, False),
    ("forallvalues:stringlikeifexists", "StringLike", SetQualifier.FOR_ALL_VALUES, True, True),
    ("FORANYVALUE:NumericLessThan", "NumericLessThan", SetQualifier.FOR_ANY_VALUE, False, True),
    ("NotIpAddress", "NotIpAddress", None, False, False),
    ("notipaddressifexists", "NotIpAddress", None, True, True),
    ("null", "Null", None, False, True),
    ("Null", "Null", None, False, False),
    ("BoolIfExists", "Bool", None, True, False),
    ("DateGreaterThanEquals", "DateGreaterThanEquals", None, False, False),
    ("BinaryEquals", "BinaryEquals", None, False, False),
    ("ArnNotEqualsIfExists", "ArnNotEquals", None, True, False),
    ("StringNotEqualsIgnoreCase", "StringNotEqualsIgnoreCase", None, False, False),
]


@pytest.mark.parametrize(
    ("spelled", "operator", "qualifier", "if_exists", "warned"), OPERATOR_SPELLINGS
)
def test_operator_names_in_any_case(
    spelled: str, operator: str, qualifier: SetQualifier | None, if_exists: bool, warned: bool
) -> None:
    value = "true" if operator in ("Null", "Bool") else "203.0.113.0/24"
    value = {"BinaryEquals": "QQ==", "DateGreaterThanEquals": "2024-01-01"}.get(operator, value)
    value = "arn:aws:iam::111122223333:role/*" if operator.startswith("Arn") else value
    value = "10" if operator.startswith("Numeric") else value
    document = condition(IDENTITY, {spelled: {"k": value}})
    (clause,) = parse_policy(document, kind=IDENTITY, name=NAME).statements[0].conditions
    assert clause == ConditionClause(operator, qualifier, if_exists, "k", (value,), spelled)
    warnings = [f for f in _warnings(document, IDENTITY) if f.pointer == f"{C0}/{spelled}"]
    assert bool(warnings) is warned


def test_condition_clauses_keep_keys_as_written() -> None:
    document = condition(
        IDENTITY, {"StringEquals": {"aws:PrincipalTag/Team": "red", "aws:username": ["a", "b"]}}
    )
    clauses = parse_policy(document, kind=IDENTITY, name=NAME).statements[0].conditions
    assert [(c.key, c.values) for c in clauses] == [
        ("aws:PrincipalTag/Team", ("red",)),
        ("aws:username", ("a", "b")),
    ]


def test_principals_are_parsed() -> None:
    document = policy(
        REPOSITORY,
        statement(REPOSITORY, Principal="*"),
        statement(
            REPOSITORY,
            Principal={
                "AWS": [OWNER, f"arn:aws:iam::{OWNER}:role/ci"],
                "Service": "ecs.amazonaws.com",
            },
        ),
        statement(REPOSITORY, Effect="Deny", Principal=DROP, NotPrincipal={"AWS": "*"}),
    )
    first, second, third = parse_policy(document, kind=REPOSITORY, name=NAME).statements
    assert first.principals is not None
    assert [e.kind for e in first.principals] == [EntryKind.WILDCARD]
    assert not first.not_principal
    assert second.principals is not None
    assert [e.kind for e in second.principals] == [
        EntryKind.ACCOUNT,
        EntryKind.ROLE,
        EntryKind.SERVICE,
    ]
    assert third.not_principal
    assert third.principals is not None
    assert [e.kind for e in third.principals] == [EntryKind.WILDCARD]


def test_repository_statement_may_omit_resource() -> None:
    (only,) = parse_policy(policy(REPOSITORY), kind=REPOSITORY, name=NAME).statements
    assert only.resources is None


SID_CASES = [
    # §2.2 / §12 item 19: repository policies take any Sid, repeated Sids at most warn
    one(REPOSITORY, Sid="ECR Repository Policy"),
    one(REPOSITORY, Sid="allow-pull / push: CI"),
    policy(REPOSITORY, statement(REPOSITORY, Sid="Same"), statement(REPOSITORY, Sid="Same")),
]


@pytest.mark.parametrize("document", SID_CASES)
def test_repository_sids_are_lenient(document: dict[str, Any]) -> None:
    parsed = parse_policy(document, kind=REPOSITORY, name=NAME)
    assert parsed.statements[0].sid == document["Statement"][0]["Sid"]


def test_repeated_repository_sid_is_only_a_warning() -> None:
    document = SID_CASES[2]
    assert any(f.pointer == "/Statement/1/Sid" for f in _warnings(document, REPOSITORY))


WARNING_CASES = [
    # things that parse but that a validator should point out
    (IDENTITY, one(IDENTITY, Action="ecr:"), f"{S0}/Action"),
    (REPOSITORY, one(REPOSITORY, Principal={"AWS": []}), f"{S0}/Principal"),
    (IDENTITY, condition(IDENTITY, {"StringEquals": {"k": []}}), f"{C0}/StringEquals/k"),
    (IDENTITY, condition(IDENTITY, {"ForAnyValue:Null": {"k": "true"}}), f"{C0}/ForAnyValue:Null"),
    (IDENTITY, condition(IDENTITY, {"NumericEquals": {"k": "ten"}}), f"{C0}/NumericEquals/k"),
    # §2.4: unknown actions are accepted and pointed out
    (IDENTITY, one(IDENTITY, Action="s3:GetObject,PutObject"), f"{S0}/Action"),
    (IDENTITY, one(IDENTITY, Action=["ecr:BatchGetImage", "ecr:Get-Image"]), f"{S0}/Action/1"),
    (IDENTITY, one(IDENTITY, Action="ecr:NoSuchAction"), f"{S0}/Action"),
    (IDENTITY, one(IDENTITY, Action="ecr:Pull*"), f"{S0}/Action"),
    # §4.4, §12 item 15: `Bool` values are never variables
    (IDENTITY, condition(IDENTITY, {"Bool": {"k": "${aws:PrincipalTag/flag}"}}), f"{C0}/Bool/k"),
    # §2.5: a wildcard in the resource-type word matches nothing
    (
        IDENTITY,
        one(IDENTITY, Resource=f"arn:aws:ecr:us-east-1:{OWNER}:*/team-a/app"),
        f"{S0}/Resource",
    ),
    (IDENTITY, one(IDENTITY, Resource="arn:aws:ecr:*:*:repo*/app"), f"{S0}/Resource"),
    (
        IDENTITY,
        one(IDENTITY, Resource="arn:aws:ecr:*:*:reposit?ry/${aws:username}"),
        f"{S0}/Resource",
    ),
]


@pytest.mark.parametrize(("kind", "document", "pointer"), WARNING_CASES)
def test_validation_warning(kind: PolicyKind, document: object, pointer: str) -> None:
    assert _errors(document, kind) == ()
    assert any(f.pointer == pointer for f in _warnings(document, kind))


WARNING_MESSAGES = [
    (
        one(IDENTITY, Action="s3:GetObject,PutObject"),
        "`s3:GetObject,PutObject` holds characters no action has",
    ),
    (one(IDENTITY, Action="ecr:NoSuchAction"), "`ecr:NoSuchAction` names no ECR action"),
    (
        condition(IDENTITY, {"Bool": {"k": "${aws:SecureTransport}"}}),
        "`Bool` takes no policy variables",
    ),
    (one(IDENTITY, Resource="arn:aws:ecr:*:*:*/app"), "wildcard in its resource type"),
]


@pytest.mark.parametrize(("document", "fragment"), WARNING_MESSAGES)
def test_warning_says_why(document: object, fragment: str) -> None:
    assert any(fragment in f.message for f in _warnings(document, IDENTITY))


@pytest.mark.parametrize(
    "document",
    [
        one(IDENTITY, Action=["ecr:BatchGetImage", "ECR:getdownloadurlforlayer", "ecr:*", "s3:X"]),
        one(IDENTITY, Action="ecr:Batch*"),
        one(IDENTITY, Resource=["arn:aws:ecr:*:*:*", "arn:aws:ecr:*:*:repository/*"]),
        one(IDENTITY, Resource="arn:aws:ecr:*:*:repository/${aws:username}*"),
        condition(IDENTITY, {"Bool": {"aws:SecureTransport": "true"}}),
        condition(IDENTITY, {"StringEquals": {"k": "${aws:username}"}}),
    ],
)
def test_no_warning_for_known_actions_types_and_values(document: object) -> None:
    assert _warnings(document, IDENTITY) == []


# -- JSON nesting (issue 11 item 12): bounded before a parser recurses ---------------------------


def test_nesting_up_to_the_limit_loads() -> None:
    depth = MAX_JSON_DEPTH
    assert load_json("[" * depth + "]" * depth) == _nested(depth)


@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH + 1, 100_000])
def test_deeper_nesting_is_refused_naming_the_limit(depth: int) -> None:
    with pytest.raises(JsonDepthError, match=f"deeper than {MAX_JSON_DEPTH} levels"):
        load_json('{"Statement": ' + "[" * depth + "]" * depth + "}")


def test_the_depth_error_is_a_value_error_as_callers_expect() -> None:
    with pytest.raises(ValueError, match="levels"):
        load_json(b"[" * 100_000 + b"]" * 100_000)


def test_brackets_inside_strings_do_not_count() -> None:
    text = json.dumps({"Sid": "[" * 500 + '\\"{' * 100, "list": [[["x"]]]})
    assert load_json(text)["list"] == [[["x"]]]


def test_mixed_nesting_counts_objects_and_arrays() -> None:
    text = '{"a": [' * (MAX_JSON_DEPTH // 2) + "1" + "]}" * (MAX_JSON_DEPTH // 2)
    assert isinstance(load_json(text), dict)
    with pytest.raises(JsonDepthError):
        load_json("[" + text + "]")


def _nested(depth: int) -> object:
    value: list[object] = []
    for _ in range(depth - 1):
        value = [value]
    return value
