"""`dockgate bench` end to end, briefly: it starts a server (and the baseline), loads a small fleet,
drives it, and writes a complete report and a picture; the sampled answers agree with the engine.
Nothing here looks at speed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from dockgate_server.cli import main

SMALL = [
    "--start",
    "--repositories",
    "40",
    "--principals",
    "20",
    "--managed-policies",
    "5",
    "--groups",
    "3",
    "--keys",
    "300",
    "--warmup",
    "0.3",
    "--concurrency",
    "4",
    "--connections",
    "2",
    "--check",
    "40",
    "--quiet",
]
FIGURES = {
    "mode",
    "batch_size",
    "concurrency",
    "connections",
    "offered_calls_per_second",
    "seconds",
    "calls",
    "decisions",
    "calls_per_second",
    "decisions_per_second",
    "latency_ms",
    "errors",
    "error_calls",
    "server_cpu_seconds",
    "server_cpu_us_per_decision",
    "cache_hit_share",
    "keys",
    "throughput",
    "histogram",
}
LATENCIES = {"p50", "p90", "p99", "p99.9", "max", "mean"}
RATIOS = {
    "calls_per_second",
    "decisions_per_second",
    "server_cpu_us_per_decision",
    *(f"latency_{name}" for name in LATENCIES),
}


def run_bench(tmp_path: Path, *extra: str) -> tuple[dict[str, Any], Path, str]:
    report, picture = tmp_path / "report.json", tmp_path / "bench.png"
    code = main(["bench", *SMALL, "--report", str(report), "--plot", str(picture), *extra])
    assert code == 0
    return json.loads(report.read_text()), picture, ""


def assert_complete(figures: dict[str, Any], *, calls: bool = True) -> None:
    assert set(figures) == FIGURES
    assert set(figures["latency_ms"]) == LATENCIES
    assert figures["calls"] > 0 and figures["decisions"] >= figures["calls"]
    assert figures["error_calls"] == 0 and figures["errors"] == {}
    assert all(value > 0 for value in figures["latency_ms"].values())
    assert figures["server_cpu_seconds"] is not None  # the run started the server: it can see it
    assert figures["keys"]["sent"] == figures["decisions"]
    assert len(figures["throughput"]["calls_per_second"]) >= 1
    assert sum(figures["histogram"]["counts"]) == figures["calls"]


def assert_agreed(check: dict[str, Any]) -> None:
    assert check["decisions_checked"] > 0
    assert check["agreed"] == check["decisions_checked"], check["disagreements"]
    assert check["all_agree"] is True and check["disagreements"] == []


def test_a_unary_run_against_the_baseline_reports_everything(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report, picture, _ = run_bench(tmp_path, "--baseline", "--duration", "1.2")

    assert {"format", "version", "machine", "options", "target", "scenario"} <= set(report)
    assert report["scenario"]["fleet"]["repositories"] == 45  # the probe slice's five and 40
    assert report["scenario"]["keys"] > 0
    assert set(report["scenario"]["shares"]) == {"push", "cross_account", "denied"}
    assert_complete(report["dockgate"])
    assert_complete(report["baseline"])
    assert report["dockgate"]["mode"] == "unary"
    assert report["dockgate"]["cache_hit_share"] is not None
    assert report["baseline"]["cache_hit_share"] is None  # the baseline has no cache
    assert set(report["ratios"]) == RATIOS
    assert_agreed(report["check"])
    assert picture.read_bytes().startswith(b"\x89PNG\r\n\x1a\n") and picture.stat().st_size > 10_000
    out = capsys.readouterr().out
    assert "baseline" in out and "ratio" in out and "decisions agree" in out


def test_a_batch_run_by_count_checks_every_item_of_its_samples(tmp_path: Path) -> None:
    report, picture, _ = run_bench(
        tmp_path, "--mode", "batch", "--batch-size", "25", "--count", "40", "--zipf", "0"
    )

    figures = report["dockgate"]
    assert_complete(figures)
    assert (figures["mode"], figures["batch_size"], figures["calls"]) == ("batch", 25, 40)
    assert figures["decisions"] == 40 * 25
    assert report["baseline"] is None and report["ratios"] is None
    assert_agreed(report["check"])
    assert report["check"]["decisions_checked"] == 40 * 25  # every call was sampled: 40 >= 40
    assert picture.stat().st_size > 0
