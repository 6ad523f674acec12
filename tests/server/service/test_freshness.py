"""An admin write reaches `Authorize`: at once with `at_least_revision`, soon without it, and in
every worker process when several share the decision port."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from dockgate import AdminClient, Client, Decision, Outcome
from dockgate_server.engine.snapshot import Snapshot
from dockgate_server.service.state import DecisionState
from dockgate_server.store.model import Repository
from dockgate_server.store.port import open_store
from tests.server.service.conftest import RunningServer, start_server

ACCOUNT = "111122223333"
TOOLS = f"arn:aws:ecr:us-east-1:{ACCOUNT}:repository/team-b/tools"
PUSH = "ecr:PutImage"
SETTLE = 5.0
"""Seconds a poll may take before the test gives up: a bound on liveness, not a latency check."""
CONNECTIONS = 20


def _push_policy(resource: str) -> dict[str, Any]:
    return {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": PUSH, "Resource": resource}],
    }


def _deny_policy(principal: str) -> dict[str, Any]:
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "NoPush",
                "Effect": "Deny",
                "Principal": {"AWS": principal},
                "Action": PUSH,
            }
        ],
    }


def _poll(ask: Callable[[], Decision], wanted: Outcome) -> Decision:
    """Ask until the answer is `wanted`, for at most SETTLE seconds; the last answer."""
    deadline = time.monotonic() + SETTLE
    decision = ask()
    while decision.outcome is not wanted and time.monotonic() < deadline:
        time.sleep(0.01)
        decision = ask()
    return decision


def test_a_write_is_visible_to_authorize(server: RunningServer) -> None:
    principal = f"arn:aws:iam::{ACCOUNT}:user/fresh"
    with AdminClient(server.admin, server.token) as admin, Client(server.decision) as client:
        assert client.authorize(principal, PUSH, TOOLS).outcome is Outcome.IMPLICITLY_DENIED

        revision = admin.put_user(ACCOUNT, "fresh", inline_policies={"push": _push_policy(TOOLS)})
        decision = client.authorize(principal, PUSH, TOOLS, at_least_revision=revision)
        assert decision.outcome is Outcome.ALLOWED
        assert decision.revision >= revision

        # without at_least_revision: plain polling sees the next write soon
        denied = admin.set_repository_policy(TOOLS, _deny_policy(principal))
        decision = _poll(
            lambda: client.authorize(principal, PUSH, TOOLS), Outcome.EXPLICITLY_DENIED
        )
        assert decision.outcome is Outcome.EXPLICITLY_DENIED
        assert decision.revision >= denied

        # and a delete is seen as well
        removed = admin.delete_repository_policy(TOOLS)
        decision = client.authorize(principal, PUSH, TOOLS, at_least_revision=removed)
        assert decision.outcome is Outcome.ALLOWED


def test_a_decision_never_comes_from_an_older_revision(server: RunningServer) -> None:
    """Every answer to a request with at_least_revision is at that revision or later, right
    after each of a run of writes."""
    principal = f"arn:aws:iam::{ACCOUNT}:user/flip"
    with AdminClient(server.admin, server.token) as admin, Client(server.decision) as client:
        admin.put_user(ACCOUNT, "flip", inline_policies={"push": _push_policy(TOOLS)})
        for round_ in range(10):
            if round_ % 2:
                revision = admin.delete_repository_policy(TOOLS)
                expected = Outcome.ALLOWED
            else:
                revision = admin.set_repository_policy(TOOLS, _deny_policy(principal))
                expected = Outcome.EXPLICITLY_DENIED
            decision = client.authorize(principal, PUSH, TOOLS, at_least_revision=revision)
            assert decision.revision >= revision
            assert decision.outcome is expected, round_


# -- several workers -----------------------------------------------------------------------------


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[RunningServer]:
    if not Path("/proc/net/tcp").exists():
        pytest.skip("telling workers apart reads /proc (Linux)")
    running = start_server(tmp_path, "--workers", "2")
    try:
        yield running
    finally:
        if running.process.poll() is None:
            try:
                running.stop(signal.SIGTERM, timeout=15)
            except subprocess.TimeoutExpired:
                # the workers outlive a killed parent: end them too, while they are still ours
                for pid in (running.process.pid, *running.workers):
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
                running.process.wait()


def _socket_inodes(pid: int) -> set[str]:
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:[") : -1])
    return inodes


def _established_on(port: int) -> set[str]:
    """Inodes of the server-side sockets of established connections to `port`."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            local_port = int(fields[1].rsplit(":", 1)[1], 16)
            if local_port == port and fields[3] == "01":  # 01: ESTABLISHED
                inodes.add(fields[9])
    return inodes


def _serving_worker(running: RunningServer) -> int | None:
    """The worker holding the one open connection to the decision port (None when unclear)."""
    established = _established_on(running.decision_port)
    holding = [pid for pid in running.workers if _socket_inodes(pid) & established]
    return holding[0] if len(holding) == 1 else None


def _ask_on_fresh_connections(
    running: RunningServer, ask: Callable[[Client], Decision]
) -> dict[int | None, list[Decision]]:
    """CONNECTIONS clients, one after the other, each on its own new connection (grpc shares a
    connection between open channels to one address, so each client is closed before the next):
    SO_REUSEPORT hands each connection to a worker. The decisions, by the worker that made them."""
    by_worker: dict[int | None, list[Decision]] = {}
    for _ in range(CONNECTIONS):
        with Client(running.decision) as client:
            decision = ask(client)
            by_worker.setdefault(_serving_worker(running), []).append(decision)
    return by_worker


def test_a_write_is_visible_in_every_worker(workers: RunningServer) -> None:
    assert len(workers.workers) == 2
    principal = f"arn:aws:iam::{ACCOUNT}:user/everywhere"

    before = _ask_on_fresh_connections(workers, lambda c: c.authorize(principal, PUSH, TOOLS))
    assert all(d.outcome is Outcome.IMPLICITLY_DENIED for ds in before.values() for d in ds)

    with AdminClient(workers.admin, workers.token) as admin:
        revision = admin.put_user(
            ACCOUNT, "everywhere", inline_policies={"push": _push_policy(TOOLS)}
        )
        after = _ask_on_fresh_connections(
            workers, lambda c: c.authorize(principal, PUSH, TOOLS, at_least_revision=revision)
        )
        denied = admin.set_repository_policy(TOOLS, _deny_policy(principal))
        polled = _ask_on_fresh_connections(
            workers,
            lambda c: _poll(lambda: c.authorize(principal, PUSH, TOOLS), Outcome.EXPLICITLY_DENIED),
        )

    assert set(workers.workers) <= set(after), f"one worker took every connection: {after.keys()}"
    assert set(workers.workers) <= set(polled), f"one worker took every connection: {polled}"
    for pid, decisions in after.items():
        assert all(d.outcome is Outcome.ALLOWED and d.revision >= revision for d in decisions), pid
    for pid, decisions in polled.items():
        assert all(
            d.outcome is Outcome.EXPLICITLY_DENIED and d.revision >= denied for d in decisions
        ), pid
    assert workers.stop() == 0


# -- waiting for a revision ------------------------------------------------------------------------

WAITERS = 500


@pytest.fixture
def state(tmp_path: Path) -> Iterator[DecisionState]:
    path = tmp_path / "store.sqlite3"
    with open_store(path) as store:
        store.put_repository(Repository(TOOLS))
    running = DecisionState(path, poll_interval=0.02)
    running.start()
    try:
        yield running
    finally:
        running.stop()


def test_many_waiters_for_a_revision_that_never_comes_time_out_and_hold_up_no_call(
    state: DecisionState,
) -> None:
    """They wait on a future each, not in a poll loop: while all of them wait, another call is
    answered, and each of them ends with None once its timeout passes."""

    async def run() -> tuple[list[Snapshot | None], int, Snapshot | None]:
        far = state.snapshot.revision + 1_000
        waiters = [asyncio.create_task(state.at_least(far, 1.0)) for _ in range(WAITERS)]
        while state.waiting < WAITERS:
            await asyncio.sleep(0.001)
        waiting = state.waiting
        current = await state.at_least(state.snapshot.revision, 0.0)
        return await asyncio.gather(*waiters), waiting, current

    results, waiting, current = asyncio.run(run())
    assert waiting == WAITERS
    assert current is not None
    assert results == [None] * WAITERS
    assert state.waiting == 0


def test_a_write_releases_its_waiters_without_waiting_out_their_timeout(
    state: DecisionState,
) -> None:
    """The refresh that swaps the revision in wakes the waiters: they return with it long before
    their own timeout (which is far longer than the test's liveness bound)."""
    wanted = state.snapshot.revision + 1

    async def run() -> list[Snapshot | None]:
        waiters = [asyncio.create_task(state.at_least(wanted, 3600.0)) for _ in range(50)]
        while state.waiting < 50:
            await asyncio.sleep(0.001)
        with open_store(state.store_url) as store:
            store.put_repository(Repository(f"{TOOLS}-2"))
        return await asyncio.wait_for(asyncio.gather(*waiters), SETTLE * 6)

    released = asyncio.run(run())
    assert all(s is not None and s.revision >= wanted for s in released)
    assert state.waiting == 0
