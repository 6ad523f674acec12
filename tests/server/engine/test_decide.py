"""The one entry point: `decide` answers as the path before it did, indexed or not, with its
revision; the context is normalized once, when the question is built."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dockgate_server.engine.build import build_snapshot
from dockgate_server.engine.decide import ContextReads, Question, decide, prepare
from dockgate_server.engine.decision import Decision, Outcome
from dockgate_server.engine.request import RequestError
from dockgate_server.engine.snapshot import Snapshot
from dockgate_server.store.model import Credentials, Fleet, User
from tests.server.engine.test_snapshot_properties import SETTINGS, calls, fleets

A = "111122223333"
ALICE = f"arn:aws:iam::{A}:user/alice"
APP = f"arn:aws:ecr:us-east-1:{A}:repository/app"
ALLOW_TAGGED = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Action": "ecr:*",
            "Resource": "*",
            "Condition": {"StringEquals": {"aws:RequestTag/team": "${aws:PrincipalTag/team}"}},
        }
    ],
}


def alice_snapshot(revision: int = 7) -> Snapshot:
    user = User(A, "alice", tags={"team": "a"}, inline={"tagged": ALLOW_TAGGED})
    return build_snapshot(Fleet((A,), (user,)), Credentials(), revision)


@settings(SETTINGS, max_examples=100)
@given(data=st.data(), fleet=fleets())
def test_decide_answers_as_the_path_before_it_indexed_or_not(
    data: st.DataObject, fleet: Fleet
) -> None:
    snapshot = build_snapshot(fleet, Credentials(), 3)
    for call in data.draw(st.lists(calls(fleet), min_size=1, max_size=15), label="calls"):
        try:
            before = call.authorize(snapshot, indexed=False)
        except RequestError:
            with pytest.raises(RequestError):
                decide(
                    snapshot, Question.of(call.principal, call.action, call.resource, call.context)
                )
            continue
        question = Question.of(call.principal, call.action, call.resource, call.context)
        indexed = decide(snapshot, question)
        scanned = decide(snapshot, question, indexed=False)
        for found in (indexed, scanned):
            assert (found.outcome, found.reasons, found.errors) == (
                before.outcome,
                before.reasons,
                before.errors,
            ), call
            assert found.revision == 3


@settings(SETTINGS, max_examples=60)
@given(data=st.data(), fleet=fleets())
def test_every_candidate_the_index_gives_covers_the_action(
    data: st.DataObject, fleet: Fleet
) -> None:
    """`decide` skips the action check for the index's candidates: they must all cover it."""
    snapshot = build_snapshot(fleet, Credentials(), 1)
    for call in data.draw(st.lists(calls(fleet), min_size=1, max_size=10), label="calls"):
        try:
            question = Question.of(call.principal, call.action, call.resource, call.context)
            prepared = prepare(snapshot, question, None)
        except RequestError:
            continue
        if isinstance(prepared, Decision):
            continue
        request, policies = prepared
        assert policies.actions_matched
        groups = [
            *policies.identity,
            *([policies.boundary] if policies.boundary else []),
            *(p for level in policies.service_control or () for p in level),
            *(p for level in policies.resource_control or () for p in level),
        ]
        for policy in groups:
            for statement in policy.statements:
                assert statement.matches_action(request), (call, statement)


def test_a_decision_names_its_revision_but_compares_by_its_answer() -> None:
    question = Question.of(ALICE, "ecr:PutImage", APP, {"aws:RequestTag/team": "a"})
    first = decide(alice_snapshot(7), question)
    second = decide(alice_snapshot(8), question)
    assert (first.outcome, first.revision, second.revision) == (Outcome.ALLOWED, 7, 8)
    assert first == second


def test_the_answers_for_unknown_callers_carry_the_revision_too() -> None:
    found = decide(
        alice_snapshot(5), Question.of(f"arn:aws:iam::{A}:user/bob", "ecr:PutImage", APP)
    )
    assert (found.outcome, found.revision) == (Outcome.IMPLICITLY_DENIED, 5)


def test_the_context_is_normalized_when_the_question_is_built() -> None:
    question = Question.of(ALICE, "ecr:PutImage", APP, {"AWS:RequestTag/Team": ["a"]})
    assert dict(question.context) == {"aws:requesttag/team": "a"}
    with pytest.raises(RequestError) as raised:
        Question.of(ALICE, "ecr:PutImage", APP, {"aws:SourceIp": 3})  # type: ignore[dict-item]
    assert raised.value.field == "context"


def test_reads_collects_every_context_key_the_decision_looked_up() -> None:
    read: set[str] = set()
    question = Question.of(ALICE, "ecr:PutImage", APP, {"aws:UserAgent": "docker"})
    decide(alice_snapshot(), question, reads=read)
    assert "aws:requesttag/team" in read and "aws:principaltag/team" in read
    assert "aws:useragent" not in read


def test_context_reads_count_iteration_as_reading_everything() -> None:
    reads = ContextReads({"a": "1", "b": "2"})
    assert reads.get("c") is None and sorted(reads) == ["a", "b"]
    assert reads.read == {"a", "b", "c"}
