"""Building snapshots: each distinct document compiled once and shared, the collector paused and
restored, a delta sharing what it did not touch; sharing never changes a decision."""

from __future__ import annotations

import gc
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dockgate_server.engine.build import (
    PolicyMemo,
    apply_delta,
    build_snapshot,
    collection_paused,
)
from dockgate_server.engine.compile import CompiledPolicy, compile_policy
from dockgate_server.engine.snapshot import Snapshot
from dockgate_server.policy.findings import PolicyError
from dockgate_server.policy.model import PolicyKind
from dockgate_server.policy.parse import load_json, parse_policy
from dockgate_server.store.model import (
    Change,
    Credentials,
    Delta,
    Document,
    Fleet,
    Repository,
    User,
)
from tests.server.engine.test_snapshot_properties import SETTINGS, calls, fleets, shape

A = "111122223333"
PULL: dict[str, Any] = {
    "Version": "2012-10-17",
    "Statement": [
        {"Sid": "Pull", "Effect": "Allow", "Principal": "*", "Action": "ecr:BatchGetImage"},
        {
            "Effect": "Deny",
            "Principal": "*",
            "Action": "ecr:PutImage",
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        },
    ],
}


def repository(name: str, partition: str = "aws") -> str:
    return f"arn:{partition}:ecr:us-east-1:{A}:repository/{name}"


class Unshared(PolicyMemo):
    """Every document compiled on its own, under its own name: what sharing must equal."""

    def compile(self, document: Document, kind: PolicyKind, name: str) -> CompiledPolicy:
        return compile_policy(parse_policy(document, kind=kind, name=name))


# -- the memo -------------------------------------------------------------------------------------


def test_a_repeated_document_is_compiled_once_and_named_for_each_holder() -> None:
    memo = PolicyMemo()
    first = memo.compile(PULL, PolicyKind.REPOSITORY, "one")
    second = memo.compile(dict(PULL), PolicyKind.REPOSITORY, "two")
    assert [s.policy for s in second.statements] == ["two", "two"]
    assert second == compile_policy(parse_policy(PULL, kind=PolicyKind.REPOSITORY, name="two"))
    for mine, theirs in zip(first.statements, second.statements, strict=True):
        assert mine.actions is theirs.actions
        assert mine.principals is theirs.principals
        assert mine.conditions is theirs.conditions
    assert memo.compile(PULL, PolicyKind.REPOSITORY, "one") is first


def test_a_document_with_its_keys_in_another_order_is_the_same_document() -> None:
    memo = PolicyMemo()
    first = memo.compile(PULL, PolicyKind.REPOSITORY, "one")
    reordered = {key: PULL[key] for key in reversed(PULL)}
    reordered["Statement"] = [dict(reversed(s.items())) for s in PULL["Statement"]]
    again = memo.compile(reordered, PolicyKind.REPOSITORY, "one")
    assert again is first


def test_the_kind_is_part_of_the_key() -> None:
    memo = PolicyMemo()
    document = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "ecr:*", "Resource": "*"}],
    }
    identity = memo.compile(document, PolicyKind.IDENTITY, "p")
    boundary = memo.compile(document, PolicyKind.BOUNDARY, "p")
    assert identity.kind is PolicyKind.IDENTITY
    assert boundary.kind is PolicyKind.BOUNDARY
    assert boundary.statements[0].kind is PolicyKind.BOUNDARY


def test_a_document_marked_with_duplicate_keys_is_never_taken_from_the_memo() -> None:
    """`load_json` marks repeated keys for validation: such a document compiles on its own."""
    memo = PolicyMemo()
    text = (
        '{"Version": "2012-10-17", "Statement": '
        '[{"Effect": "Allow", "Principal": "*", "Action": "ecr:*"}]}'
    )
    clean = load_json(text)
    memo.compile(clean, PolicyKind.REPOSITORY, "clean")
    duplicated = load_json(text.replace('"Effect"', '"Effect": "Deny", "Effect"'))
    with pytest.raises(PolicyError, match="duplicate key `Effect`"):
        memo.compile(duplicated, PolicyKind.REPOSITORY, "duplicated")


def test_an_invalid_document_is_refused_every_time() -> None:
    memo = PolicyMemo()
    bad = {"Version": "2012-10-17", "Statement": [{"Effect": "Maybe", "Action": "ecr:*"}]}
    for _ in range(2):
        with pytest.raises(PolicyError, match="must be Allow or Deny"):
            memo.compile(bad, PolicyKind.REPOSITORY, "bad")


# -- the collector --------------------------------------------------------------------------------


@pytest.mark.parametrize("enabled", [True, False])
def test_the_collector_is_paused_and_left_as_it_was(enabled: bool) -> None:
    was = gc.isenabled()
    (gc.enable if enabled else gc.disable)()
    try:
        with pytest.raises(RuntimeError), collection_paused():
            assert not gc.isenabled()
            raise RuntimeError("a failed build")
        assert gc.isenabled() is enabled
    finally:
        (gc.enable if was else gc.disable)()


# -- snapshots ------------------------------------------------------------------------------------


def two_repositories(partition: str = "aws") -> Snapshot:
    fleet = Fleet(
        (A,),
        users=(User(A, "alice"),),
        repositories=(
            Repository(repository("app"), {}, PULL),
            Repository(repository("web", partition), {}, PULL),
        ),
    )
    return build_snapshot(fleet, Credentials(), 1)


def test_repositories_holding_one_document_share_it_under_their_own_names() -> None:
    snapshot = two_repositories()
    app, web = (snapshot.repositories[repository(n)].policy for n in ("app", "web"))
    assert app is not None and web is not None
    assert app.name == f"{repository('app')}#policy"
    assert web.name == f"{repository('web')}#policy"
    assert app.statements[0].actions is web.statements[0].actions
    decision = snapshot.authorize(f"arn:aws:iam::{A}:root", "ecr:BatchGetImage", repository("web"))
    assert [reason.policy for reason in decision.reasons] == [web.name]


def change(revision: int, repositories: dict[str, Repository | None]) -> Delta:
    found = Change(revision, repositories=frozenset(repositories))
    return Delta(found, revision, (A,), repositories=repositories)


def test_a_delta_shares_every_map_it_does_not_touch() -> None:
    snapshot = two_repositories()
    replaced = Repository(repository("app"), {"env": "prod"}, None)
    updated = apply_delta(snapshot, change(2, {repository("app"): replaced}))
    assert updated.users is snapshot.users
    assert updated.user_arns is snapshot.user_arns
    assert updated.roles is snapshot.roles
    assert updated.partitions is snapshot.partitions
    assert updated.repositories[repository("web")] is snapshot.repositories[repository("web")]
    assert updated.repositories[repository("app")].policy is None
    assert dict(updated.repositories[repository("app")].tags) == {"env": "prod"}


def test_a_delta_that_moves_an_accounts_partition_recounts_it() -> None:
    snapshot = two_repositories()
    assert dict(snapshot.partitions) == {}
    # the account's three `aws` entries (alice, app, web) are outnumbered by four in `aws-cn`
    china = {
        repository(f"cn-{n}", "aws-cn"): Repository(repository(f"cn-{n}", "aws-cn"))
        for n in range(4)
    }
    updated = apply_delta(snapshot, change(2, dict(china)))
    assert dict(updated.partitions) == {A: "aws-cn"}
    fresh = Fleet(
        (A,),
        users=(User(A, "alice"),),
        repositories=(
            Repository(repository("app"), {}, PULL),
            Repository(repository("web"), {}, PULL),
            *china.values(),
        ),
    )
    assert dict(build_snapshot(fresh, Credentials(), 2).partitions) == {A: "aws-cn"}
    removed = apply_delta(updated, change(3, dict.fromkeys(china)))
    assert dict(removed.partitions) == {}


@settings(SETTINGS, max_examples=100)
@given(data=st.data(), fleet=fleets())
def test_shared_documents_decide_as_documents_compiled_one_by_one(
    data: st.DataObject, fleet: Fleet
) -> None:
    shared = build_snapshot(fleet, Credentials(), 1, PolicyMemo())
    alone = build_snapshot(fleet, Credentials(), 1, Unshared())
    assert shape(shared) == shape(alone)
    for call in data.draw(st.lists(calls(fleet), min_size=1, max_size=15), label="calls"):
        assert call.authorize(shared) == call.authorize(alone), call
        assert call.authorize(shared, indexed=False) == call.authorize(alone), call
