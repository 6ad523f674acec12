"""The figures of a load phase (rates, latency percentiles, errors, server CPU), their ratios to
the baseline's, and how they are printed and written as JSON."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dockgate_server.bench.load import LoadResult

__all__ = [
    "PERCENTILES",
    "Measured",
    "figures",
    "format_table",
    "histogram",
    "percentile",
    "ratios",
    "throughput",
    "write_report",
]

PERCENTILES = (("p50", 50.0), ("p90", 90.0), ("p99", 99.0), ("p99.9", 99.9))
THROUGHPUT_STEP = 0.25
"""Seconds per point of the throughput-over-time series."""


@dataclass(frozen=True, slots=True)
class Measured:
    result: LoadResult
    server_cpu: float | None
    """seconds of CPU the server used during the phase (a server this run started)"""
    cache: tuple[int, int] | None
    """decision-cache hits and misses during the phase (a Dockgate server this run started)"""


def figures(measured: Measured, *, connections: int) -> dict[str, Any]:
    """Everything a report says about one phase against one server."""
    result, server_cpu, cache = measured.result, measured.server_cpu, measured.cache
    phase = result.phase
    seconds = max(result.seconds, 1e-9)
    ordered = sorted(result.latencies)
    latency = {name: _ms(percentile(ordered, share)) for name, share in PERCENTILES}
    latency["max"] = _ms(ordered[-1] if ordered else math.nan)
    latency["mean"] = _ms(sum(ordered) / len(ordered) if ordered else math.nan)
    distinct = len(set(result.keys_sent))
    sent = len(result.keys_sent)
    return {
        "mode": "batch" if phase.batch_size else "unary",
        "batch_size": phase.batch_size or 1,
        "concurrency": phase.concurrency,
        "connections": connections,
        "offered_calls_per_second": phase.rate,
        "seconds": round(seconds, 3),
        "calls": result.calls,
        "decisions": result.decisions,
        "calls_per_second": round(result.calls / seconds, 1),
        "decisions_per_second": round(result.decisions / seconds, 1),
        "latency_ms": latency,
        "errors": dict(sorted(result.errors.items())),
        "error_calls": sum(result.errors.values()),
        "server_cpu_seconds": None if server_cpu is None else round(server_cpu, 3),
        "server_cpu_us_per_decision": (
            None
            if server_cpu is None or not result.decisions
            else round(server_cpu / result.decisions * 1e6, 1)
        ),
        "cache_hit_share": round(cache[0] / sum(cache), 4) if cache and sum(cache) else None,
        "keys": {
            "sent": sent,
            "distinct": distinct,
            "repeat_share": round(1 - distinct / sent, 4) if sent else 0.0,
        },
        "throughput": throughput(result),
        "histogram": histogram(ordered),
    }


def percentile(ordered: list[float], share: float) -> float:
    """Nearest rank: the smallest value with at least `share` percent of the values at or below."""
    if not ordered:
        return math.nan
    rank = max(1, math.ceil(share / 100 * len(ordered) - 1e-9))  # 99.9% of 1,000 is 999
    return ordered[min(rank, len(ordered)) - 1]


def throughput(result: LoadResult) -> dict[str, Any]:
    """Calls and decisions finished in each step of the phase, as rates."""
    steps = max(1, math.ceil(result.seconds / THROUGHPUT_STEP - 1e-9))
    counts = [0] * steps
    for moment in result.finished:
        counts[min(steps - 1, int(moment / THROUGHPUT_STEP))] += 1
    widths = [THROUGHPUT_STEP] * steps
    widths[-1] = max(1e-9, result.seconds - (steps - 1) * THROUGHPUT_STEP)
    if steps > 1 and widths[-1] < THROUGHPUT_STEP / 2:  # a sliver at the end: fold it in
        counts[-2] += counts.pop()
        widths[-2] += widths.pop()
    per_call = max(1, result.phase.batch_size)
    return {
        "step_seconds": THROUGHPUT_STEP,
        "calls_per_second": [round(c / w, 1) for c, w in zip(counts, widths, strict=True)],
        "decisions_per_second": [
            round(c * per_call / w, 1) for c, w in zip(counts, widths, strict=True)
        ],
    }


def histogram(ordered: list[float], per_decade: int = 20) -> dict[str, list[float]]:
    """Latency counts in logarithmic buckets (milliseconds): `per_decade` buckets a power of 10."""
    if not ordered:
        return {"edges_ms": [], "counts": []}
    low = math.floor(math.log10(max(ordered[0] * 1000, 1e-3)) * per_decade)
    high = math.ceil(math.log10(max(ordered[-1] * 1000, 1e-3)) * per_decade) + 1
    edges = [10 ** (step / per_decade) for step in range(low, high + 1)]
    counts = [0.0] * (len(edges) - 1)
    for value in ordered:
        step = int(math.log10(max(value * 1000, 1e-3)) * per_decade) - low
        counts[min(max(step, 0), len(counts) - 1)] += 1
    return {"edges_ms": [round(edge, 5) for edge in edges], "counts": counts}


def ratios(dockgate: Mapping[str, Any], baseline: Mapping[str, Any]) -> dict[str, float | None]:
    """Each figure of Dockgate's divided by the baseline's."""
    pairs = {
        "calls_per_second": (dockgate["calls_per_second"], baseline["calls_per_second"]),
        "decisions_per_second": (
            dockgate["decisions_per_second"],
            baseline["decisions_per_second"],
        ),
        "server_cpu_us_per_decision": (
            dockgate["server_cpu_us_per_decision"],
            baseline["server_cpu_us_per_decision"],
        ),
    }
    for name in (*(name for name, _ in PERCENTILES), "max", "mean"):
        pairs[f"latency_{name}"] = (dockgate["latency_ms"][name], baseline["latency_ms"][name])
    return {name: _ratio(mine, theirs) for name, (mine, theirs) in pairs.items()}


def format_table(dockgate: Mapping[str, Any], baseline: Mapping[str, Any] | None) -> str:
    """The figures of one phase, beside the baseline's and their ratio when there is one."""
    rows: list[tuple[str, float | None, float | None, str]] = [
        ("calls/s", dockgate["calls_per_second"], _get(baseline, "calls_per_second"), ",.0f"),
        (
            "decisions/s",
            dockgate["decisions_per_second"],
            _get(baseline, "decisions_per_second"),
            ",.0f",
        ),
    ]
    for name in (*(name for name, _ in PERCENTILES), "max"):
        theirs = baseline["latency_ms"][name] if baseline else None
        rows.append((f"latency {name} (ms)", dockgate["latency_ms"][name], theirs, ".2f"))
    rows.append(
        (
            "server CPU per decision (us)",
            dockgate["server_cpu_us_per_decision"],
            _get(baseline, "server_cpu_us_per_decision"),
            ".1f",
        )
    )
    rows.append(("failed calls", dockgate["error_calls"], _get(baseline, "error_calls"), ",.0f"))
    lines = [
        f"{'figure':<32}{'dockgate':>14}" + (f"{'baseline':>14}{'ratio':>9}" if baseline else "")
    ]
    for name, mine, theirs, spec in rows:
        line = f"{name:<32}{_show(mine, spec):>14}"
        if baseline is not None:
            ratio = _ratio(mine, theirs)
            line += f"{_show(theirs, spec):>14}{'' if ratio is None else f'{ratio:.2f}':>9}"
        lines.append(line)
    return "\n".join(lines)


def write_report(path: Path, report: Mapping[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2, allow_nan=False, default=_plain) + "\n")


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 4) if not math.isnan(seconds) else -1.0


def _ratio(mine: float | None, theirs: float | None) -> float | None:
    if mine is None or theirs is None or theirs <= 0 or mine < 0:
        return None
    return round(mine / theirs, 3)


def _get(figures: Mapping[str, Any] | None, name: str) -> float | None:
    return None if figures is None else figures[name]


def _show(value: float | None, spec: str) -> str:
    return "-" if value is None or value < 0 else format(value, spec)


def _plain(value: object) -> object:
    return str(value)
