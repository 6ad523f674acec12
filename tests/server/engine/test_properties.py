"""Properties of `authorize` over random policies and requests (semantics §7.4).

Policies are generated as JSON-like documents, valid by construction, and go through
`parse_policy` and `compile_policy` exactly as a simulation case's policies do.
"""

from __future__ import annotations

import copy
import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from dockgate_server.engine import (
    CompiledPolicy,
    Decision,
    Outcome,
    Phase,
    PolicySet,
    Request,
    authorize,
    build_request,
    compile_policy,
)
from dockgate_server.policy.model import Effect, PolicyKind
from dockgate_server.policy.parse import SIZE_LIMITS, parse_policy
from dockgate_server.policy.principal import CallerKind

Document = dict[str, Any]
RawContext = dict[str, str | list[str]]

OWNER = "111122223333"
OTHER = "444455556666"
ACCOUNTS = (OWNER, OTHER)

# -- requests -----------------------------------------------------------------------------------

PRINCIPAL_FORMS = (
    "arn:aws:iam::{}:user/alice",
    "arn:aws:iam::{}:user/dev/bob",
    "arn:aws:iam::{}:role/team/ci",
    "arn:aws:iam::{}:role/aws-service-role/replication.ecr.amazonaws.com/AWSServiceRoleForECRReplication",
    "arn:aws:sts::{}:assumed-role/ci/build-1",
    "arn:aws:sts::{}:federated-user/alice",
    "arn:aws:iam::{}:root",
)
SERVICE_PRINCIPALS = ("codebuild.amazonaws.com", "replication.ecr.amazonaws.com")
REQUEST_ACTIONS = (
    "ecr:BatchGetImage",
    "ecr:PutImage",
    "ecr:GetAuthorizationToken",
    "ecr:DescribeRepositories",
    "ECR:batchgetimage",
    "s3:GetObject",
)
REQUEST_RESOURCES = (
    "*",
    f"arn:aws:ecr:us-east-1:{OWNER}:repository/team-a/app",
    f"arn:aws:ecr:us-east-1:{OWNER}:repository/team-a",
    f"arn:aws:ecr:us-east-1:{OWNER}:repository/alice/tools",
    f"arn:aws:ecr:us-east-1:{OTHER}:repository/team-a/app",
    f"arn:aws:ecr:eu-west-1:{OTHER}:repository/bob/x",
    "arn:aws:s3:::bucket/key",
)

# Condition keys whose letter case differs only in spelling (lookups fold case)
CONDITION_KEYS = (
    "aws:SourceIp",
    "aws:PrincipalTag/team",
    "aws:ResourceTag/env",
    "ecr:ResourceTag/env",
    "aws:RequestTag/env",
    "aws:TagKeys",
    "aws:CalledVia",
    "aws:CurrentTime",
    "aws:EpochTime",
    "aws:MultiFactorAuthPresent",
    "aws:MultiFactorAuthAge",
    "aws:SecureTransport",
    "aws:SourceArn",
    "aws:SourceVpce",
    "aws:PrincipalArn",
    "aws:PrincipalAccount",
    "aws:ResourceAccount",
    "aws:username",
    "custom:Blob",
)
CONTEXT_VALUES = (
    "203.0.113.7",
    "10.1.2.3",
    "2001:db8::1",
    "not-an-ip",
    "true",
    "TRUE",
    "false",
    "maybe",
    "2024-06-01T12:00:00Z",
    "2024-06-01",
    "1717243200",
    "yesterday",
    "10",
    "10.5",
    "10abc",
    "team-a",
    "alice",
    "*",
    "",
    "QmluYXJ5",
    "%%%",
    OWNER,
    f"arn:aws:codebuild:us-east-1:{OWNER}:project/build",
    f"arn:aws:iam::{OWNER}:role/ci",
    "vpce-1a2b3c4d",
)
TAG_KEYS = ("team", "env", "Owner")
TAG_VALUES = ("team-a", "prod", "*", "")


def _spelled(key: str, style: int) -> str:
    return (key, key.lower(), key.upper())[style]


@st.composite
def principals(draw: st.DrawFn) -> str:
    if draw(st.integers(0, 7)) == 0:
        return draw(st.sampled_from(SERVICE_PRINCIPALS))
    form = draw(st.sampled_from(PRINCIPAL_FORMS))
    return form.format(draw(st.sampled_from(ACCOUNTS)))


context_scalars = st.one_of(
    st.sampled_from(CONTEXT_VALUES), st.text(max_size=6)
)  # unconvertible values included on purpose
context_values = st.one_of(context_scalars, st.lists(context_scalars, max_size=3))


@st.composite
def contexts(draw: st.DrawFn) -> RawContext:
    keys = draw(st.lists(st.sampled_from(CONDITION_KEYS), unique=True, max_size=6))
    return {_spelled(key, draw(st.integers(0, 2))): draw(context_values) for key in keys}


tags = st.dictionaries(st.sampled_from(TAG_KEYS), st.sampled_from(TAG_VALUES), max_size=2)

# -- policies -----------------------------------------------------------------------------------

ACTIONS = (
    "*",
    "ecr:*",
    "ecr:BatchGetImage",
    "ecr:Batch*",
    "ecr:*Image",
    "ecr:?utImage",
    "ECR:putimage",
    "ecr:Get*",
    "ecr:Describe*",
    "ecr:GetAuthorizationToken",
    "s3:*",
)
RCP_ACTIONS = tuple(action for action in ACTIONS if action != "*")
RESOURCES = (
    "*",
    "arn:aws:ecr:*:*:repository/*",
    f"arn:aws:ecr:us-east-1:{OWNER}:repository/team-a/*",
    f"arn:aws:ecr:us-east-1:{OWNER}:repository/team-a",
    f"arn:aws:ecr:us-east-1:{OTHER}:repository/team-a/app",
    "arn:aws:ecr:us-east-1:*:repository/team-?",
    f"arn:*:ecr:us-?ast-1:{OWNER}:repository/*/app",
    "arn:aws:ecr:*:*:repository/${aws:username}/*",
    "arn:aws:ecr:*:*:repository/${aws:PrincipalTag/team, 'team-a'}/*",
    "arn:aws:ecr:*:*:repository/${*}",
    "arn:aws:s3:::bucket/*",
)
AWS_PRINCIPALS = (
    "*",
    OWNER,
    OTHER,
    f"arn:aws:iam::{OWNER}:root",
    f"arn:aws:iam::{OTHER}:root",
    f"arn:aws:iam::{OWNER}:user/alice",
    f"arn:aws:iam::{OTHER}:user/dev/bob",
    f"arn:aws:iam::{OWNER}:role/ci",
    f"arn:aws:iam::{OTHER}:role/path/CI",
    f"arn:aws:sts::{OWNER}:assumed-role/ci/build-1",
    f"arn:aws:sts::{OTHER}:federated-user/alice",
    "AIDAEXAMPLEUNIQUEID1",
)
PRINCIPAL_POOLS = {
    "AWS": AWS_PRINCIPALS,
    "Service": (*SERVICE_PRINCIPALS, "lambda.amazonaws.com"),
    "Federated": ("cognito-identity.amazonaws.com", f"arn:aws:iam::{OWNER}:saml-provider/idp"),
}

STRING_VALUES: tuple[object, ...] = (
    "team-a",
    "alice",
    "Team-A",
    "a*",
    "*",
    "",
    OWNER,
    "${aws:username}",
    "${aws:PrincipalTag/team}",
    f"${{aws:PrincipalAccount, '{OWNER}'}}",
    "${?}x",
)
OPERATOR_VALUES: dict[str, tuple[object, ...]] = {
    "String": STRING_VALUES,
    "Numeric": ("10", "10.5", "-3", 3600, 0.5, "10abc", "${aws:MultiFactorAuthAge}"),
    "Date": ("2024-01-01T00:00:00Z", "2024-06-01", "2024-06-01T12:00+02:00", 1717243200, "soon"),
    "Bool": ("true", "false", True, False, "TRUE", "yes", "${aws:SecureTransport}"),
    "Binary": ("QmluYXJ5", "AAAA", "***"),
    "Ip": ("203.0.113.0/24", "10.0.0.1", "2001:DB8::/32", "::1", "300.1.1.1"),
    "Arn": (
        f"arn:aws:codebuild:us-east-1:{OWNER}:project/*",
        "arn:aws:iam::${aws:PrincipalAccount}:role/*",
        "arn:aws:ecr:*:*:repository/team-a/*",
        "arn:aws:iam::*:user/alice",
        "not-an-arn",
    ),
    "Null": ("true", "false", True, False),
}
OPERATORS: dict[str, str] = {
    **dict.fromkeys(
        (
            "StringEquals",
            "StringNotEquals",
            "StringEqualsIgnoreCase",
            "StringNotEqualsIgnoreCase",
            "StringLike",
            "StringNotLike",
        ),
        "String",
    ),
    **{
        f"{family}{test}": family
        for family in ("Numeric", "Date")
        for test in (
            "Equals",
            "NotEquals",
            "LessThan",
            "LessThanEquals",
            "GreaterThan",
            "GreaterThanEquals",
        )
    },
    "Bool": "Bool",
    "BinaryEquals": "Binary",
    "IpAddress": "Ip",
    "NotIpAddress": "Ip",
    **dict.fromkeys(("ArnEquals", "ArnLike", "ArnNotEquals", "ArnNotLike"), "Arn"),
    "Null": "Null",
}
QUALIFIERS = ("", "", "ForAllValues:", "ForAnyValue:")


def _one_or_list(pool: tuple[object, ...], *, min_size: int = 0) -> st.SearchStrategy[object]:
    return st.one_of(
        st.sampled_from(pool), st.lists(st.sampled_from(pool), min_size=min_size, max_size=2)
    )


@st.composite
def operator_names(draw: st.DrawFn) -> tuple[str, str]:
    """A spelled operator (random qualifier, IfExists and letter case) and its value family."""
    base = draw(st.sampled_from(sorted(OPERATORS)))
    family = OPERATORS[base]
    qualifier = draw(st.sampled_from(QUALIFIERS))
    # IAM: `Null` cannot take IfExists; a qualifier on it is legal (a warning)
    if_exists = family != "Null" and draw(st.booleans())
    spelled = qualifier + base + ("IfExists" if if_exists else "")
    return (spelled.lower() if draw(st.integers(0, 5)) == 0 else spelled), family


@st.composite
def conditions(draw: st.DrawFn) -> Document:
    block: Document = {}
    for _ in range(draw(st.integers(1, 2))):
        spelled, family = draw(operator_names())
        keys = draw(st.lists(st.sampled_from(CONDITION_KEYS), min_size=1, max_size=2, unique=True))
        block[spelled] = {
            _spelled(key, draw(st.integers(0, 2))): draw(_one_or_list(OPERATOR_VALUES[family]))
            for key in keys
        }
    return block


@st.composite
def principal_values(draw: st.DrawFn, kind: PolicyKind) -> object:
    if kind is PolicyKind.RCP:
        return draw(st.sampled_from(["*", {"AWS": "*"}]))
    if draw(st.integers(0, 4)) == 0:
        return "*"
    names = draw(st.lists(st.sampled_from(sorted(PRINCIPAL_POOLS)), max_size=2, unique=True))
    return {name: draw(_one_or_list(PRINCIPAL_POOLS[name])) for name in names}


@st.composite
def statements(draw: st.DrawFn, kind: PolicyKind, index: int) -> Document:
    statement: Document = {}
    repository = kind is PolicyKind.REPOSITORY
    # IAM: Sids are alphanumeric and unique, except in ECR repository policies (semantics §2.2)
    sids = [None, f"S{index}", *(["ECR Repository Policy", "Allow pull"] if repository else [])]
    sid = draw(st.sampled_from(sids))
    if sid is not None:
        statement["Sid"] = sid
    effect = "Deny" if kind is PolicyKind.RCP else draw(st.sampled_from(["Allow", "Allow", "Deny"]))
    statement["Effect"] = effect
    if kind.is_resource_based:
        element = (
            "NotPrincipal" if effect == "Deny" and draw(st.integers(0, 4)) == 0 else "Principal"
        )
        if kind is PolicyKind.RCP:
            element = "Principal"
        statement[element] = draw(principal_values(kind))
    if kind is PolicyKind.RCP:
        statement["Action"] = draw(_one_or_list(RCP_ACTIONS, min_size=1))
    else:
        element = draw(st.sampled_from(["Action", "Action", "NotAction"]))
        statement[element] = draw(_one_or_list(ACTIONS))
    resource_elements = ["Resource", "Resource", "NotResource", *([None] if repository else [])]
    resource_element = draw(st.sampled_from(resource_elements))
    if resource_element is not None:
        statement[resource_element] = draw(_one_or_list(RESOURCES, min_size=1))
    if draw(st.integers(0, 2)) == 0:
        statement["Condition"] = draw(conditions())
    return statement


ADDED_ROOM = 200
"""Characters kept free under the size limit, for the statement property (b) adds."""


@st.composite
def documents(draw: st.DrawFn, kind: PolicyKind) -> Document:
    document: Document = {}
    versions = ["2012-10-17"] if kind is PolicyKind.RCP else ["2012-10-17", "2008-10-17", None]
    version = draw(st.sampled_from(versions))
    if version is not None:
        document["Version"] = version
    body = [draw(statements(kind, index)) for index in range(draw(st.integers(1, 3)))]
    # stay under the kind's size limit by construction: drop trailing statements
    while len(body) > 1 and (
        _size({**document, "Statement": body}) > SIZE_LIMITS[kind] - ADDED_ROOM
    ):
        body.pop()
    document["Statement"] = body[0] if len(body) == 1 and draw(st.booleans()) else body
    return document


def _size(document: Document) -> int:
    return len(json.dumps(document, separators=(",", ":")))


FULL_AWS_ACCESS: Document = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
}
ECR_FOR_EVERYONE: Document = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": "*", "Action": "ecr:*"}],
}


def _or_grant(kind: PolicyKind) -> st.SearchStrategy[Document]:
    """Random documents, often enough a plain grant that Allowed is a common outcome."""
    grant = ECR_FOR_EVERYONE if kind is PolicyKind.REPOSITORY else FULL_AWS_ACCESS
    return st.one_of(documents(kind), st.just(grant))


def _optional(strategy: st.SearchStrategy[Document]) -> st.SearchStrategy[Document | None]:
    return st.one_of(st.none(), strategy)


def _levels(strategy: st.SearchStrategy[Document], most: int) -> Any:
    return st.one_of(st.none(), st.lists(st.lists(strategy, max_size=2), min_size=1, max_size=most))


# -- scenarios ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scenario:
    """One simulation case in the making: the request's parts and every policy document."""

    principal: str
    action: str
    resource: str
    context: RawContext
    principal_tags: dict[str, str]
    resource_tags: dict[str, str]
    identity: list[Document]
    repository: Document | None
    boundary: Document | None
    session: Document | None
    scps: list[list[Document]] | None
    rcps: list[list[Document]] | None

    def request(self) -> Request:
        return build_request(
            self.principal,
            self.action,
            self.resource,
            self.context,
            principal_tags=self.principal_tags,
            resource_tags=self.resource_tags,
        )

    def policies(self) -> PolicySet:
        return PolicySet(
            identity=tuple(
                _compile(document, PolicyKind.IDENTITY, f"identityPolicies[{index}]")
                for index, document in enumerate(self.identity)
            ),
            resource=_compile_optional(self.repository, PolicyKind.REPOSITORY, "resourcePolicy"),
            boundary=_compile_optional(self.boundary, PolicyKind.BOUNDARY, "permissionsBoundary"),
            session=_compile_optional(self.session, PolicyKind.SESSION, "sessionPolicy"),
            service_control=_compile_levels(self.scps, PolicyKind.SCP, "serviceControlPolicies"),
            resource_control=_compile_levels(self.rcps, PolicyKind.RCP, "resourceControlPolicies"),
        )

    def decide(self) -> Decision:
        return authorize(self.request(), self.policies())


def _compile(document: Document, kind: PolicyKind, name: str) -> CompiledPolicy:
    return compile_policy(parse_policy(document, kind=kind, name=name))


def _compile_optional(
    document: Document | None, kind: PolicyKind, name: str
) -> CompiledPolicy | None:
    return None if document is None else _compile(document, kind, name)


def _compile_levels(
    levels: list[list[Document]] | None, kind: PolicyKind, name: str
) -> tuple[tuple[CompiledPolicy, ...], ...] | None:
    if levels is None:
        return None
    return tuple(
        tuple(_compile(document, kind, f"{name}[{i}][{j}]") for j, document in enumerate(level))
        for i, level in enumerate(levels)
    )


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    return Scenario(
        principal=draw(principals()),
        action=draw(st.sampled_from(REQUEST_ACTIONS)),
        resource=draw(st.sampled_from(REQUEST_RESOURCES)),
        context=draw(contexts()),
        principal_tags=draw(tags),
        resource_tags=draw(tags),
        identity=draw(st.lists(_or_grant(PolicyKind.IDENTITY), max_size=3)),
        repository=draw(_optional(_or_grant(PolicyKind.REPOSITORY))),
        boundary=draw(_optional(_or_grant(PolicyKind.BOUNDARY))),
        session=draw(_optional(_or_grant(PolicyKind.SESSION))),
        scps=draw(_levels(_or_grant(PolicyKind.SCP), 3)),
        rcps=draw(_levels(documents(PolicyKind.RCP), 2)),
    )


# -- (a) authorize is total ----------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(scenarios())
def test_authorize_never_raises_and_answers_one_of_three_outcomes(scenario: Scenario) -> None:
    request = scenario.request()
    policies = scenario.policies()
    decision = authorize(request, policies)

    assert decision.outcome in set(Outcome)
    assert decision.allowed is (decision.outcome is Outcome.ALLOWED)
    assert decision.reasons, "every decision names what decided it"
    assert all(isinstance(error, str) and error for error in decision.errors)
    assert len(set(decision.errors)) == len(decision.errors)
    effects = {reason.effect for reason in decision.reasons}
    if decision.outcome is Outcome.EXPLICITLY_DENIED:
        assert effects == {Effect.DENY}
        assert all(reason.policy is not None for reason in decision.reasons)
    else:
        assert Effect.DENY not in effects
    if decision.outcome is Outcome.ALLOWED:
        # an allow needs a grant: an identity or repository Allow, or the root user's own
        grants = {
            reason.phase
            for reason in decision.reasons
            if reason.effect is Effect.ALLOW or reason.phase is Phase.ROOT_USER
        }
        assert grants & {Phase.IDENTITY_POLICY, Phase.RESOURCE_POLICY, Phase.ROOT_USER}
        if Phase.ROOT_USER in grants:
            assert request.caller.kind is CallerKind.ROOT
    assert authorize(request, policies) == decision, "the same question, the same answer"


# -- (b) a matching Deny wins wherever it applies ------------------------------------------------

TARGETS = ("identity", "repository", "boundary", "session", "scp", "rcp")
ADDED_SID = "AddedDeny"


def _deny_for(target: str, request: Request) -> Document:
    statement: Document = {"Sid": ADDED_SID, "Effect": "Deny", "Action": "*", "Resource": "*"}
    if target == "repository":
        statement["Principal"] = "*"
    if target == "rcp":
        # IAM: an RCP may not use the bare `*` action; a Principal of `*` is required
        statement["Principal"] = "*"
        statement["Action"] = f"{request.service}:*"
    return statement


def _with_statement(document: Document | None, statement: Document, position: int) -> Document:
    if document is None:
        return {"Version": "2012-10-17", "Statement": [statement]}
    result = copy.deepcopy(document)
    body = result["Statement"]
    body = [body] if isinstance(body, dict) else list(body)
    body.insert(position % (len(body) + 1), statement)
    result["Statement"] = body
    return result


def _add_to_list(
    documents: list[Document], slot: int, statement: Document, position: int
) -> tuple[list[Document], int]:
    """`documents` with the statement added to the one at `slot` (or to a new one at the end)."""
    result = list(documents)
    slot %= len(result) + 1
    if slot == len(result):
        result.append(_with_statement(None, statement, 0))
    else:
        result[slot] = _with_statement(result[slot], statement, position)
    return result, slot


def _add_deny(scenario: Scenario, target: str, slot: int, position: int) -> tuple[Scenario, str]:
    """The scenario with a matching Deny added to one policy of kind `target`, and its name."""
    deny = _deny_for(target, scenario.request())
    if target == "identity":
        identity, index = _add_to_list(scenario.identity, slot, deny, position)
        return replace(scenario, identity=identity), f"identityPolicies[{index}]"
    if target == "repository":
        document = _with_statement(scenario.repository, deny, position)
        return replace(scenario, repository=document), "resourcePolicy"
    if target == "boundary":
        document = _with_statement(scenario.boundary, deny, position)
        return replace(scenario, boundary=document), "permissionsBoundary"
    if target == "session":
        document = _with_statement(scenario.session, deny, position)
        return replace(scenario, session=document), "sessionPolicy"
    name = "serviceControlPolicies" if target == "scp" else "resourceControlPolicies"
    levels = [list(level) for level in (scenario.scps if target == "scp" else scenario.rcps) or []]
    if not levels:
        levels.append([])
    level = slot % len(levels)
    levels[level], index = _add_to_list(levels[level], slot // 7, deny, position)
    changed = replace(scenario, scps=levels) if target == "scp" else replace(scenario, rcps=levels)
    return changed, f"{name}[{level}][{index}]"


def _applies(target: str, request: Request) -> bool:
    """Whether a policy of kind `target` bears on the request (semantics §7.1, §7.3, D1)."""
    caller = request.caller
    if target in ("identity", "boundary", "session"):
        # root and service principals have no identity policies, boundary or session policy
        return caller.kind not in (CallerKind.ROOT, CallerKind.SERVICE)
    if target == "repository":
        return request.resource_arn is not None  # no repository is involved in `*`
    if target == "scp":
        return caller.kind is not CallerKind.SERVICE and not caller.service_linked
    return not caller.service_linked  # RCPs bind every caller but service-linked roles


@settings(max_examples=200, deadline=None)
@given(
    scenarios(),
    st.sampled_from(TARGETS),
    st.integers(0, 20),
    st.integers(0, 4),
)
def test_a_matching_deny_in_a_policy_that_applies_denies(
    scenario: Scenario, target: str, slot: int, position: int
) -> None:
    before = scenario.decide()
    changed, name = _add_deny(scenario, target, slot, position)
    after = changed.decide()

    if not _applies(target, scenario.request()):
        assert after.outcome is before.outcome
        return
    assert after.outcome is Outcome.EXPLICITLY_DENIED
    added = [reason for reason in after.reasons if reason.sid == ADDED_SID]
    assert len(added) == 1
    assert added[0].policy == name
    assert added[0].effect is Effect.DENY


# -- (c) order is irrelevant ---------------------------------------------------------------------


def _shuffled(draw: Callable[[st.SearchStrategy[Any]], Any], document: Document) -> Document:
    body = document["Statement"]
    if isinstance(body, dict):
        return document
    return {**document, "Statement": draw(st.permutations(body))}


@settings(max_examples=200, deadline=None)
@given(scenarios(), st.data())
def test_the_order_of_statements_and_identity_policies_does_not_matter(
    scenario: Scenario, data: st.DataObject
) -> None:
    draw = data.draw

    def shuffle_all(documents: list[Document]) -> list[Document]:
        return [_shuffled(draw, document) for document in draw(st.permutations(documents))]

    def shuffle_one(document: Document | None) -> Document | None:
        return None if document is None else _shuffled(draw, document)

    reordered = replace(
        scenario,
        identity=shuffle_all(scenario.identity),
        repository=shuffle_one(scenario.repository),
        boundary=shuffle_one(scenario.boundary),
        session=shuffle_one(scenario.session),
        scps=None if scenario.scps is None else [shuffle_all(level) for level in scenario.scps],
        rcps=None if scenario.rcps is None else [shuffle_all(level) for level in scenario.rcps],
    )
    before, after = scenario.decide(), reordered.decide()

    assert after.outcome is before.outcome
    assert set(after.errors) == set(before.errors)
    if before.outcome is Outcome.EXPLICITLY_DENIED:
        assert _denies(after) == _denies(before)
    if before.outcome is Outcome.IMPLICITLY_DENIED:
        assert after.reasons == before.reasons  # the failed gates, which name no statement


def _denies(decision: Decision) -> Counter[tuple[Phase, str | None]]:
    return Counter((reason.phase, reason.sid) for reason in decision.reasons)
