"""Signals: SIGTERM under load finishes every call in flight; SIGKILL during admin writes loses no
write that was acknowledged."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest

import dockgate
from dockgate import AdminClient, AsyncClient, Client, Decision, Outcome
from tests.server.service.conftest import RunningServer, start_server

ACCOUNT = "111122223333"
READER = f"arn:aws:iam::{ACCOUNT}:user/reader"
PULL = "ecr:BatchGetImage"
APP = f"arn:aws:ecr:us-east-1:{ACCOUNT}:repository/team-a/app"
WAVE = 200
"""Calls started at once, before and again right after the signal."""


@contextlib.contextmanager
def _running(
    data_dir: Path, *extra: str, env: dict[str, str | None] | None = None
) -> Iterator[RunningServer]:
    """A server that is always gone at the end, workers included, whatever the test did to it."""
    running = start_server(data_dir, *extra, env=env)
    try:
        yield running
    finally:
        if running.process.poll() is None:
            try:
                running.stop(signal.SIGTERM, timeout=15)
            except subprocess.TimeoutExpired:
                for pid in (running.process.pid, *running.workers):
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
                running.process.wait()


# -- SIGTERM ---------------------------------------------------------------------------------------


async def _load_and_terminate(running: RunningServer) -> tuple[list[object], int]:
    """A wave of calls; SIGTERM once some have answered and the rest are in flight; a second
    wave right after. Every result or exception, and how many calls were in flight at the
    signal."""
    async with AsyncClient(running.decision, timeout=15) as client:

        async def ask(index: int) -> Decision:
            context = {"aws:SourceIp": f"203.0.113.{index % 250}"}
            return await client.authorize(READER, PULL, APP, context)

        first = [asyncio.create_task(ask(i)) for i in range(WAVE)]
        pending: set[asyncio.Task[Decision]] = set(first)
        while len(pending) > WAVE * 3 // 4:  # a quarter answered: the server is busy
            _, pending = await asyncio.wait(
                pending, timeout=10, return_when=asyncio.FIRST_COMPLETED
            )
        in_flight = len(pending)
        running.process.send_signal(signal.SIGTERM)
        second = [asyncio.create_task(ask(i)) for i in range(WAVE)]
        results = await asyncio.gather(*first, *second, return_exceptions=True)
    return list(results), in_flight


@dataclass(frozen=True)
class Terminated:
    results: list[object]
    in_flight: int
    code: int

    def failures(self) -> list[dockgate.DockgateError]:
        return [r for r in self.results if isinstance(r, dockgate.DockgateError)]


@pytest.fixture(scope="module", params=[1, 2], ids=["one-process", "two-workers"])
def terminated(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Terminated:
    """One server per worker count, loaded and sent SIGTERM; what its clients saw."""
    with _running(tmp_path_factory.mktemp("sigterm"), "--workers", str(request.param)) as running:
        results, in_flight = asyncio.run(_load_and_terminate(running))
        code = running.process.wait(timeout=30)
    return Terminated(results, in_flight, code)


def test_sigterm_under_load_answers_and_exits_cleanly(terminated: Terminated) -> None:
    """Calls in flight at the signal answer with a decision or a status the client can act on,
    never an INTERNAL or UNKNOWN failure; the server exits 0."""
    assert terminated.in_flight > 0
    decided = [r for r in terminated.results if isinstance(r, Decision)]
    assert len(decided) + len(terminated.failures()) == len(terminated.results)
    assert all(d.outcome is Outcome.ALLOWED for d in decided)
    assert len(decided) >= WAVE // 4
    codes = {f.code for f in terminated.failures()}
    assert codes <= {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED}
    assert terminated.code == 0


def test_sigterm_under_load_drops_no_call_in_flight(terminated: Terminated) -> None:
    """Every call either was decided or was refused before being accepted (UNAVAILABLE, which
    the client retries); none is cancelled."""
    assert terminated.in_flight > 0
    assert [f for f in terminated.failures() if not isinstance(f, dockgate.UnavailableError)] == []


def test_sigterm_stops_every_worker_and_cleans_up(tmp_path: Path) -> None:
    """The workers' shared metrics directory is made under TMPDIR and removed at the end."""
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    data = tmp_path / "data"
    data.mkdir()
    with _running(data, "--workers", "2", env={"TMPDIR": str(scratch)}) as running:
        assert len(running.workers) == 2
        assert list(scratch.iterdir()), "the metrics directory is made under TMPDIR"
        with Client(running.decision) as client:
            assert client.authorize(READER, PULL, APP).outcome is Outcome.ALLOWED
        assert running.stop(signal.SIGTERM) == 0
    for pid in running.workers:
        with pytest.raises(ChildProcessError):  # reaped by the server: not ours to wait for
            os.waitpid(pid, os.WNOHANG)
        assert not _is_worker_of(pid, running.process.pid)
    assert list(scratch.iterdir()) == []


def _is_worker_of(pid: int, parent: int) -> bool:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return False
    return int(fields[1]) == parent


# -- SIGKILL ---------------------------------------------------------------------------------------


class _Writer(threading.Thread):
    """Puts repositories one after another, recording each acknowledged write."""

    def __init__(self, running: RunningServer, prefix: str) -> None:
        super().__init__(name=f"writer-{prefix}", daemon=True)
        self.running = running
        self.prefix = prefix
        self.acknowledged: list[tuple[str, int]] = []
        self.failure: BaseException | None = None

    def run(self) -> None:
        with AdminClient(self.running.admin, self.running.token, timeout=10) as admin:
            index = 0
            while True:
                arn = f"arn:aws:ecr:us-east-1:{ACCOUNT}:repository/killed/{self.prefix}-{index}"
                try:
                    revision = admin.put_repository(arn, tags={"index": str(index)})
                except BaseException as failure:  # the server died: the end of this writer
                    self.failure = failure
                    return
                self.acknowledged.append((arn, revision))
                index += 1


def test_sigkill_during_admin_writes_loses_no_acknowledged_write(tmp_path: Path) -> None:
    with _running(tmp_path) as first:
        writers = [_Writer(first, prefix) for prefix in ("a", "b", "c")]
        for writer in writers:
            writer.start()
        deadline = time.monotonic() + 20
        while sum(len(w.acknowledged) for w in writers) < 60 and time.monotonic() < deadline:
            time.sleep(0.01)
        first.process.kill()
        first.process.wait()
        for writer in writers:
            writer.join(timeout=15)
            assert not writer.is_alive()
    acknowledged = [entry for writer in writers for entry in writer.acknowledged]
    assert len(acknowledged) >= 60
    for writer in writers:
        assert isinstance(writer.failure, dockgate.DockgateError), repr(writer.failure)
        revisions = [revision for _, revision in writer.acknowledged]
        assert revisions == sorted(set(revisions))
    assert len({revision for _, revision in acknowledged}) == len(acknowledged)

    with _running(tmp_path) as second, AdminClient(second.admin, second.token) as admin:
        assert admin.revision() >= max(revision for _, revision in acknowledged)
        exported = admin.export_bundle()
        stored = {r["repositoryArn"]: r for r in exported["accounts"][ACCOUNT]["repositories"]}
        lost = [arn for arn, _ in acknowledged if arn not in stored]
        assert not lost
        for arn, _ in acknowledged:
            index = arn.rsplit("-", 1)[1]
            assert stored[arn]["tags"] == [{"Key": "index", "Value": index}]
        with Client(second.decision) as client:  # and the restarted server decides
            assert client.authorize(READER, PULL, APP).outcome is Outcome.ALLOWED
        assert second.stop() == 0


# -- SIGTERM under steady load ---------------------------------------------------------------------

GRACE = 10.0
"""`dockgate serve`'s grace period: the old drain served on for all of it under steady load."""


async def _steady_load_then_terminate(running: RunningServer) -> tuple[list[object], bool]:
    """Callers that keep calling, one call after another; SIGTERM once they are going. Every
    result, and whether every caller was refused while still calling (they stop at GRACE * 0.8
    seconds after the signal at the latest)."""
    results: list[object] = []
    stop_at: list[float] = []

    async with AsyncClient(running.decision, timeout=15) as client:

        async def caller() -> bool:
            loop = asyncio.get_running_loop()
            while not stop_at or loop.time() < stop_at[0]:
                try:
                    results.append(await client.authorize(READER, PULL, APP))
                except dockgate.DockgateError as failure:
                    results.append(failure)
                    if isinstance(failure, dockgate.UnavailableError):
                        return True  # refused: the port has closed
            return False

        callers = [asyncio.create_task(caller()) for _ in range(20)]
        while len(results) < 200:
            await asyncio.sleep(0.01)
        running.process.send_signal(signal.SIGTERM)
        stop_at.append(asyncio.get_running_loop().time() + GRACE * 0.8)
        refused = await asyncio.gather(*callers)
    return results, all(refused)


def test_sigterm_under_steady_load_stops_taking_calls_at_once(tmp_path: Path) -> None:
    """The port closes at once, not after the grace period: every caller is refused
    (UNAVAILABLE) while it is still calling; none of its calls was cancelled or failed."""
    with _running(tmp_path) as running:
        results, refused_under_load = asyncio.run(_steady_load_then_terminate(running))
        assert running.process.wait(timeout=30) == 0
    assert refused_under_load
    failures = [r for r in results if isinstance(r, dockgate.DockgateError)]
    assert all(isinstance(f, dockgate.UnavailableError) for f in failures), failures
    assert all(r.outcome is Outcome.ALLOWED for r in results if isinstance(r, Decision))
