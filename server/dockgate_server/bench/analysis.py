"""Benchmark access analysis on a synthetic fleet: who-can and what-can, against brute force.

Run: `python -m dockgate_server.bench.analysis`. The fleet is `bench/fleet.py`'s at 10,000
repositories (about 100,000 statements). Goals (issue 15, printed met or MISSED, asserted
nowhere): who-can for one action on one repository under 100 ms, what-can for one principal under
1 s, each on a snapshot whose directory is built (once per snapshot, timed on its own row); the
first question about an action also fills the index's slices for it, timed as `cold`. The brute
force rows assess every principal for one who-can question, and a sample of every (repository,
action) pair for one what-can question (scaled up to all of them): what the index saves.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable, Sequence
from functools import partial

from dockgate_server.analysis import REPOSITORY_ACTIONS, what_can, who_can
from dockgate_server.analysis.assess import assess
from dockgate_server.analysis.directory import directory_of
from dockgate_server.bench.fleet import PROBE_ACCOUNT, FleetShape, synthetic_fleet
from dockgate_server.engine.build import build_snapshot
from dockgate_server.engine.snapshot import Snapshot
from dockgate_server.store.model import Credentials

__all__ = ["GOALS", "main"]

GOALS = {"who_can_ms": 100.0, "what_can_ms": 1000.0}
"""Upper bounds, in milliseconds (issue 15)."""
_SAMPLE = 2000
"""pairs the brute-force what-can row decides before scaling up"""


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--repositories", type=int, default=10_000)
    parser.add_argument("--principals", type=int, default=1_000)
    parser.add_argument("--managed-policies", type=int, default=200)
    arguments = parser.parse_args(argv)
    shape = FleetShape(arguments.repositories, arguments.principals, arguments.managed_policies)
    fleet = synthetic_fleet(shape)
    started = time.perf_counter()
    snapshot = build_snapshot(fleet, Credentials(), 1)
    compiled = time.perf_counter() - started
    statements = _statements(snapshot)
    print(
        f"fleet: {len(fleet.repositories):,} repositories, {len(fleet.users) + len(fleet.roles):,}"
        f" principals, {statements:,} statements (compiled in {compiled:.2f} s)"
    )
    rows: list[tuple[str, float, float | None]] = []
    rows.append(("directory (once per snapshot)", _time(lambda: directory_of(snapshot)), None))
    probe_repository = f"arn:aws:ecr:us-east-1:{PROBE_ACCOUNT}:repository/probe/app-0"
    bulk = [r.arn for r in fleet.repositories if not r.arn.endswith(("/probe/app-0",))]
    for repository, action in [
        (probe_repository, "ecr:BatchGetImage"),
        (bulk[len(bulk) // 2], "ecr:PutImage"),
        (bulk[-1], "ecr:DescribeImages"),
    ]:
        label = f"who-can {action} {'/'.join(repository.rsplit('/', 2)[-2:])}"
        question = partial(who_can, snapshot, action, repository)
        cold = _time(question)
        warm = _median(question)
        count = len(question())
        rows.append((f"{label} (cold)", cold, None))
        rows.append((f"{label}: {count} findings", warm, GOALS["who_can_ms"]))
    principals = [
        f"arn:aws:iam::{PROBE_ACCOUNT}:user/probe",
        fleet.users[len(fleet.users) // 2].arn,
        fleet.roles[-1].arn,
    ]
    for principal in principals:
        seconds = _time(partial(what_can, snapshot, principal))
        count = len(what_can(snapshot, principal))
        rows.append(
            (
                f"what-can {principal.split(':')[-1]}: {count} findings",
                seconds,
                GOALS["what_can_ms"],
            )
        )
    rows.append(_brute_who(snapshot, probe_repository))
    rows.append(_brute_what(snapshot, principals[1]))
    print(f"{'question':<58}{'ms':>12}{'goal ms':>10}")
    for row, seconds, goal in rows:
        verdict = "" if goal is None else ("met" if seconds * 1000 <= goal else "MISSED")
        shown_goal = "" if goal is None else f"< {goal:,.0f}"
        print(f"{row:<58}{seconds * 1000:>12,.1f}{shown_goal:>10}  {verdict}".rstrip())
    return 0


def _brute_who(snapshot: Snapshot, repository: str) -> tuple[str, float, None]:
    """Assess every principal of the store for one who-can question."""
    directory = directory_of(snapshot)
    started = time.perf_counter()
    for principal in directory.principals.values():
        assess(snapshot, principal.arn, principal.type, "ecr:BatchGetImage", repository)
    seconds = time.perf_counter() - started
    return (f"brute force who-can: {len(directory.principals):,} principals", seconds, None)


def _brute_what(snapshot: Snapshot, principal: str) -> tuple[str, float, None]:
    """Assess a sample of every (repository, action) for one principal, scaled to all."""
    repositories = list(snapshot.repositories)
    pairs = [(r, a) for r in repositories for a in REPOSITORY_ACTIONS]
    step = max(1, len(pairs) // _SAMPLE)
    sample = pairs[::step]
    directory = directory_of(snapshot)
    found = directory.principal(principal)
    assert found is not None
    started = time.perf_counter()
    for repository, action in sample:
        assess(snapshot, principal, found.type, action, repository)
    seconds = (time.perf_counter() - started) * len(pairs) / len(sample)
    return (f"brute force what-can: {len(pairs):,} pairs (scaled)", seconds, None)


def _statements(snapshot: Snapshot) -> int:
    views = (*snapshot.users.values(), *snapshot.roles.values())
    identity = sum(view.identity.statement_count for view in views)
    repository = sum(
        len(view.policy.statements) for view in snapshot.repositories.values() if view.policy
    )
    return identity + repository


def _time(run: Callable[[], object]) -> float:
    started = time.perf_counter()
    run()
    return time.perf_counter() - started


def _median(run: Callable[[], object], times: int = 5) -> float:
    return statistics.median(_time(run) for _ in range(times))


if __name__ == "__main__":
    raise SystemExit(main())
