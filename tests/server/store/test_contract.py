"""The store port's contract, run over every backend: revisions, atomic writes, the change feed,
batched deltas, credentials and typed errors."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest

from dockgate_server.store import bundle_to_fleet
from dockgate_server.store.model import (
    Change,
    Fleet,
    Repository,
    Session,
    SigningKey,
    User,
    owner_key,
)
from dockgate_server.store.port import FleetStore, NotFound, Refused, StoreError, open_store
from tests.server.store.conftest import StoreFactory
from tests.server.store.fleet_bundles import (
    APP,
    MAIN,
    REGISTRY_READ,
    REPOSITORY_POLICY,
    realistic_bundle,
)

NEW = f"arn:aws:ecr:us-east-1:{MAIN}:repository/team-c/new"
ROLE_ARN = f"arn:aws:sts::{MAIN}:assumed-role/deployer/ci"


def _fleet() -> Fleet:
    return bundle_to_fleet(realistic_bundle())


def _session(arn: str = ROLE_ARN, *, expires_at: float = 2_000.0, sid: str = "s-1") -> Session:
    return Session(
        arn,
        sid,
        f"role/{MAIN}/deployer",
        f"arn:aws:iam::{MAIN}:user/alice",
        1_000.0,
        expires_at,
        None,
        {"team": "a"},
    )


# -- revisions --------------------------------------------------------------------------------


def test_an_empty_store_is_at_revision_zero_and_each_write_adds_one(store: FleetStore) -> None:
    assert store.revision == 0
    first = store.import_fleet(_fleet())
    second = store.put_repository(Repository(NEW, {"team": "c"}))
    third = store.delete_repository(NEW)
    assert [first.revision, second.revision, third.revision] == [1, 2, 3]
    assert store.revision == 3


def test_a_refused_write_leaves_the_revision_and_stores_nothing(store: FleetStore) -> None:
    store.import_fleet(_fleet())
    before = store.load_fleet()
    with pytest.raises(Refused, match=r"group `nobody` does not exist"):
        store.put_user(User(MAIN, "mallory", groups=("nobody",)))
    with pytest.raises(Refused, match=r"invalid repository name"):
        store.put_repository(Repository(f"arn:aws:ecr:us-east-1:{MAIN}:repository/Bad Name"))
    assert store.revision == 1
    assert store.load_fleet() == before


def test_a_group_listed_twice_or_a_policy_attached_twice_is_refused(store: FleetStore) -> None:
    store.import_fleet(_fleet())
    group = store.load_fleet().groups[0]
    with pytest.raises(Refused, match=rf"group `{group.name}` is listed twice"):
        store.put_user(User(group.account, "twice", groups=(group.name, group.name)))
    with pytest.raises(Refused, match=r"attached twice"):
        store.put_user(User(MAIN, "twice", attached=(REGISTRY_READ, REGISTRY_READ)))
    assert store.revision == 1


def test_an_import_with_one_bad_entity_stores_none_of_it(store: FleetStore) -> None:
    good = _fleet()
    bad = Fleet(
        good.accounts,
        (*good.users, User(MAIN, "mallory", attached=(f"arn:aws:iam::{MAIN}:policy/missing",))),
        good.groups,
        good.roles,
        good.policies,
        good.repositories,
        good.organization,
    )
    with pytest.raises(Refused, match=r"policy/missing"):
        store.import_fleet(bad)
    assert store.revision == 0
    assert store.load_fleet() == Fleet()
    assert store.import_fleet(good).revision == 1


def test_an_import_round_trips_through_load_fleet(store_factory: StoreFactory) -> None:
    writer, reader = store_factory(), store_factory()
    writer.import_fleet(_fleet())
    loaded = reader.load_fleet()
    again = store_factory()
    again.import_fleet(loaded, replace=True)
    assert reader.load_fleet() == loaded
    assert reader.revision == 2


def test_reads_inside_reading_stay_at_one_revision(store_factory: StoreFactory) -> None:
    reader, writer = store_factory(), store_factory()
    writer.import_fleet(_fleet())
    with reader.reading() as seen:
        writer.put_repository(Repository(NEW))
        assert seen == 1
        assert reader.revision == 1
        assert reader.load_repository(NEW) is None
    assert reader.revision == 2
    assert reader.load_repository(NEW) == Repository(NEW)


# -- typed errors -----------------------------------------------------------------------------


def test_acting_on_what_is_not_there_is_not_found(store: FleetStore) -> None:
    writes: list[Callable[[], Change]] = [
        lambda: store.delete_user(MAIN, "nobody"),
        lambda: store.delete_role(MAIN, "nobody"),
        lambda: store.delete_group(MAIN, "nobody"),
        lambda: store.delete_repository(NEW),
        lambda: store.set_repository_policy(NEW, REPOSITORY_POLICY),
        lambda: store.revoke_session(ROLE_ARN, 1_500.0),
    ]
    for write in writes:
        with pytest.raises(NotFound, match=r"does not exist"):
            write()
    assert store.revision == 0


def test_deleting_what_others_still_use_is_refused(store: FleetStore) -> None:
    store.import_fleet(_fleet())
    group = next(
        g
        for g in store.load_fleet().groups
        if any(g.name in u.groups for u in store.load_fleet().users)
    )
    with pytest.raises(Refused, match=r"still has members"):
        store.delete_group(group.account, group.name)
    with pytest.raises(Refused, match=r"still attached"):
        store.delete_policy(REGISTRY_READ)
    assert store.revision == 1


def test_every_typed_error_is_a_store_error_and_a_value_error() -> None:
    for kind in (NotFound, Refused):
        assert issubclass(kind, StoreError)
        assert issubclass(kind, ValueError)


# -- the change feed --------------------------------------------------------------------------


def test_changes_since_lists_what_each_later_write_touched(store_factory: StoreFactory) -> None:
    writer, follower = store_factory(), store_factory()
    writer.import_fleet(_fleet())
    user = writer.load_fleet().users[0]
    made = [
        writer.put_repository(Repository(NEW)),
        writer.put_user(user),
        writer.put_session(_session()),
        writer.add_signing_key(SigningKey("k1", b"secret-1", 1_000.0)),
    ]
    changes = follower.changes_since(1)
    assert changes == made
    assert [c.revision for c in changes] == [2, 3, 4, 5]
    assert changes[0].repositories == {NEW}
    assert changes[1].principals >= {user.key}
    assert changes[2].sessions == {ROLE_ARN}
    assert changes[3].credentials
    assert follower.changes_since(5) == []
    assert follower.changes_since(0) is not None
    assert follower.changes_since(0)[0].everything  # type: ignore[index]


def test_changes_since_a_revision_the_log_does_not_hold_is_none(store: FleetStore) -> None:
    store.import_fleet(_fleet())
    store.put_repository(Repository(NEW))
    # revision -1 was never written: the log cannot say what came after it
    assert store.changes_since(-1) is None


def test_wait_for_change_wakes_on_a_write_from_another_connection(
    store_factory: StoreFactory, store_url: str
) -> None:
    waiter = store_factory()
    started = threading.Event()

    def write() -> None:
        started.wait()
        # a store object belongs to one thread: the writer opens its own
        with open_store(store_url) as writer:
            writer.put_repository(Repository(NEW))

    thread = threading.Thread(target=write)
    thread.start()
    started.set()
    try:
        seen = waiter.wait_for_change(0, 30.0)
    finally:
        thread.join()
    assert seen == 1


def test_wait_for_change_without_a_write_returns_the_revision_it_has(store: FleetStore) -> None:
    store.put_repository(Repository(NEW))
    assert store.wait_for_change(1, 0.05) == 1
    assert store.wait_for_change(0, 0.05) == 1


# -- deltas -----------------------------------------------------------------------------------


def test_a_delta_says_what_a_fresh_load_says_about_every_touched_entity(
    store_factory: StoreFactory,
) -> None:
    writer, reader = store_factory(), store_factory()
    writer.import_fleet(_fleet())
    fleet = writer.load_fleet()
    user, role = fleet.users[0], fleet.roles[0]
    changes: list[Change] = [
        writer.put_user(
            User(
                user.account,
                user.name,
                user.path,
                user.user_id,
                {"new": "tag"},
                user.boundary,
                user.groups,
                user.inline,
                user.attached,
            )
        ),
        writer.delete_role(role.account, role.name),
        writer.put_repository(Repository(NEW, {"team": "c"}, REPOSITORY_POLICY)),
        writer.delete_repository(APP),
        writer.put_session(_session()),
        writer.add_signing_key(SigningKey("k1", b"secret-1", 1_000.0)),
        writer.revoke_token("token-1", 3_000.0),
    ]
    change = Change.merge(changes)
    delta = reader.load_delta(change)
    fresh = reader.load_fleet()
    assert delta.revision == reader.revision == change.revision
    assert delta.change == change
    assert delta.accounts == fresh.accounts
    users = {u.key: u for u in fresh.users}
    roles = {r.key: r for r in fresh.roles}
    assert dict(delta.users) == {
        key: users.get(key) for key in change.principals if key.startswith("user/")
    }
    assert dict(delta.roles) == {
        key: roles.get(key) for key in change.principals if key.startswith("role/")
    }
    assert delta.roles[role.key] is None
    assert delta.users[user.key] is not None and delta.users[user.key].tags == {"new": "tag"}  # type: ignore[union-attr]
    groups = {(g.account, g.name): g for g in fresh.groups}
    assert set(delta.groups) == {(user.account, name) for name in user.groups}
    assert all(delta.groups[key] == groups[key] for key in delta.groups)
    policies = {p.arn: p for p in fresh.policies}
    needed = set(user.attached) | {user.boundary} - {None}
    for group in delta.groups.values():
        needed |= set(group.attached)
    assert set(delta.policies) == needed
    assert all(delta.policies[arn] == policies[arn] for arn in delta.policies)
    repositories = {r.arn: r for r in fresh.repositories}
    assert dict(delta.repositories) == {NEW: repositories[NEW], APP: None}
    assert dict(delta.sessions) == {ROLE_ARN: reader.load_session(ROLE_ARN)}
    assert delta.signing_keys == tuple(reader.signing_keys())
    assert delta.revoked_tokens == frozenset({"token-1"})


def test_a_delta_leaves_unread_what_the_change_did_not_touch(store: FleetStore) -> None:
    store.import_fleet(_fleet())
    delta = store.load_delta(store.put_repository(Repository(NEW)))
    assert delta.organization is None
    assert delta.signing_keys is None and delta.revoked_tokens is None
    assert not delta.users and not delta.roles and not delta.sessions
    assert dict(delta.repositories) == {NEW: Repository(NEW)}


def test_a_change_to_the_organization_reads_it(store: FleetStore) -> None:
    fleet = _fleet()
    store.import_fleet(fleet)
    delta = store.load_delta(store.set_organization(fleet.organization))
    assert delta.organization == fleet.organization


# -- credentials ------------------------------------------------------------------------------


def test_sessions_are_stored_replaced_revoked_and_listed(store: FleetStore) -> None:
    other = f"arn:aws:sts::{MAIN}:assumed-role/deployer/other"
    store.put_session(_session())
    store.put_session(_session(other, sid="s-2"))
    store.put_session(_session(sid="s-3"))  # the same ARN: replaces the first
    assert store.load_session(ROLE_ARN) == _session(sid="s-3")
    change = store.revoke_session(other, 1_500.0)
    assert change.sessions == {other} and change.revision == 4
    revoked = store.load_session(other)
    assert revoked is not None and revoked.ended == "revoked" and revoked.ended_at == 1_500.0
    assert [s.arn for s in store.load_sessions(live_only=True)] == [ROLE_ARN]
    assert [s.arn for s in store.load_sessions()] == sorted([ROLE_ARN, other])
    with pytest.raises(NotFound):
        store.revoke_session(other, 1_600.0)
    assert store.revision == 4


def test_a_new_signing_key_retires_the_one_before(store: FleetStore) -> None:
    store.add_signing_key(SigningKey("k1", b"secret-1", 1_000.0))
    store.add_signing_key(SigningKey("k2", b"secret-2", 2_000.0))
    assert store.signing_keys() == [
        SigningKey("k1", b"secret-1", 1_000.0, 2_000.0),
        SigningKey("k2", b"secret-2", 2_000.0),
    ]
    store.revoke_token("t-1", 5_000.0)
    store.revoke_token("t-2", 9_000.0)
    assert store.revoked_tokens() == {"t-1", "t-2"}
    credentials = store.load_credentials()
    assert credentials.signing_keys == tuple(store.signing_keys())
    assert credentials.revoked_tokens == {"t-1", "t-2"}
    assert credentials.sessions == ()


def test_the_sweep_ends_expired_sessions_and_drops_what_has_expired(store: FleetStore) -> None:
    assert store.sweep(1_000.0, 100.0) is None
    store.put_session(_session(expires_at=2_000.0))
    store.add_signing_key(SigningKey("k1", b"secret-1", 1_000.0))
    store.add_signing_key(SigningKey("k2", b"secret-2", 1_500.0))
    store.revoke_token("t-1", 1_800.0)
    assert store.sweep(1_600.0, 1_000.0) is None  # nothing has expired yet: no revision
    revision = store.revision
    change = store.sweep(2_600.0, 1_000.0)
    assert change is not None and change.revision == revision + 1
    assert change.sessions == {ROLE_ARN} and change.credentials
    ended = store.load_session(ROLE_ARN)
    assert ended is not None and ended.ended == "expired" and ended.policy is None
    assert store.revoked_tokens() == frozenset()
    assert [key.key_id for key in store.signing_keys()] == ["k2"]


def test_owner_keys_fold_role_names_as_iam_does() -> None:
    assert owner_key("role", MAIN, "Deployer") == owner_key("role", MAIN, "deployer")
