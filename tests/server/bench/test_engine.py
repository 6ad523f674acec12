"""The engine benchmark: every figure measured on a small fleet, every goal printed with its
verdict (no timing is asserted)."""

from __future__ import annotations

import math

import pytest

from dockgate_server.bench.engine import Figures, format_table, measure, verdict
from dockgate_server.bench.fleet import FleetShape


def test_a_small_fleet_is_measured_whole() -> None:
    figures = measure(FleetShape(20, 9, 3), 0.02)
    assert figures.statements > 77  # the probe slice and then some
    for value in (
        figures.compile_seconds,
        figures.bytes_per_statement,
        figures.uncached_per_second,
        figures.cached_per_second,
        figures.update_milliseconds,
    ):
        assert value > 0 and math.isfinite(value)


def test_without_memory_the_memory_figure_is_unmeasured() -> None:
    assert math.isnan(measure(FleetShape(0, 0, 0), 0.01, memory=False).bytes_per_statement)


@pytest.mark.parametrize(
    ("value", "expected"), [(2.0, "met"), (3.0, "met"), (3.5, "MISSED"), (math.nan, "MISSED")]
)
def test_a_verdict_is_met_up_to_its_bound(value: float, expected: str) -> None:
    assert verdict(value, 3.0) == expected


def test_the_table_names_every_goal_and_its_verdict() -> None:
    small = Figures(77, 0.01, 0.004, 500.0, 10_000.0, 200_000.0, 0.3)
    big = Figures(99_077, 4.0, 3.2, 250.0, 9_000.0, 190_000.0, 0.9)
    table = format_table(small, big)
    lines = {line.split("  ")[0]: line for line in table.splitlines()}
    assert lines["full compile (s)"].endswith("<= 3 s  MISSED")
    assert lines["memory per statement (bytes)"].endswith("<= 600 B  met")
    assert lines["repository policy change visible (ms)"].endswith("<= 5 ms  met")
    assert lines["per-decision cost, full / probe (ratio)"].endswith("<= 1.3 x  met")
