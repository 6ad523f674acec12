"""The overload rows of `make bench`: a server offered several times its closed-loop saturation
rate, in an open loop with a short deadline, must go on completing most of that rate, refuse the
rest at once, and give its memory back afterwards.

The load comes from `flood` (raw HTTP/2 frames), the one generator here cheap enough to offer
five times a server's rate from one CPU. A refusal is RESOURCE_EXHAUSTED (Dockgate's admission)
or CANCELLED (gRPC shedding calls before any Python runs: grpcio's word for it). Memory is the
resident set of the server's processes (/proc/PID/status VmRSS) just before the load and again
`settle` seconds after it ends. The server's CPU time during the load is reported beside: a
server that got less than its CPUs (other processes on them) answers less, whatever its shedding.
The generator honours the server's SETTINGS_MAX_CONCURRENT_STREAMS, as a gRPC client does.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from dockgate_server.bench.flood import flood
from dockgate_server.bench.report import percentile
from dockgate_server.bench.servers import cpu_seconds

__all__ = [
    "COMPLETED_GOAL",
    "MEMORY_GOAL",
    "REFUSAL_P99_GOAL_MS",
    "Overload",
    "format_overload",
    "measure_overload",
    "resident_bytes",
]

COMPLETED_GOAL = 0.7
"""completed decisions a second, as a share of the closed-loop saturation rate (at least)"""
REFUSAL_P99_GOAL_MS = 50.0
MEMORY_GOAL = 1.2
"""resident memory `settle` seconds after the load, as a share of it before (at most)"""
REFUSED = ("RESOURCE_EXHAUSTED", "CANCELLED")
SHORTFALL = 0.95
"""an offered rate under this share of the one asked for is reported: the generator fell short"""


@dataclass(frozen=True, slots=True)
class Overload:
    multiple: float
    saturation: float
    """the closed-loop saturation rate (calls a second) it is a multiple of"""
    asked: float
    offered: float
    seconds: float
    completed_per_second: float
    refused: int
    refusal_p99_ms: float
    statuses: dict[str, int]
    memory_before: int | None
    memory_after: int | None
    settle: float
    server_cpus: float | None = None
    """CPUs the server's processes kept busy from the start of the load to its last answer (a
    worker that has its CPU to itself keeps about one busy)"""

    @property
    def completed_ratio(self) -> float:
        return self.completed_per_second / self.saturation if self.saturation else 0.0

    @property
    def memory_ratio(self) -> float | None:
        if not self.memory_before or self.memory_after is None:
            return None
        return self.memory_after / self.memory_before

    def verdicts(self) -> dict[str, bool | None]:
        memory = self.memory_ratio
        return {
            "completed": self.completed_ratio >= COMPLETED_GOAL,
            "refusal_p99": (
                None if self.refused == 0 else self.refusal_p99_ms <= REFUSAL_P99_GOAL_MS
            ),
            "memory": None if memory is None else memory <= MEMORY_GOAL,
        }


async def measure_overload(
    address: str,
    requests: Sequence[bytes],
    order: Sequence[int],
    pids: Sequence[int],
    *,
    saturation: float,
    multiple: float,
    seconds: float,
    settle: float,
    timeout: float = 0.2,
) -> Overload:
    """Offer `multiple` times `saturation` calls a second for `seconds`, then wait `settle`."""
    before = resident_bytes(pids)
    asked = saturation * multiple
    cpu_before, started = cpu_seconds(list(pids)), time.perf_counter()
    result = await flood(address, requests, order, rate=asked, duration=seconds, timeout=timeout)
    cpu_after, loaded = cpu_seconds(list(pids)), time.perf_counter() - started
    await asyncio.sleep(settle)
    after = resident_bytes(pids)
    refusals = sorted(latency for status in REFUSED for latency in result.latencies.get(status, ()))
    offered_seconds = max(result.seconds, 1e-9)
    return Overload(
        multiple=multiple,
        saturation=saturation,
        asked=asked,
        offered=result.sent / offered_seconds,
        seconds=offered_seconds,
        completed_per_second=result.completed / offered_seconds,
        refused=len(refusals),
        refusal_p99_ms=percentile(refusals, 99.0) * 1000 if refusals else float("nan"),
        statuses=dict(sorted(result.statuses.items())),
        memory_before=before,
        memory_after=after,
        settle=settle,
        server_cpus=None
        if cpu_before is None or cpu_after is None
        else (cpu_after - cpu_before) / loaded,
    )


def resident_bytes(pids: Sequence[int]) -> int | None:
    """The resident memory of these processes together (VmRSS); None off Linux."""
    total = 0
    for pid in pids:
        try:
            text = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            return None
        for line in text.splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1]) * 1024
                break
    return total


def format_overload(rows: Sequence[Overload]) -> str:
    """One line a load, each goal with its verdict."""
    if not rows:
        return ""
    lines = [
        f"overload: open loop, {rows[0].seconds:.0f} s a load, 200 ms deadline, against the "
        f"closed-loop saturation rate of the same server in this run "
        f"({rows[0].saturation:,.0f} calls/s)",
    ]
    for row in rows:
        verdict = {
            name: {True: "met", False: "MISSED", None: "-"}[met]
            for name, met in row.verdicts().items()
        }
        memory = row.memory_ratio
        before = "-" if row.memory_before is None else f"{row.memory_before / 2**20:,.0f} MiB"
        after = "-" if row.memory_after is None else f"{row.memory_after / 2**20:,.0f} MiB"
        short = " (the generator fell short)" if row.offered < row.asked * SHORTFALL else ""
        lines.append(
            f"  {row.multiple:g}x: offered {row.offered:,.0f} calls/s{short}; completed "
            f"{row.completed_per_second:,.0f}/s = {row.completed_ratio:.2f} of saturation "
            f"(>= {COMPLETED_GOAL} {verdict['completed']}); refused {row.refused:,}, p99 "
            f"{row.refusal_p99_ms:,.1f} ms (<= {REFUSAL_P99_GOAL_MS:g} ms "
            f"{verdict['refusal_p99']}); memory {before} before, {after} {row.settle:g} s "
            f"after = {'-' if memory is None else f'{memory:.2f}'} (<= {MEMORY_GOAL} "
            f"{verdict['memory']})"
        )
        busy = row.server_cpus
        lines.append(
            "       calls by status: "
            + ", ".join(f"{k} {v:,}" for k, v in row.statuses.items())
            + ("" if busy is None else f"; server busy {busy:.2f} CPUs")
        )
    return "\n".join(lines)
