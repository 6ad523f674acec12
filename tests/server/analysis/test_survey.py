"""A survey decides every action of a repository at once, and shares decisions between actions
and repositories: each finding must be the one `assess` gives that pair alone, reasons and
conditions included, and each example a context `decide` allows."""

from __future__ import annotations

import dataclasses

from hypothesis import event, given, settings
from hypothesis import strategies as st

from dockgate_server.analysis import ACCOUNT_ACTIONS, REPOSITORY_ACTIONS, Access, PrincipalType
from dockgate_server.analysis.assess import assess
from dockgate_server.analysis.survey import Surveyor
from dockgate_server.engine.build import build_snapshot
from dockgate_server.engine.decide import Question, decide
from dockgate_server.engine.snapshot import Snapshot
from dockgate_server.store.model import Fleet
from tests.server.analysis.sample import ALICE, BOB, CAROL, NOW, sample_snapshot
from tests.server.analysis.test_properties import (
    GHOST,
    PROPERTY_SETTINGS,
    SCALE,
    credentials,
    universe,
)
from tests.server.engine.test_snapshot_properties import fleets


def check_surveys(
    snapshot: Snapshot, principals: dict[str, PrincipalType], resources: list[str]
) -> int:
    """Survey every resource for each principal; the number of findings checked."""
    checked = 0
    for principal, kind in principals.items():
        surveyor = Surveyor(snapshot, principal, kind, now=NOW, examples=True)
        for resource in resources:
            actions = ACCOUNT_ACTIONS if resource == "*" else REPOSITORY_ACTIONS
            for found in surveyor.survey(resource, actions):
                alone = assess(
                    snapshot, principal, kind, found.action, resource, now=NOW, examples=False
                )
                assert dataclasses.replace(found, example=None) == alone, found.key
                if found.example is not None:
                    assert found.access is Access.CONDITIONAL
                    question = Question.of(principal, found.action, resource, found.example)
                    assert decide(snapshot, question, now=NOW).allowed, found
                checked += 1
    return checked


def test_every_finding_of_the_sample_is_assess_s() -> None:
    snapshot = sample_snapshot()
    resources = ["*", *sorted(snapshot.repositories)]
    principals = {ALICE: PrincipalType.USER, BOB: PrincipalType.USER, CAROL: PrincipalType.USER}
    assert check_surveys(snapshot, principals, resources) > 100


@settings(PROPERTY_SETTINGS, max_examples=int(40 * SCALE))
@given(data=st.data(), fleet=fleets())
def test_a_survey_finds_what_assess_finds_for_each_pair(data: st.DataObject, fleet: Fleet) -> None:
    if data.draw(st.booleans(), label="one document for every repository"):
        # the same document everywhere: decisions shared between repositories
        policy = next((r.policy for r in fleet.repositories if r.policy is not None), None)
        fleet = dataclasses.replace(
            fleet,
            repositories=tuple(dataclasses.replace(r, policy=policy) for r in fleet.repositories),
        )
    issued = data.draw(credentials(fleet), label="credentials")
    snapshot = build_snapshot(fleet, issued, 3)
    principals = universe(fleet, issued, snapshot)
    resources = ["*", GHOST, *(r.arn for r in fleet.repositories)]
    event(f"findings: {min(check_surveys(snapshot, principals, resources) // 100, 5) * 100}+")
