"""Deciding with the caller's context unknown: without undecided statements the answer is
`decide`'s; `least` allowed means every context is allowed, `most` denied means none is."""

from __future__ import annotations

import itertools
from typing import Any

from hypothesis import Phase, event, given, settings
from hypothesis import strategies as st

from dockgate_server.engine.authorize import PolicySet
from dockgate_server.engine.build import build_snapshot
from dockgate_server.engine.compile import CompiledStatement
from dockgate_server.engine.decide import Question, decide, prepare
from dockgate_server.engine.decision import Outcome
from dockgate_server.engine.partial import decide_partial, may_match, statement_keys
from dockgate_server.engine.request import RequestError
from dockgate_server.policy.principal import PrincipalMatch
from dockgate_server.store.model import Credentials, Fleet, Repository, User
from tests.server.engine.test_snapshot_properties import CONTEXT_VALUES, SETTINGS, calls, fleets

A = "111122223333"
ALICE = f"arn:aws:iam::{A}:user/alice"
APP = f"arn:aws:ecr:us-east-1:{A}:repository/app"
NOW = 1_700_000_000.0

# every combination of a few caller-supplied keys, each absent or one of its values
_KEYS = ("aws:SourceIp", "aws:SecureTransport", "aws:TagKeys", "aws:CurrentTime")
_CONTEXTS: list[dict[str, Any]] = [
    {key: value for key, value in zip(_KEYS, values, strict=True) if value is not None}
    for values in itertools.product(*([None, *CONTEXT_VALUES[key]] for key in _KEYS))
]


@settings(SETTINGS, max_examples=120)
@given(data=st.data(), fleet=fleets())
def test_the_extremes_bound_every_context(data: st.DataObject, fleet: Fleet) -> None:
    snapshot = build_snapshot(fleet, Credentials(), 5)
    for call in data.draw(st.lists(calls(fleet), min_size=1, max_size=8), label="calls"):
        question = Question(call.principal, call.action, call.resource)
        try:
            partial = decide_partial(snapshot, question, now=NOW)
        except RequestError:
            continue
        plain = decide(snapshot, question, now=NOW)
        if not partial.undecided:
            event("decided")
            assert partial.least == partial.most
            assert (partial.least.outcome, partial.least.reasons, partial.least.errors) == (
                plain.outcome,
                plain.reasons,
                plain.errors,
            )
            assert partial.least.revision == 5
            continue
        event(f"undecided: {partial.least.outcome} .. {partial.most.outcome}")
        outcomes = {
            decide(
                snapshot, Question.of(call.principal, call.action, call.resource, context), now=NOW
            ).outcome
            for context in _CONTEXTS
        }
        if partial.always_allowed:
            assert outcomes == {Outcome.ALLOWED}, call
        if partial.never_allowed:
            assert Outcome.ALLOWED not in outcomes, call


def _alice(document: dict[str, Any], repository_policy: dict[str, Any] | None = None) -> Any:
    user = User(A, "alice", inline={"p": document})
    fleet = Fleet((A,), (user,), repositories=(Repository(APP, {}, repository_policy),))
    return build_snapshot(fleet, Credentials(), 2)


def _allow(condition: dict[str, Any] | None = None, effect: str = "Allow") -> dict[str, Any]:
    statement: dict[str, Any] = {"Effect": effect, "Action": "ecr:*", "Resource": "*"}
    if condition is not None:
        statement["Condition"] = condition
    return statement


def test_a_condition_on_the_source_ip_is_undecided() -> None:
    snapshot = _alice(
        {
            "Version": "2012-10-17",
            "Statement": [_allow({"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}})],
        }
    )
    partial = decide_partial(snapshot, Question(ALICE, "ecr:PutImage", APP), now=NOW)
    assert partial.least.outcome is Outcome.IMPLICITLY_DENIED
    assert partial.most.outcome is Outcome.ALLOWED
    assert [(u.statement.index, u.keys) for u in partial.undecided] == [(0, ("aws:sourceip",))]


def test_a_condition_on_a_key_the_store_defines_is_decided() -> None:
    snapshot = _alice(
        {
            "Version": "2012-10-17",
            "Statement": [_allow({"StringEquals": {"aws:ResourceTag/env": "prod"}})],
        }
    )
    partial = decide_partial(snapshot, Question(ALICE, "ecr:PutImage", APP), now=NOW)
    assert partial.undecided == ()
    assert partial.least.outcome is Outcome.IMPLICITLY_DENIED


def test_a_known_false_condition_keeps_a_statement_out_whatever_the_caller_sends() -> None:
    snapshot = _alice(
        {
            "Version": "2012-10-17",
            "Statement": [
                _allow(
                    {
                        "StringEquals": {"aws:ResourceTag/env": "prod"},
                        "IpAddress": {"aws:SourceIp": "10.0.0.0/8"},
                    }
                )
            ],
        }
    )
    partial = decide_partial(snapshot, Question(ALICE, "ecr:PutImage", APP), now=NOW)
    assert partial.undecided == ()
    assert partial.never_allowed


def test_an_undecided_deny_makes_an_allow_conditional() -> None:
    snapshot = _alice(
        {
            "Version": "2012-10-17",
            "Statement": [
                _allow(),
                _allow({"Bool": {"aws:MultiFactorAuthPresent": "false"}}, effect="Deny"),
            ],
        }
    )
    partial = decide_partial(snapshot, Question(ALICE, "ecr:PutImage", APP), now=NOW)
    assert partial.least.outcome is Outcome.EXPLICITLY_DENIED
    assert partial.most.outcome is Outcome.ALLOWED
    assert not partial.always_allowed
    assert not partial.never_allowed


def test_a_resource_variable_the_caller_supplies_errs_towards_access() -> None:
    snapshot = _alice(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Action": "ecr:*",
                    "Resource": "arn:aws:ecr:*:*:repository/${aws:RequestTag/team}",
                }
            ],
        }
    )
    partial = decide_partial(snapshot, Question(ALICE, "ecr:PutImage", APP), now=NOW)
    assert partial.most.outcome is Outcome.ALLOWED
    assert partial.least.outcome is Outcome.IMPLICITLY_DENIED
    context = {"aws:RequestTag/team": "app"}
    assert decide(snapshot, Question.of(ALICE, "ecr:PutImage", APP, context), now=NOW).allowed


def test_an_unknown_principal_is_answered_as_decide_answers_it() -> None:
    snapshot = _alice({"Version": "2012-10-17", "Statement": [_allow()]})
    stranger = f"arn:aws:iam::{A}:user/stranger"
    partial = decide_partial(snapshot, Question(stranger, "ecr:PutImage", APP), now=NOW)
    plain = decide(snapshot, Question(stranger, "ecr:PutImage", APP))
    assert partial.least == partial.most == plain
    assert partial.least.revision == 2


# reported as drawn: shrinking a fleet and its calls takes minutes
@settings(SETTINGS, max_examples=60, phases=(Phase.explicit, Phase.reuse, Phase.generate))
@given(data=st.data(), fleet=fleets())
def test_a_statement_that_may_not_match_matches_in_no_context(
    data: st.DataObject, fleet: Fleet
) -> None:
    snapshot = build_snapshot(fleet, Credentials(), 5)
    for call in data.draw(st.lists(calls(fleet), min_size=1, max_size=6), label="calls"):
        question = Question(call.principal, call.action, call.resource)
        try:
            prepared = prepare(snapshot, question, None, now=NOW, indexed=False)
        except RequestError:
            continue
        if not isinstance(prepared, tuple):
            continue
        request, policies = prepared
        ruled_out = [
            statement
            for statement in _statements(policies)
            if not may_match(statement, request, issued=False)
        ]
        event(f"ruled out: {min(len(ruled_out), 5)}")
        for context in _CONTEXTS[::7]:
            asked = prepare(
                snapshot,
                Question.of(call.principal, call.action, call.resource, context),
                None,
                now=NOW,
            )
            assert isinstance(asked, tuple)
            with_context = asked[0]
            for statement in ruled_out:
                # every action: a survey asks the statement about all of them at once
                matches = (
                    statement.matches_resource(with_context)
                    and (
                        statement.principals is None
                        or statement.principal_match(with_context.caller, False)
                        is not PrincipalMatch.NONE
                        or statement.not_principal
                    )
                    and statement.matches_conditions(with_context, [])
                )
                assert not matches, (call, context, statement)


def _statements(policies: PolicySet) -> list[CompiledStatement]:
    found = [s for policy in policies.identity for s in policy.statements]
    for single in (policies.resource, policies.boundary, policies.session):
        found += single.statements if single is not None else ()
    for levels in (policies.service_control or (), policies.resource_control or ()):
        found += [s for level in levels for policy in level for s in policy.statements]
    return found


def test_the_keys_a_statement_reads_include_its_variables() -> None:
    snapshot = _alice(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Action": "ecr:*",
                    "Resource": "arn:aws:ecr:*:*:repository/${aws:PrincipalTag/team}/*",
                    "Condition": {
                        "StringEquals": {"aws:ResourceTag/owner": "${aws:username}"},
                        "IpAddress": {"aws:SourceIp": "10.0.0.0/8"},
                    },
                }
            ],
        }
    )
    (statement,) = snapshot.users[f"user/{A}/alice"].identity.all()[0].statements
    assert set(statement_keys(statement)) == {
        "aws:resourcetag/owner",
        "aws:username",
        "aws:sourceip",
        "aws:principaltag/team",
    }
