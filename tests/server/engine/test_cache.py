"""DecisionCache: hits on repeats, misses on a new revision or on context a decision read."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dockgate_server.engine.cache import DecisionCache
from dockgate_server.engine.decision import Decision, Outcome
from dockgate_server.engine.request import RawContext
from dockgate_server.engine.snapshot import Snapshot
from dockgate_server.service.follow import SnapshotFollower
from dockgate_server.store.model import User
from dockgate_server.store.port import FleetStore, open_store

A = "111122223333"
B = "444455556666"
ALICE = f"arn:aws:iam::{A}:user/alice"
NOBODY = f"arn:aws:iam::{A}:user/nobody"
APP = f"arn:aws:ecr:us-east-1:{A}:repository/app"
PULL = "ecr:BatchGetImage"
EARLY = "2024-05-01T00:00:00Z"
LATE = "2031-01-01T00:00:00Z"


def allow(condition: dict[str, Any] | None = None, resource: str = "*") -> dict[str, Any]:
    statement: dict[str, Any] = {"Effect": "Allow", "Action": ["ecr:*", "s3:*"]}
    statement["Resource"] = resource
    if condition is not None:
        statement["Condition"] = condition
    return {"Version": "2012-10-17", "Statement": [statement]}


@pytest.fixture
def store(tmp_path: Path) -> Iterator[FleetStore]:
    with open_store(tmp_path / "store.db") as opened:
        yield opened


def snapshot_with(store: FleetStore, document: dict[str, Any], name: str = "alice") -> Snapshot:
    store.put_user(User(A, name, inline={"access": document}))
    return SnapshotFollower(store).build()


def decide(
    cache: DecisionCache, snapshot: Snapshot, context: RawContext | None = None, **request: str
) -> Decision:
    """The cached decision, checked against the uncached path."""
    principal = request.get("principal", ALICE)
    action = request.get("action", PULL)
    resource = request.get("resource", APP)
    decision = cache.decide(snapshot, principal, action, resource, context)
    assert decision == snapshot.authorize(principal, action, resource, context)
    return decision


def test_a_repeated_request_hits(store: FleetStore) -> None:
    snapshot = snapshot_with(store, allow())
    cache = DecisionCache()
    first = decide(cache, snapshot)
    assert (cache.hits, cache.misses) == (0, 1)
    assert decide(cache, snapshot) is first
    assert (cache.hits, cache.misses) == (1, 1)
    assert first.outcome is Outcome.ALLOWED


def test_another_principal_action_or_resource_misses(store: FleetStore) -> None:
    snapshot = snapshot_with(store, allow())
    cache = DecisionCache()
    decide(cache, snapshot)
    decide(cache, snapshot, action="ecr:PutImage")
    decide(cache, snapshot, resource=f"arn:aws:ecr:us-east-1:{A}:repository/other")
    decide(cache, snapshot, principal=f"arn:aws:iam::{A}:root")
    assert (cache.hits, cache.misses) == (0, 4)


def test_a_new_revision_misses(store: FleetStore) -> None:
    before = snapshot_with(store, allow())
    cache = DecisionCache()
    assert decide(cache, before).outcome is Outcome.ALLOWED
    deny = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Deny", "Action": "*", "Resource": "*"}],
    }
    after = snapshot_with(store, deny)
    assert after.revision > before.revision
    assert decide(cache, after).outcome is Outcome.EXPLICITLY_DENIED
    assert (cache.hits, cache.misses) == (0, 2)
    # a reader still on the old snapshot keeps its own answer
    assert decide(cache, before).outcome is Outcome.ALLOWED
    assert (cache.hits, cache.misses) == (1, 2)


def test_a_decision_that_read_the_current_time_is_reused_only_at_that_time(
    store: FleetStore,
) -> None:
    snapshot = snapshot_with(
        store, allow({"DateLessThan": {"aws:CurrentTime": "2030-01-01T00:00:00Z"}})
    )
    cache = DecisionCache()
    assert decide(cache, snapshot, {"aws:CurrentTime": EARLY}).outcome is Outcome.ALLOWED
    assert (cache.hits, cache.misses) == (0, 1)
    assert decide(cache, snapshot, {"aws:CurrentTime": EARLY}).outcome is Outcome.ALLOWED
    assert (cache.hits, cache.misses) == (1, 1)
    assert decide(cache, snapshot, {"aws:CurrentTime": LATE}).outcome is Outcome.IMPLICITLY_DENIED
    assert (cache.hits, cache.misses) == (1, 2)
    # without the key the condition is false: another variant, not either of the two above
    assert decide(cache, snapshot, {}).outcome is Outcome.IMPLICITLY_DENIED
    assert (cache.hits, cache.misses) == (1, 3)
    # both earlier instants are still remembered, whatever else the context carries
    assert decide(cache, snapshot, {"aws:CurrentTime": LATE, "aws:UserAgent": "x"}).outcome is (
        Outcome.IMPLICITLY_DENIED
    )
    assert decide(cache, snapshot, {"AWS:CURRENTTIME": EARLY}).outcome is Outcome.ALLOWED
    assert (cache.hits, cache.misses) == (3, 3)


def test_a_decision_that_read_no_context_key_is_reused_across_contexts(store: FleetStore) -> None:
    snapshot = snapshot_with(store, allow())
    cache = DecisionCache()
    decide(cache, snapshot)
    for context in (
        {"aws:SourceIp": "192.0.2.1"},
        {"aws:CurrentTime": LATE},
        {"aws:CurrentTime": EARLY, "aws:SecureTransport": "false"},
        {"aws:UserAgent": "docker"},
    ):
        decide(cache, snapshot, context)
    assert (cache.hits, cache.misses) == (4, 1)


def test_only_the_keys_a_decision_read_split_the_cache(store: FleetStore) -> None:
    snapshot = snapshot_with(store, allow({"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}))
    cache = DecisionCache()
    inside = {"aws:SourceIp": "10.1.2.3"}
    assert decide(cache, snapshot, inside).outcome is Outcome.ALLOWED
    assert decide(cache, snapshot, {**inside, "aws:UserAgent": "docker"}).outcome is Outcome.ALLOWED
    assert (cache.hits, cache.misses) == (1, 1)
    outside = {"aws:SourceIp": "192.0.2.1", "aws:UserAgent": "docker"}
    assert decide(cache, snapshot, outside).outcome is Outcome.IMPLICITLY_DENIED
    assert (cache.hits, cache.misses) == (1, 2)


def test_a_decision_on_a_variable_in_the_resource_reads_its_key(store: FleetStore) -> None:
    pattern = "arn:aws:ecr:*:*:repository/${aws:RequestedRegion}"
    snapshot = snapshot_with(store, allow(resource=pattern))
    cache = DecisionCache()
    team = f"arn:aws:ecr:us-east-1:{A}:repository/us-east-1"
    assert decide(cache, snapshot, resource=team).outcome is Outcome.IMPLICITLY_DENIED
    given = {"aws:RequestedRegion": "us-east-1"}
    assert decide(cache, snapshot, given, resource=team).outcome is Outcome.ALLOWED
    assert (cache.hits, cache.misses) == (0, 2)


def test_the_cache_stays_within_maxsize(store: FleetStore) -> None:
    snapshot = snapshot_with(store, allow())
    cache = DecisionCache(maxsize=4)
    resources = [f"arn:aws:ecr:us-east-1:{A}:repository/app-{n}" for n in range(20)]
    for resource in resources:
        decide(cache, snapshot, resource=resource)
        assert len(cache) <= 4
    assert len(cache) == 4
    decide(cache, snapshot, resource=resources[-1])
    assert cache.hits == 1
    decide(cache, snapshot, resource=resources[0])  # evicted long ago
    assert (cache.hits, cache.misses) == (1, 21)


def test_many_contexts_for_one_request_take_one_entry(store: FleetStore) -> None:
    snapshot = snapshot_with(
        store, allow({"DateLessThan": {"aws:CurrentTime": "2030-01-01T00:00:00Z"}})
    )
    cache = DecisionCache(maxsize=2)
    for year in range(2020, 2040):
        outcome = decide(cache, snapshot, {"aws:CurrentTime": f"{year}-01-01T00:00:00Z"}).outcome
        assert outcome is (Outcome.ALLOWED if year < 2030 else Outcome.IMPLICITLY_DENIED)
    assert len(cache) == 1
    assert cache.misses == 20


def test_unknown_principal_decisions_are_cached_per_revision(store: FleetStore) -> None:
    before = snapshot_with(store, allow())
    cache = DecisionCache()
    first = decide(cache, before, principal=NOBODY)
    assert first.outcome is Outcome.IMPLICITLY_DENIED
    assert decide(cache, before, {"aws:SourceIp": "10.0.0.1"}, principal=NOBODY) is first
    assert (cache.hits, cache.misses) == (1, 1)
    after = snapshot_with(store, allow(), name="nobody")
    assert decide(cache, after, principal=NOBODY).outcome is Outcome.ALLOWED
    assert (cache.hits, cache.misses) == (1, 2)


def test_a_malformed_request_is_refused_by_the_cache_too(store: FleetStore) -> None:
    snapshot = snapshot_with(store, allow())
    cache = DecisionCache()
    with pytest.raises(ValueError, match="context key"):
        cache.decide(snapshot, ALICE, PULL, APP, {"aws:SourceIp": "1.2.3.4", "AWS:SOURCEIP": "x"})
    with pytest.raises(ValueError, match="principal"):
        cache.decide(snapshot, "not a principal", PULL, APP)


def test_a_resource_account_given_in_the_context_is_ignored_against_the_store(
    store: FleetStore,
) -> None:
    snapshot = snapshot_with(store, allow())
    cache = DecisionCache()
    bucket = "arn:aws:s3:::bucket/key"
    same_account = cache.decide(snapshot, ALICE, "s3:GetObject", bucket)
    assert same_account.outcome is Outcome.ALLOWED
    assert same_account.errors == ()
    context = {"aws:ResourceAccount": B}
    uncached = snapshot.authorize(ALICE, "s3:GetObject", bucket, context)
    assert uncached.outcome is Outcome.ALLOWED  # the caller cannot move the bucket's account
    assert uncached.errors == (
        "context key `aws:resourceaccount`: defined by the store, the caller's value is ignored",
    )
    assert cache.decide(snapshot, ALICE, "s3:GetObject", bucket, context) == uncached
    assert cache.decide(snapshot, ALICE, "s3:GetObject", bucket) == same_account
