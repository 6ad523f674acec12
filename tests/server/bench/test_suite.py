"""`make bench`'s table: a goal on a ratio against a same-run baseline, or on a figure alone."""

from __future__ import annotations

import math

import pytest

from dockgate_server.bench.suite import Row, _table


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
