"""`make bench`'s table: a goal on a ratio against a same-run baseline, or on a figure alone."""

from __future__ import annotations

import math
from typing import Any

import pytest

from dockgate_server.bench.suite import Row, _grpc_rows, _table


@pytest.mark.parametrize(
    ("row", "met"),
    [
        (Row("ratio", 90.0, 100.0, "/s", ">= 0.85"), True),
        (Row("ratio", 80.0, 100.0, "/s", ">= 0.85"), False),
        (Row("absolute", 2.4, None, "s", "<= 3 s"), True),
        (Row("absolute", 3.4, None, "s", "<= 3 s"), False),
        (Row("unmeasured", math.nan, None, "B", "<= 600 B"), False),
        (Row("no goal", 1.0, None, "s"), None),
    ],
)
def test_a_row_is_judged_on_its_ratio_or_on_its_figure(row: Row, met: bool | None) -> None:
    assert row.met is met


def test_the_table_prints_absolute_goals_with_their_unit() -> None:
    table = _table(
        [
            Row("engine full compile (s)", 2.41, None, "s", "<= 3 s"),
            Row("engine memory (bytes/statement)", 254.2, None, "B", "<= 600 B"),
        ]
    )
    compile_line, memory_line = table.splitlines()[-2:]
    assert "2.41" in compile_line and compile_line.endswith("<= 3 s  met")
    assert "254" in memory_line and memory_line.endswith("<= 600 B  met")


def test_each_batch_row_says_whether_the_cache_was_on_and_whether_keys_repeat() -> None:
    def run(per_second: float) -> dict[str, Any]:
        return {
            "calls_per_second": per_second,
            "decisions_per_second": per_second,
            "offered_calls_per_second": 1000.0,
            "latency_ms": {"p99": 1.0},
            "server_cpu_us_per_decision": 10.0,
        }

    runs = {
        "bare unary": run(10_000.0),
        "dockgate unary, cache off, distinct keys": run(6_000.0),
        "dockgate unary, cache on, Zipf keys": run(9_000.0),
        "dockgate BatchAuthorize x100, cache off, distinct keys": run(80_000.0),
        "dockgate BatchAuthorize x100, cache on, Zipf keys": run(200_000.0),
        "dockgate unary at half saturation": run(4_500.0),
        "bare unary at half saturation": run(4_500.0),
    }
    rows = {row.figure: row for row in _grpc_rows(runs, 100, cedar_us=None)}
    uncached = rows["BatchAuthorize x100, cache off, distinct keys (decisions/s vs bare calls/s)"]
    assert (uncached.ratio, uncached.goal, uncached.met) == (8.0, ">= 8", True)
    batch = [figure for figure in rows if "atch" in figure]
    assert len(batch) == 4
    assert all(("cache off" in f) != ("cache on" in f) for f in batch)
    assert all(("distinct keys" in f) != ("Zipf keys" in f) for f in batch)
    assert _table(list(rows.values())).count("BatchAuthorize") == 2


def test_the_uncached_batch_is_set_against_cedarpy_when_it_was_measured() -> None:
    run = {
        "calls_per_second": 1.0,
        "decisions_per_second": 1.0,
        "offered_calls_per_second": 1.0,
        "latency_ms": {"p99": 1.0},
        "server_cpu_us_per_decision": 80.0,
    }
    runs = dict.fromkeys(
        (
            "bare unary",
            "dockgate unary, cache off, distinct keys",
            "dockgate unary, cache on, Zipf keys",
            "dockgate BatchAuthorize x100, cache off, distinct keys",
            "dockgate BatchAuthorize x100, cache on, Zipf keys",
            "dockgate unary at half saturation",
            "bare unary at half saturation",
        ),
        run,
    )
    against = [r for r in _grpc_rows(runs, 100, cedar_us=40.0) if "cedarpy" in r.figure]
    assert [(r.ratio, r.goal, r.met) for r in against] == [(2.0, "<= 1.0", False)]
    assert not [r for r in _grpc_rows(runs, 100, cedar_us=None) if "cedarpy" in r.figure]
