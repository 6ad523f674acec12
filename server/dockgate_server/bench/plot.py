"""The picture of a load test (PNG): the latency histogram and the throughput over time, Dockgate's
beside the baseline's. Drawn with matplotlib's Agg backend (no display needed); matplotlib comes
with the `bench` extra (`pip install 'dockgate[bench]'`)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["write_plot"]

_COLOURS = {"dockgate": "#1f77b4", "baseline": "#7f7f7f"}


def write_plot(path: Path, runs: Mapping[str, Mapping[str, Any]], title: str) -> None:
    """`runs` maps a name (`dockgate`, `baseline`) to the figures of `report.figures`."""
    try:
        import matplotlib  # noqa: PLC0415 - only a run that asks for a picture needs it

        matplotlib.use("Agg")
        from matplotlib import pyplot  # noqa: PLC0415
    except ImportError as problem:
        raise RuntimeError(
            "--plot needs matplotlib: pip install 'dockgate[bench]' (or `make install`)"
        ) from problem
    figure, (latency, rate) = pyplot.subplots(1, 2, figsize=(12, 4.5), layout="constrained")
    figure.suptitle(title, fontsize=11)
    decisions = any(run["batch_size"] > 1 for run in runs.values())
    for name, run in runs.items():
        colour = _COLOURS.get(name)
        edges, counts = run["histogram"]["edges_ms"], run["histogram"]["counts"]
        total = sum(counts) or 1
        if counts:
            latency.stairs(
                [100 * c / total for c in counts], edges, label=name, color=colour, linewidth=1.5
            )
        for share, style in (("p50", ":"), ("p99", "--")):
            value = run["latency_ms"][share]
            if value > 0:
                latency.axvline(value, color=colour, linestyle=style, linewidth=1)
        unit = "decisions_per_second" if decisions else "calls_per_second"
        series, step = run["throughput"][unit], run["throughput"]["step_seconds"]
        rate.plot(
            [step * (i + 0.5) for i in range(len(series))],
            series,
            label=f"{name} ({run[unit]:,.0f}/s)",
            color=colour,
        )
    latency.set_xscale("log")
    latency.set_xlabel("latency per call (ms, log scale); dotted p50, dashed p99")
    latency.set_ylabel("% of calls")
    latency.set_title("latency")
    latency.legend()
    rate.set_xlabel("seconds into the measured phase")
    rate.set_ylabel("decisions/s" if decisions else "calls/s")
    rate.set_title("throughput over time")
    rate.set_ylim(bottom=0)
    rate.legend()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    pyplot.close(figure)
