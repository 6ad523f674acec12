"""`make bench-replicas` end to end, briefly: its own PostgreSQL cluster, three replicas, a few
writes, short throughput runs; every row printed with its goal and verdict, every answer at its
write's revision. Nothing here looks at speed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dockgate_server.bench.replicas import main


def test_the_replica_bench_prints_every_row(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = tmp_path / "report.json"
    argv = ["--writes", "6", "--seconds", "0.3", "--warmup", "0.1", "--repeat", "1"]
    assert main([*argv, "--concurrency", "2", "--report", str(report)]) == 0
    out = capsys.readouterr().out
    for figure in (
        "write visible on all three replicas, p50 (ms)",
        "write visible on all three replicas, p99 (ms)",
        "decisions/s on PostgreSQL / on SQLite (ratio)",
    ):
        line = next(line for line in out.splitlines() if line.startswith(figure))
        assert line.endswith((" met", " MISSED")), line
    written = json.loads(report.read_text())
    assert written["freshness"]["writes"] == 6
    assert len(written["freshness"]["slowest_ms"]) == 6
    assert written["freshness"]["answers_not_reflecting_the_write"] == 0
    assert written["decisions_per_second"]["postgresql"] > 0
    assert written["decisions_per_second"]["sqlite"] > 0
    assert len(written["rows"]) == 3
    assert all(isinstance(row["met"], bool) for row in written["rows"])
