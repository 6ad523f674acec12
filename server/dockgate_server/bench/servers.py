"""Servers a benchmark starts itself: `dockgate serve` and the bare baseline, on 127.0.0.1.

Each is a subprocess on ephemeral ports that writes a ready file once it serves; the processes'
CPU time (the parent and every worker, from /proc) is read around each measured phase, so a report
can say what one call cost the server, apart from what it cost the load generator; Dockgate's
decision-cache counters are read from its metrics port. `pin` puts processes on given CPUs, so
that a load generator and a server on one machine do not take turns on the same core.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["LocalServer", "cpu_seconds", "pin", "pin_apart", "start_baseline", "start_dockgate"]

_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


@dataclass
class LocalServer:
    name: str
    process: subprocess.Popen[bytes]
    folder: Path
    decision_port: int
    admin_port: int | None
    pids: list[int] = field(default_factory=list)
    """the process and its workers"""
    token: str | None = None
    metrics_port: int | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.decision_port}"

    @property
    def admin(self) -> str | None:
        return f"127.0.0.1:{self.admin_port}" if self.admin_port else None

    def cpu_seconds(self) -> float | None:
        return cpu_seconds(self.pids)

    def cache_counts(self) -> tuple[int, int] | None:
        """Decision-cache hits and misses so far, summed over the workers (None: no metrics)."""
        if not self.metrics_port:
            return None
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        try:
            with urllib.request.urlopen(url, timeout=5) as answer:
                text = answer.read().decode()
        except OSError:
            return None
        found = {"dockgate_cache_hits_total": 0.0, "dockgate_cache_misses_total": 0.0}
        for line in text.splitlines():
            name, _, value = line.partition(" ")
            if name in found:
                found[name] = float(value)
        return int(found["dockgate_cache_hits_total"]), int(found["dockgate_cache_misses_total"])

    def stop(self, timeout: float = 15.0) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.folder, ignore_errors=True)


def start_dockgate(
    *,
    workers: int = 1,
    cache_size: int | None = None,
    sample: bool = False,
    store: str | None = None,
) -> LocalServer:
    """`dockgate serve` on 127.0.0.1:0, a new store (empty unless `sample`), a fresh token.

    `store`: the store's path or URL (`--store`, a PostgreSQL database several servers share);
    None: a new SQLite store in the server's own folder."""
    folder = Path(tempfile.mkdtemp(prefix="dockgate-bench-serve-"))
    token = secrets.token_urlsafe(24)
    command = [
        sys.executable,
        "-m",
        "dockgate_server.cli",
        "serve",
        "--data-dir",
        str(folder),
        "--listen",
        "127.0.0.1:0",
        "--admin-listen",
        "127.0.0.1:0",
        "--metrics-listen",
        "127.0.0.1:0",
        "--workers",
        str(max(1, workers)),
        "--log-level",
        "warning",
        "--ready-file",
        str(folder / "ready.json"),
        *([] if sample else ["--no-sample"]),
        *([] if cache_size is None else ["--cache-size", str(cache_size)]),
        *([] if store is None else ["--store", store]),
    ]
    environment = {**os.environ, "DOCKGATE_ADMIN_TOKEN": token}
    server = _start("dockgate", command, folder, environment)
    server.token = token
    return server


def start_baseline(*, workers: int = 1, revision: int = 1) -> LocalServer:
    """The bare grpcio server of `dockgate_server.bench.baseline`."""
    folder = Path(tempfile.mkdtemp(prefix="dockgate-bench-bare-"))
    command = [
        sys.executable,
        "-m",
        "dockgate_server.bench.baseline",
        "--listen",
        "127.0.0.1:0",
        "--workers",
        str(max(1, workers)),
        "--revision",
        str(revision),
        "--ready-file",
        str(folder / "ready.json"),
    ]
    return _start("baseline", command, folder, dict(os.environ))


def pin_apart(servers: list[LocalServer]) -> set[int] | None:
    """This process (the load generator) on the first CPU it may use, `servers` on the others.
    Returns the CPUs this process had (to give back with `pin`); None where there are fewer than
    two, and nothing is pinned."""
    try:
        cpus = os.sched_getaffinity(0)
    except (OSError, AttributeError):
        return None
    if len(cpus) < 2:
        return None
    first = min(cpus)
    pin([os.getpid()], {first})
    for server in servers:
        pin(server.pids, cpus - {first})
    return cpus


def pin(pids: list[int], cpus: set[int]) -> None:
    """Put every thread of these processes on `cpus` (threads made later inherit it); nothing
    where the system cannot."""
    for pid in pids:
        try:
            threads = [int(name) for name in os.listdir(f"/proc/{pid}/task")]
        except OSError:
            threads = [pid]
        for thread in threads:
            with contextlib.suppress(OSError, AttributeError):
                os.sched_setaffinity(thread, cpus)


def cpu_seconds(pids: list[int]) -> float | None:
    """User plus system CPU time of these processes (all their threads); None off Linux."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return None
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
    return total / _TICKS


def _start(
    name: str, command: list[str], folder: Path, environment: dict[str, str], timeout: float = 60
) -> LocalServer:
    ready = folder / "ready.json"
    with (folder / "server.log").open("ab") as log:  # the child keeps its own copy
        process = subprocess.Popen(command, env=environment, stdout=log, stderr=log)
    deadline = time.monotonic() + timeout
    while not ready.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            process.wait()
            output = (folder / "server.log").read_text(errors="replace")
            shutil.rmtree(folder, ignore_errors=True)
            raise RuntimeError(f"the {name} server did not start: {output.strip()[-2000:]}")
        time.sleep(0.05)
    ports = json.loads(ready.read_text())
    workers = [int(pid) for pid in ports.get("workers", [])]
    return LocalServer(
        name,
        process,
        folder,
        int(ports["decision_port"]),
        ports.get("admin_port"),
        [process.pid, *workers],
        metrics_port=ports.get("metrics_port"),
    )
