"""SIGKILL in the middle of an import: the store opens intact at its previous revision.

Two ways to land the kill inside the write transaction, neither touching the code under test:

- the `dockgate import` console script, watched from outside: a second connection sees the write
  lock held (`BEGIN IMMEDIATE` is busy) and the WAL growing with uncommitted frames; the process is
  then frozen with SIGSTOP and, while frozen, checked once more (lock still held, committed revision
  still the previous one) before SIGKILL, so the kill cannot land after the commit;
- `Store.import_fleet` in a child interpreter whose connection has an SQLite trace callback that,
  after half the rows are inserted and the WAL holds uncommitted frames, says so and blocks.
"""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from dockgate_server.store import Fleet, Repository, bundle_to_fleet, open_store
from tests.server.store.fleet_bundles import large_bundle, realistic_bundle

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")

BIG_ACCOUNT = "999988887777"
DOCKGATE = Path(sys.executable).with_name("dockgate")
WAL_GROWN = 512 * 1024
"""bytes of WAL that show the import has spilled uncommitted pages to disk"""


@pytest.fixture
def seeded(tmp_path: Path) -> tuple[Path, Fleet]:
    """A store at revision 1 holding the realistic fleet, closed (its WAL checkpointed)."""
    path = tmp_path / "store.sqlite3"
    with open_store(path) as store:
        store.import_fleet(bundle_to_fleet(realistic_bundle()))
        return path, store.load_fleet()


def _write_large_bundle(tmp_path: Path, size: int) -> Path:
    bundle = tmp_path / "large.json"
    bundle.write_text(json.dumps(large_bundle(BIG_ACCOUNT, size, size)), encoding="utf-8")
    return bundle


def _wal_size(path: Path) -> int:
    wal = path.with_name(path.name + "-wal")
    return wal.stat().st_size if wal.exists() else 0


def _is_writing(probe: sqlite3.Connection) -> bool:
    """Whether another connection holds the write lock (is inside a write transaction)."""
    try:
        probe.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError as problem:
        if "locked" in str(problem) or "busy" in str(problem):
            return True
        raise
    probe.execute("ROLLBACK")
    return False


def _committed_revision(probe: sqlite3.Connection) -> int:
    return int(probe.execute("SELECT value FROM meta WHERE key = 'revision'").fetchone()[0])


def _close_pipes(process: subprocess.Popen[Any]) -> None:
    for stream in (process.stdout, process.stderr):
        if stream is not None:
            stream.close()


def _assert_intact(path: Path, fleet: Fleet) -> None:
    """The store opens, passes integrity_check, and is exactly as before the killed import."""
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    db.close()
    with open_store(path) as store:
        assert store.revision == 1
        assert store.load_fleet() == fleet
        assert BIG_ACCOUNT not in store.accounts()
        assert store.load_user(BIG_ACCOUNT, "user-00000") is None
        assert store.changes_since(1) == []
        # and it takes the next write as revision 2
        change = store.put_repository(
            Repository(f"arn:aws:ecr:us-east-1:{BIG_ACCOUNT}:repository/after-crash")
        )
        assert change.revision == 2


def test_sigkill_of_dockgate_import_mid_transaction_leaves_the_previous_revision(
    tmp_path: Path, seeded: tuple[Path, Fleet]
) -> None:
    path, fleet = seeded
    bundle = _write_large_bundle(tmp_path, 10_000)
    probe = sqlite3.connect(path, timeout=0, isolation_level=None)
    process = subprocess.Popen(
        [str(DOCKGATE), "import", str(bundle), "--store", str(path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                out, err = process.communicate()
                pytest.fail(
                    f"the import ended (exit {process.returncode}) before it was caught "
                    f"inside its transaction: make the bundle larger\n{out!r}\n{err!r}"
                )
            assert time.monotonic() < deadline, "the import never started writing"
            if _wal_size(path) > WAL_GROWN and _is_writing(probe):
                process.send_signal(signal.SIGSTOP)
                # frozen: confirm it is still inside the transaction, before its commit
                if _is_writing(probe) and _committed_revision(probe) == 1:
                    break
                process.send_signal(signal.SIGCONT)
            time.sleep(0.002)
        spilled = _wal_size(path)
        process.kill()
        assert process.wait(timeout=30) == -signal.SIGKILL
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        _close_pipes(process)
        probe.close()
    # the crash left uncommitted frames behind: recovery has something to ignore
    assert spilled > WAL_GROWN
    _assert_intact(path, fleet)


HOOKED_IMPORT = """
import json, os, sys, time
from dockgate_server.store import open_store, bundle_to_fleet

path, bundle, rows = sys.argv[1], sys.argv[2], int(sys.argv[3])
fleet = bundle_to_fleet(json.loads(open(bundle, encoding="utf-8").read()))
store = open_store(path)
wal = path + "-wal"
seen = {"writing": False, "inserts": 0}

def trace(sql):
    if sql.startswith("BEGIN IMMEDIATE"):
        seen["writing"] = True
    elif seen["writing"] and sql.startswith("INSERT"):
        seen["inserts"] += 1
        if seen["inserts"] >= rows and os.path.exists(wal) and os.path.getsize(wal) > 0:
            print("inside", seen["inserts"], os.path.getsize(wal), flush=True)
            time.sleep(120)

store._db.set_trace_callback(trace)
store.import_fleet(fleet)
print("finished", flush=True)
"""


def test_sigkill_of_an_import_blocked_inside_its_transaction_leaves_the_previous_revision(
    tmp_path: Path, seeded: tuple[Path, Fleet]
) -> None:
    path, fleet = seeded
    size = 5_000
    bundle = _write_large_bundle(tmp_path, size)
    process = subprocess.Popen(
        [sys.executable, "-c", HOOKED_IMPORT, str(path), str(bundle), str(size)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline().split()
        assert line[:1] == ["inside"], (line, process.stderr.read() if process.stderr else "")
        inserts, wal = int(line[1]), int(line[2])
        assert inserts >= size
        assert wal > 0
        with sqlite3.connect(path, timeout=0, isolation_level=None) as probe:
            assert _is_writing(probe)
            assert _committed_revision(probe) == 1
        probe.close()
        process.kill()
        assert process.wait(timeout=30) == -signal.SIGKILL
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        _close_pipes(process)
    _assert_intact(path, fleet)
