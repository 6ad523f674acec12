"""PostgreSQL writes: two replicas at once never share a revision or lose a write; refusals change
nothing; what one writes the other reads back exactly."""

from __future__ import annotations

import threading
from typing import Any

import psycopg
import pytest

from dockgate_server.store.errors import NotFound, Refused
from dockgate_server.store.model import Change, Fleet, Group, Role, User
from dockgate_server.store.postgres import PostgresStore
from tests.server.store.postgres.fleets import (
    ACCOUNT,
    read_policy,
    realistic_fleet,
    repository,
    role,
    user,
)

WRITERS = 4
WRITES = 15


def test_two_replicas_writing_at_once_get_every_revision_once(postgres_url: str) -> None:
    replicas = [PostgresStore(postgres_url), PostgresStore(postgres_url)]
    changes: list[Change] = []
    problems: list[BaseException] = []
    lock = threading.Lock()
    start = threading.Barrier(WRITERS)

    def write(writer: int) -> None:
        store = replicas[writer % 2]
        start.wait()
        try:
            for index in range(WRITES):
                change = store.put_repository(repository(f"writer-{writer}/repo-{index}"))
                with lock:
                    changes.append(change)
        except BaseException as problem:
            problems.append(problem)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(WRITERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    try:
        assert problems == []
        total = WRITERS * WRITES
        assert sorted(change.revision for change in changes) == list(range(1, total + 1))
        for store in replicas:
            assert store.revision == total
            assert len(store.load_fleet().repositories) == total
            log = store.changes_since(0)
            assert log is not None
            assert [c.revision for c in log] == list(range(1, total + 1))
            # each revision's change names the repository its own write made
            assert {c.revision: c.repositories for c in log} == {
                c.revision: c.repositories for c in changes
            }
    finally:
        for store in replicas:
            store.close()


def test_what_one_replica_writes_the_other_reads_back(postgres_url: str) -> None:
    fleet = realistic_fleet()
    with PostgresStore(postgres_url) as writer, PostgresStore(postgres_url) as reader:
        change = writer.import_fleet(fleet)
        assert change.everything and change.revision == 1
        assert reader.load_fleet() == writer.load_fleet()
        stored = reader.load_fleet()
        assert stored.users == tuple(sorted(fleet.users, key=lambda u: (u.account, u.name)))
        assert stored.organization == fleet.organization
        assert {p.arn for p in stored.policies} == {p.arn for p in fleet.policies}


def test_order_of_inline_policies_and_attachments_is_kept(postgres_url: str) -> None:
    policies = [read_policy(name) for name in ("zeta", "alpha", "mid")]
    with PostgresStore(postgres_url) as store:
        for policy in policies:
            store.put_policy(policy)
        store.put_user(user("ann", *(p.arn for p in policies)))
        loaded = store.load_user(ACCOUNT, "ann")
        assert loaded is not None
        assert loaded.attached == tuple(p.arn for p in policies)


def test_role_names_ignore_case(postgres_url: str) -> None:
    with PostgresStore(postgres_url) as store:
        store.put_role(Role(ACCOUNT, "Deployer"))
        store.put_role(Role(ACCOUNT, "deployer", path="/ci/"))
        found = store.load_role(ACCOUNT, "DEPLOYER")
        assert found is not None and (found.name, found.path) == ("deployer", "/ci/")
        assert len(store.load_fleet().roles) == 1


def test_a_refused_write_changes_nothing(postgres_url: str) -> None:
    with PostgresStore(postgres_url) as store:
        store.put_policy(read_policy())
        store.put_user(user("ann", read_policy().arn))
        before = store.load_fleet()
        with pytest.raises(Refused, match="still attached"):
            store.delete_policy(read_policy().arn)
        with pytest.raises(Refused, match="policy/missing` is not in the store"):
            store.put_user(user("bob", f"arn:aws:iam::{ACCOUNT}:policy/missing"))
        with pytest.raises(NotFound, match="user `nobody` of account"):
            store.delete_user(ACCOUNT, "nobody")
        with pytest.raises(NotFound, match="does not exist"):
            store.set_repository_policy(repository("none").arn, None)
        assert store.revision == 2
        assert store.load_fleet() == before
        assert [c.revision for c in store.changes_since(0) or []] == [1, 2]


def test_a_group_with_members_is_refused_and_deleting_a_user_frees_it(postgres_url: str) -> None:
    with PostgresStore(postgres_url) as store:
        store.put_group(Group(ACCOUNT, "devs"))
        store.put_user(User(ACCOUNT, "ann", groups=("devs",)))
        with pytest.raises(Refused, match="still has members"):
            store.delete_group(ACCOUNT, "devs")
        change = store.put_group(Group(ACCOUNT, "devs", path="/eng/"))
        assert change.principals == {f"user/{ACCOUNT}/ann"}
        store.delete_user(ACCOUNT, "ann")
        store.delete_group(ACCOUNT, "devs")
        assert store.load_group(ACCOUNT, "devs") is None


def test_a_delta_is_read_in_the_same_number_of_queries_for_one_user_or_many(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with PostgresStore(postgres_url) as store:
        store.put_policy(read_policy())
        many = [user(f"user-{n}", read_policy().arn) for n in range(40)]
        store.import_fleet(Fleet(users=tuple(many), roles=(role("builder"),)))
        executed: list[str] = []
        execute = psycopg.Cursor.execute

        def counting(self: Any, query: Any, *args: Any, **kwargs: Any) -> Any:
            executed.append(str(query))
            return execute(self, query, *args, **kwargs)

        monkeypatch.setattr(psycopg.Cursor, "execute", counting)

        def queries(names: list[str]) -> int:
            executed.clear()
            keys = {*(f"user/{ACCOUNT}/{name}" for name in names), f"role/{ACCOUNT}/builder"}
            delta = store.load_delta(Change(2, frozenset(keys)))
            assert set(delta.users) == {f"user/{ACCOUNT}/{n}" for n in names}
            assert all(found is not None for found in delta.users.values())
            assert read_policy().arn in delta.policies
            return len(executed)

        assert queries(["user-1"]) == queries([f"user-{n}" for n in range(40)])
