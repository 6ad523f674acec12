"""The SQLite store: a revision per write, a Change of what it touched, inert refusals."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from dockgate_server.policy.findings import PolicyError
from dockgate_server.store import (
    Change,
    Fleet,
    FleetStore,
    Group,
    ManagedPolicy,
    Organization,
    OrgNode,
    Repository,
    Role,
    StoreError,
    User,
    bundle_to_fleet,
    open_store,
)
from dockgate_server.store.schema import SCHEMA_VERSION
from tests.server.store.fleet_bundles import (
    APP,
    AWS_READ_ONLY,
    ECR_ONLY,
    LOGIN,
    MAIN,
    NO_DELETES,
    OU_ID,
    PARTNER,
    REGISTRY_READ,
    REPOSITORY_POLICY,
    TOOLS,
    TRUST_ACCOUNT,
    document,
    realistic_bundle,
    statement,
)

BAD_EFFECT = document(statement("Allowed", "ecr:BatchGetImage"))
"""an invalid document: `Effect` must be `Allow` or `Deny`"""
NEW_REPOSITORY = f"arn:aws:ecr:us-west-2:{MAIN}:repository/team-c/api"
SCRATCH = f"arn:aws:iam::{MAIN}:policy/scratch"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[FleetStore]:
    """A store holding the realistic fleet, at revision 1."""
    with open_store(tmp_path / "store.sqlite3") as opened:
        opened.import_fleet(bundle_to_fleet(realistic_bundle()))
        yield opened


@pytest.fixture
def empty(tmp_path: Path) -> Iterator[FleetStore]:
    with open_store(tmp_path / "empty.sqlite3") as opened:
        yield opened


# -- schema, journal, reopening ------------------------------------------------------------------


def test_a_new_store_is_empty_at_revision_zero(empty: FleetStore) -> None:
    assert empty.revision == 0
    assert empty.load_fleet() == Fleet()
    assert empty.changes_since(0) == []


def test_the_schema_version_is_recorded_and_the_journal_is_wal(empty: FleetStore) -> None:
    with sqlite3.connect(empty.describe()) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    db.close()


def test_reopening_keeps_the_data_and_the_revision(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "dir" / "store.sqlite3"
    with open_store(path) as first:
        first.import_fleet(bundle_to_fleet(realistic_bundle()))
        first.put_repository(Repository(NEW_REPOSITORY, {"team": "c"}))
        fleet, revision = first.load_fleet(), first.revision
    assert revision == 2
    with open_store(path) as again:
        assert again.revision == revision
        assert again.load_fleet() == fleet
        assert [change.revision for change in again.changes_since(0) or []] == [1, 2]
        with sqlite3.connect(path) as db:
            assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        db.close()


def test_a_store_from_a_newer_dockgate_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "store.sqlite3"
    open_store(path).close()
    with sqlite3.connect(path) as db:
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.close()
    with pytest.raises(StoreError, match=r"newer than this dockgate") as raised:
        open_store(path)
    assert str(path) in str(raised.value)


def test_a_reader_keeps_its_revision_while_another_connection_writes(store: FleetStore) -> None:
    with open_store(store.describe()) as writer, store.reading() as seen:
        # WAL: the writer is not blocked by the open read, and the reader sees no half update
        change = writer.put_repository(Repository(NEW_REPOSITORY))
        assert seen == 1
        assert store.revision == 1
        assert store.load_repository(NEW_REPOSITORY) is None
    assert change.revision == 2
    assert store.revision == 2
    assert store.load_repository(NEW_REPOSITORY) == Repository(NEW_REPOSITORY)


# -- writes: one revision each, and a Change naming what they touched ---------------------------


@dataclass(frozen=True)
class Write:
    name: str
    run: Callable[[FleetStore], Change]
    principals: frozenset[str] = frozenset()
    repositories: frozenset[str] = frozenset()
    organization: bool = False
    everything: bool = False


def _user(name: str) -> str:
    return f"user/{MAIN}/{name}"


ALICE, BOB = _user("alice"), _user("bob")
DEPLOY, CI_BUILDER = f"role/{MAIN}/deploy", f"role/{MAIN}/ci-builder"

WRITES = [
    Write(
        "put a new user in a stored group",
        lambda s: s.put_user(User(MAIN, "carol", groups=("readers",), tags={"team": "c"})),
        principals=frozenset({_user("carol")}),
    ),
    Write(
        "put an existing user",
        lambda s: s.put_user(User(MAIN, "bob", "/ci/", attached=(REGISTRY_READ,))),
        principals=frozenset({BOB}),
    ),
    Write(
        "put a group touches its members",
        lambda s: s.put_group(Group(MAIN, "readers", inline={"login": LOGIN})),
        principals=frozenset({ALICE, BOB}),
    ),
    Write(
        "put a new group touches nobody",
        lambda s: s.put_group(Group(MAIN, "auditors", attached=(AWS_READ_ONLY,))),
    ),
    Write(
        "put a role under another letter case",
        lambda s: s.put_role(Role(MAIN, "DEPLOY", trust_policy=TRUST_ACCOUNT)),
        principals=frozenset({DEPLOY}),
    ),
    Write(
        "put a policy touches whoever it is attached to, directly or through a group",
        lambda s: s.put_policy(
            ManagedPolicy(
                REGISTRY_READ, "registry-read", "/", "v3", {"v3": document(statement("Deny", "*"))}
            )
        ),
        principals=frozenset({ALICE, BOB, DEPLOY}),
    ),
    Write(
        "put a policy touches whoever it bounds",
        lambda s: s.put_policy(
            ManagedPolicy(
                ECR_ONLY,
                "ecr-only",
                "/boundaries/",
                "v1",
                {"v1": document(statement("Allow", "*"))},
            )
        ),
        principals=frozenset({ALICE, CI_BUILDER}),
    ),
    Write(
        "put a new policy touches nobody",
        lambda s: s.put_policy(ManagedPolicy(SCRATCH, "scratch", "/", "v1", {"v1": LOGIN})),
    ),
    Write(
        "put a repository",
        lambda s: s.put_repository(Repository(NEW_REPOSITORY, {"team": "c"})),
        repositories=frozenset({NEW_REPOSITORY}),
    ),
    Write(
        "remove a repository policy",
        lambda s: s.set_repository_policy(APP, None),
        repositories=frozenset({APP}),
    ),
    Write(
        "set the organization",
        lambda s: s.set_organization(Organization("o-zzzzzzzzzz", OrgNode("r-zz", (NO_DELETES,)))),
        organization=True,
    ),
    Write("leave the organization", lambda s: s.set_organization(None), organization=True),
    Write("delete a user", lambda s: s.delete_user(MAIN, "bob"), principals=frozenset({BOB})),
    Write(
        "delete a role under another letter case",
        lambda s: s.delete_role(MAIN, "dEpLoY"),
        principals=frozenset({DEPLOY}),
    ),
    Write(
        "delete a repository",
        lambda s: s.delete_repository(TOOLS),
        repositories=frozenset({TOOLS}),
    ),
    Write(
        "import a fleet",
        lambda s: s.import_fleet(Fleet(users=(User(PARTNER, "dave"),))),
        everything=True,
    ),
]


@pytest.mark.parametrize("write", WRITES, ids=[w.name for w in WRITES])
def test_each_write_raises_the_revision_by_one_and_names_what_it_touched(
    store: FleetStore, write: Write
) -> None:
    before = store.revision
    change = write.run(store)
    assert store.revision == before + 1
    assert change == Change(
        before + 1, write.principals, write.repositories, write.organization, write.everything
    )
    assert store.changes_since(before) == [change]


def test_the_change_log_lists_every_write_in_order(empty: FleetStore) -> None:
    changes = [
        empty.import_fleet(bundle_to_fleet(realistic_bundle())),
        empty.put_user(User(MAIN, "carol")),
        empty.put_repository(Repository(NEW_REPOSITORY)),
        empty.set_organization(None),
    ]
    assert [change.revision for change in changes] == [1, 2, 3, 4]
    assert empty.changes_since(0) == changes
    assert empty.changes_since(2) == changes[2:]
    assert empty.changes_since(4) == []
    assert Change.merge(changes[1:]) == Change(
        4, frozenset({_user("carol")}), frozenset({NEW_REPOSITORY}), True, False
    )


def test_deleting_an_empty_group_and_an_unused_policy(store: FleetStore) -> None:
    store.put_group(Group(MAIN, "auditors", attached=(REGISTRY_READ,)))
    store.put_policy(ManagedPolicy(SCRATCH, "scratch", "/", "v1", {"v1": LOGIN}))
    before = store.revision
    assert store.delete_group(MAIN, "auditors") == Change(before + 1)
    assert store.delete_policy(SCRATCH) == Change(before + 2)
    assert store.load_group(MAIN, "auditors") is None
    assert store.load_policy(SCRATCH) is None
    assert store.revision == before + 2


# -- reads return what was written -------------------------------------------------------------


def test_reads_return_what_was_written(empty: FleetStore) -> None:
    policy = ManagedPolicy(
        REGISTRY_READ,
        "registry-read",
        "/",
        "v1",
        {"v1": LOGIN, "v2": document(statement("Allow", "ecr:*"))},
        "ANPAREAD",
    )
    bound = ManagedPolicy(ECR_ONLY, "ecr-only", "/boundaries/", "v1", {"v1": LOGIN})
    group = Group(MAIN, "readers", "/teams/", "AGPA1", {"login": LOGIN}, (REGISTRY_READ,))
    user = User(
        MAIN,
        "alice",
        "/people/",
        "AIDA1",
        {"team": "a", "CostCenter": "12"},
        ECR_ONLY,
        ("readers",),
        {"own": document(statement("Deny", "ecr:DeleteRepository"))},
        (REGISTRY_READ,),
    )
    role = Role(
        MAIN,
        "Deploy",
        "/svc/",
        "AROA1",
        TRUST_ACCOUNT,
        {"env": "prod"},
        ECR_ONLY,
        7200,
        {"inline": LOGIN},
        (REGISTRY_READ,),
    )
    repository = Repository(APP, {"env": "prod"}, REPOSITORY_POLICY)
    organization = Organization(
        "o-a1b2c3d4e5",
        OrgNode("r-1", (NO_DELETES,), (), (), (OrgNode(OU_ID, (), (), (MAIN,)),)),
    )
    changes = [
        empty.put_policy(policy),
        empty.put_policy(bound),
        empty.put_group(group),
        empty.put_user(user),
        empty.put_role(role),
        empty.put_repository(repository),
        empty.set_organization(organization),
    ]
    assert [change.revision for change in changes] == list(range(1, 8))
    assert empty.revision == 7
    assert empty.load_policy(REGISTRY_READ) == policy
    assert empty.load_group(MAIN, "readers") == group
    assert empty.load_user(MAIN, "alice") == user
    assert user.arn == f"arn:aws:iam::{MAIN}:user/people/alice"
    # role names are unique ignoring case
    assert empty.load_role(MAIN, "deploy") == role
    assert empty.load_role(MAIN, "DEPLOY") == role
    assert empty.load_repository(APP) == repository
    assert empty.load_organization() == organization
    assert empty.accounts() == (MAIN,)
    assert empty.load_fleet() == Fleet(
        (MAIN,), (user,), (group,), (role,), (bound, policy), (repository,), organization
    )


def test_a_role_put_under_another_letter_case_replaces_the_stored_one(store: FleetStore) -> None:
    store.put_role(Role(MAIN, "DEPLOY", max_session_duration=3600))
    names = [role.name for role in store.load_fleet().roles if role.account == MAIN]
    assert sorted(names) == ["DEPLOY", "ci-builder"]


def test_deletes_remove_what_they_name(store: FleetStore) -> None:
    store.delete_user(MAIN, "bob")
    store.delete_role(MAIN, "Deploy")
    store.delete_repository(TOOLS)
    assert store.load_user(MAIN, "bob") is None
    assert store.load_role(MAIN, "Deploy") is None
    assert store.load_repository(TOOLS) is None
    # bob was a member of `readers`: the group is now deletable once alice leaves it too
    store.put_user(User(MAIN, "alice", groups=("pushers",)))
    store.delete_group(MAIN, "readers")
    assert store.load_group(MAIN, "readers") is None


# -- refused writes change nothing -------------------------------------------------------------


@dataclass(frozen=True)
class Refusal:
    name: str
    run: Callable[[FleetStore], object]
    error: type[Exception]
    fragments: tuple[str, ...]


REFUSALS = [
    Refusal(
        "user inline policy with a bad Effect",
        lambda s: s.put_user(User(MAIN, "carol", inline={"mine": BAD_EFFECT})),
        PolicyError,
        ("carol", "mine", "/Statement/0/Effect", "Allowed"),
    ),
    Refusal(
        "group inline policy with a bad Effect",
        lambda s: s.put_group(Group(MAIN, "readers", inline={"login": BAD_EFFECT})),
        PolicyError,
        ("readers", "login", "/Statement/0/Effect"),
    ),
    Refusal(
        "role trust policy with a bad Effect",
        lambda s: s.put_role(Role(MAIN, "deploy", trust_policy=BAD_EFFECT)),
        PolicyError,
        ("deploy", "trust policy", "/Statement/0/Effect"),
    ),
    Refusal(
        "managed policy with a bad non-default version",
        lambda s: s.put_policy(
            ManagedPolicy(
                REGISTRY_READ, "registry-read", "/", "v1", {"v1": LOGIN, "v2": BAD_EFFECT}
            )
        ),
        PolicyError,
        (REGISTRY_READ, "v2", "/Statement/0/Effect"),
    ),
    Refusal(
        "managed policy whose default version is missing",
        lambda s: s.put_policy(ManagedPolicy(SCRATCH, "scratch", "/", "v9", {"v1": LOGIN})),
        StoreError,
        (SCRATCH, "`v9`"),
    ),
    Refusal(
        "repository policy with a bad Effect",
        lambda s: s.set_repository_policy(
            APP, {**BAD_EFFECT, "Statement": [{**BAD_EFFECT["Statement"][0], "Principal": "*"}]}
        ),
        PolicyError,
        (APP, "/Statement/0/Effect"),
    ),
    Refusal(
        "SCP with a bad Effect",
        lambda s: s.set_organization(
            Organization(
                "o-a1b2c3d4e5", OrgNode("r-1", (), (), (), (OrgNode(OU_ID, (BAD_EFFECT,)),))
            )
        ),
        PolicyError,
        (OU_ID, "serviceControlPolicies", "/Statement/0/Effect"),
    ),
    Refusal(
        "user attached to a managed policy that does not exist",
        lambda s: s.put_user(
            User(MAIN, "carol", attached=(f"arn:aws:iam::{MAIN}:policy/nowhere",))
        ),
        StoreError,
        ("carol", MAIN, f"arn:aws:iam::{MAIN}:policy/nowhere"),
    ),
    Refusal(
        "role bounded by a managed policy that does not exist",
        lambda s: s.put_role(Role(MAIN, "deploy", boundary=f"arn:aws:iam::{MAIN}:policy/nowhere")),
        StoreError,
        ("deploy", "policy/nowhere"),
    ),
    Refusal(
        "group attached to an AWS managed policy that is not stored",
        lambda s: s.put_group(
            Group(MAIN, "admins", attached=("arn:aws:iam::aws:policy/AdministratorAccess",))
        ),
        StoreError,
        ("admins", "arn:aws:iam::aws:policy/AdministratorAccess"),
    ),
    Refusal(
        "user in a group that does not exist",
        lambda s: s.put_user(User(MAIN, "carol", groups=("readers", "ghosts"))),
        StoreError,
        ("carol", "`ghosts`"),
    ),
    Refusal(
        "user in a group of another account",
        lambda s: s.put_user(User(PARTNER, "carol", groups=("readers",))),
        StoreError,
        ("carol", "`readers`"),
    ),
    Refusal(
        "user whose account is not 12 digits",
        lambda s: s.put_user(User("12345", "carol")),
        StoreError,
        ("carol", "`12345`"),
    ),
    Refusal(
        "user with an invalid name",
        lambda s: s.put_user(User(MAIN, "car ol")),
        StoreError,
        ("`car ol`",),
    ),
    Refusal(
        "repository with an invalid name",
        lambda s: s.put_repository(Repository(f"arn:aws:ecr:us-east-1:{MAIN}:repository/Team_A")),
        StoreError,
        ("`Team_A`", "invalid repository name"),
    ),
    Refusal(
        "repository ARN of another service",
        lambda s: s.put_repository(Repository(f"arn:aws:s3:us-east-1:{MAIN}:repository/app")),
        StoreError,
        ("arn:aws:s3",),
    ),
    Refusal(
        "policy of a repository that does not exist",
        lambda s: s.set_repository_policy(NEW_REPOSITORY, None),
        StoreError,
        (NEW_REPOSITORY, "does not exist"),
    ),
    Refusal(
        "delete a policy still attached",
        lambda s: s.delete_policy(REGISTRY_READ),
        StoreError,
        (REGISTRY_READ, "attached"),
    ),
    Refusal(
        "delete a policy still used as a boundary",
        lambda s: s.delete_policy(ECR_ONLY),
        StoreError,
        (ECR_ONLY, "boundary"),
    ),
    Refusal(
        "delete a group with members",
        lambda s: s.delete_group(MAIN, "readers"),
        StoreError,
        ("`readers`", MAIN, "members"),
    ),
    Refusal(
        "delete a user that does not exist",
        lambda s: s.delete_user(MAIN, "ghost"),
        StoreError,
        ("`ghost`", "does not exist"),
    ),
    Refusal(
        "delete a role that does not exist",
        lambda s: s.delete_role(PARTNER, "Deploy"),
        StoreError,
        ("`Deploy`", PARTNER, "does not exist"),
    ),
    Refusal(
        "delete a repository that does not exist",
        lambda s: s.delete_repository(NEW_REPOSITORY),
        StoreError,
        (NEW_REPOSITORY, "does not exist"),
    ),
    Refusal(
        "import a fleet with one bad policy among good ones",
        lambda s: s.import_fleet(
            Fleet(
                users=(User(PARTNER, "good"), User(PARTNER, "bad", inline={"p": BAD_EFFECT})),
                repositories=(Repository(NEW_REPOSITORY),),
            )
        ),
        PolicyError,
        (PARTNER, "bad", "/Statement/0/Effect"),
    ),
]


@pytest.mark.parametrize("refusal", REFUSALS, ids=[r.name for r in REFUSALS])
def test_a_refused_write_names_the_entity_and_changes_nothing(
    store: FleetStore, refusal: Refusal
) -> None:
    before, fleet = store.revision, store.load_fleet()
    with pytest.raises(refusal.error) as raised:
        refusal.run(store)
    for fragment in refusal.fragments:
        assert fragment in str(raised.value)
    assert store.revision == before
    assert store.load_fleet() == fleet
    assert store.changes_since(before) == []
    # the store is still writable after a refusal
    assert store.put_repository(Repository(NEW_REPOSITORY)).revision == before + 1


def test_policy_errors_are_store_refusals_too() -> None:
    """Callers catch `ValueError` for both: StoreError and PolicyError are ValueErrors."""
    assert issubclass(StoreError, ValueError)
    assert issubclass(PolicyError, ValueError)
