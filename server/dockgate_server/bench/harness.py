"""`dockgate bench`: load a fleet, drive a server with a request mix, report and check its answers.

The steps: find the server (`--server`, or `--start` one here); load a synthetic fleet through the
admin API (or read the one it has, `--existing`); build the request mix and the in-process
engine's decision for every key; warm up, then measure, optionally the bare baseline too, with the
same load; print the figures and their ratios, check a sample of answers against the engine, and
write the JSON report and the picture.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import grpc

from dockgate.v1 import admin_pb2, admin_pb2_grpc, authorizer_pb2
from dockgate_server import __version__
from dockgate_server.bench.check import check_samples
from dockgate_server.bench.fleet import FleetShape, synthetic_fleet
from dockgate_server.bench.load import Load, Phase, encode_request
from dockgate_server.bench.options import TOKEN_VARIABLE, add_arguments
from dockgate_server.bench.progress import Progress
from dockgate_server.bench.report import Measured, figures, format_table, ratios, write_report
from dockgate_server.bench.scenario import MixShape, Scenario, build_scenario
from dockgate_server.bench.servers import (
    LocalServer,
    pin,
    pin_apart,
    start_baseline,
    start_dockgate,
)
from dockgate_server.bench.stream import KeyStream
from dockgate_server.policy.parse import load_json
from dockgate_server.store.bundle import bundle_to_fleet, fleet_to_bundle
from dockgate_server.store.model import Fleet

__all__ = ["Target", "connect", "load_fleet", "main", "measure", "run", "settle"]

_ADMIN_TIMEOUT = 300.0
_SETTLE_SECONDS = 60.0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="dockgate bench", description=__doc__)
    add_arguments(parser)
    return run(parser.parse_args(argv))


@dataclass
class Target:
    """Where the load goes, where its fleet is written, and the server if this run started it."""

    address: str
    admin: str | None
    token: str | None
    server: LocalServer | None = None


def run(arguments: argparse.Namespace) -> int:
    progress = Progress(enabled=not arguments.quiet)
    started = time.time()
    target = None
    baseline: LocalServer | None = None
    had: set[int] | None = None
    try:
        target = connect(arguments, progress)
        fleet, revision = load_fleet(arguments, target, progress)
        progress.note("building the request mix and the in-process engine's decisions")
        mix = MixShape(
            arguments.keys,
            arguments.push_share,
            arguments.cross_account_share,
            arguments.denied_share,
            arguments.seed,
        )
        scenario = build_scenario(fleet, mix)
        phase = _phase(arguments)
        if arguments.baseline:
            progress.note("starting the bare baseline")
            baseline = start_baseline(workers=arguments.workers, revision=revision)
        started_here = [server for server in (target.server, baseline) if server is not None]
        had = pin_apart(started_here) if arguments.pin else None
        if arguments.pin and had is None:
            progress.note("--pin: fewer than two CPUs, nothing pinned")
        runs = asyncio.run(
            _measure_all(
                arguments,
                target=target,
                baseline=baseline,
                scenario=scenario,
                phase=phase,
                revision=revision,
            )
        )
    except (RuntimeError, OSError, ValueError, grpc.RpcError) as problem:
        progress.finish()
        print(f"dockgate bench: {_message(problem)}", file=sys.stderr)
        return 2
    finally:
        if had is not None:
            pin([os.getpid()], had)
        if baseline is not None:
            baseline.stop()
        if target is not None and target.server is not None:
            target.server.stop()
    return _finish(
        arguments,
        started=started,
        revision=revision,
        scenario=scenario,
        runs=runs,
        pinned=had is not None,
    )


def connect(arguments: argparse.Namespace, progress: Progress) -> Target:
    if arguments.start:
        progress.note(f"starting dockgate serve ({arguments.workers} worker(s))")
        server = start_dockgate(
            workers=arguments.workers, cache_size=arguments.cache_size, sample=arguments.existing
        )
        return Target(server.address, server.admin, server.token, server)
    host = arguments.server.rpartition(":")[0]
    admin = arguments.admin or f"{host}:50052"
    return Target(arguments.server, admin, arguments.admin_token or os.environ.get(TOKEN_VARIABLE))


def load_fleet(
    arguments: argparse.Namespace, target: Target, progress: Progress
) -> tuple[Fleet, int]:
    """The fleet the server decides on, and the revision it reached with it."""
    if not target.token or not target.admin:
        raise RuntimeError(
            f"the admin API is needed to load or read the fleet: give --admin-token or "
            f"${TOKEN_VARIABLE}"
        )
    metadata = (("authorization", f"Bearer {target.token}"),)
    with grpc.insecure_channel(target.admin) as channel:
        admin = admin_pb2_grpc.PolicyAdminStub(channel)
        if arguments.existing:
            progress.note(f"reading the fleet of {target.admin} (ExportBundle)")
            exported = admin.ExportBundle(
                admin_pb2.ExportBundleRequest(), timeout=_ADMIN_TIMEOUT, metadata=metadata
            )
            fleet = bundle_to_fleet(load_json(exported.bundle))
            revision = admin.GetRevision(
                admin_pb2.GetRevisionRequest(), timeout=_ADMIN_TIMEOUT, metadata=metadata
            ).revision
            return fleet, revision
        shape = FleetShape(
            arguments.repositories,
            arguments.principals,
            arguments.managed_policies,
            groups=arguments.groups,
        )
        fleet = synthetic_fleet(shape, seed=arguments.seed)
        progress.note(f"loading a synthetic fleet into {target.admin} (ImportBundle)")
        request = admin_pb2.ImportBundleRequest(
            bundle=json.dumps(fleet_to_bundle(fleet)), replace=True
        )
        written = admin.ImportBundle(request, timeout=_ADMIN_TIMEOUT, metadata=metadata)
        return fleet, written.revision


async def measure(
    address: str,
    scenario: Scenario,
    phase: Phase,
    *,
    zipf: float,
    warmup: float,
    connections: int,
    server: LocalServer | None = None,
    progress: Progress | None = None,
    revision: int = 0,
    prime: bool = False,
) -> Measured:
    """Warm up, then measure one phase against `address`; with the server's CPU time and cache
    counters when this run started it. With `revision`, first wait until every connection's
    server has reached it; with `prime`, ask every key once before the warm-up."""
    requests = [encode_request(key) for key in scenario.keys]
    stream = KeyStream(scenario, zipf)
    async with Load(address, requests, connections=connections, progress=progress) as load:
        if revision:
            await settle(load, requests[0], revision)
        if prime:
            await load.prime()
        if warmup > 0:
            warm = replace(
                phase, label=f"{phase.label}: warm-up", duration=warmup, count=None, check=0
            )
            await load.run(stream, warm)
        cpu_before = server.cpu_seconds() if server else None
        cache_before = server.cache_counts() if server else None
        result = await load.run(stream, phase)
        cpu_after = server.cpu_seconds() if server else None
        cache_after = server.cache_counts() if server else None
    cpu = cpu_after - cpu_before if cpu_before is not None and cpu_after is not None else None
    cache = None
    if cache_before is not None and cache_after is not None:
        cache = (cache_after[0] - cache_before[0], cache_after[1] - cache_before[1])
    return Measured(result, cpu, cache)


async def settle(load: Load, request: bytes, revision: int) -> None:
    """Ask on every connection with `at_least_revision` until its server has the fleet."""
    wanted = authorizer_pb2.AuthorizeRequest.FromString(request)
    wanted.at_least_revision = revision
    deadline = time.monotonic() + _SETTLE_SECONDS
    for connection in range(load.connections):
        while True:
            try:
                await load.call_once(connection, wanted.SerializeToString())
                break
            except grpc.aio.AioRpcError as error:
                retry = (grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.UNAVAILABLE)
                if error.code() not in retry or time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.1)


async def _measure_all(
    arguments: argparse.Namespace,
    *,
    target: Target,
    baseline: LocalServer | None,
    scenario: Scenario,
    phase: Phase,
    revision: int,
) -> dict[str, Measured]:
    progress = Progress(enabled=not arguments.quiet)
    options = {
        "zipf": arguments.zipf,
        "warmup": arguments.warmup,
        "connections": arguments.connections,
        "progress": progress,
    }
    runs = {}
    if baseline is not None:
        bare = replace(phase, label=f"baseline: {phase.label}", check=0)
        runs["baseline"] = await measure(
            baseline.address, scenario, bare, server=baseline, **options
        )
    mine = replace(phase, label=f"dockgate: {phase.label}")
    runs["dockgate"] = await measure(
        target.address,
        scenario,
        mine,
        server=target.server,
        revision=revision,
        prime=arguments.prime,
        **options,
    )
    return runs


def _phase(arguments: argparse.Namespace) -> Phase:
    batch = arguments.batch_size if arguments.mode == "batch" else 0
    if not 0 <= batch <= 1000:
        raise ValueError("--batch-size must be 1 to 1000")
    label = f"BatchAuthorize x{batch}" if batch else "Authorize"
    return Phase(
        label,
        batch,
        max(1, arguments.concurrency),
        None if arguments.count else arguments.duration,
        arguments.count,
        arguments.rate,
        arguments.timeout,
        max(0, arguments.check),
    )


def _finish(
    arguments: argparse.Namespace,
    *,
    started: float,
    revision: int,
    scenario: Scenario,
    runs: dict[str, Measured],
    pinned: bool,
) -> int:
    mine = runs["dockgate"].result
    dockgate = figures(runs["dockgate"], connections=arguments.connections)
    baseline = None
    if "baseline" in runs:
        baseline = figures(runs["baseline"], connections=arguments.connections)
    check = check_samples(
        mine.samples, scenario.keys, batch=bool(mine.phase.batch_size), revision=revision
    )
    report: dict[str, Any] = {
        "format": "dockgate-bench/1",
        "version": __version__,
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started)),
        "seconds": round(time.time() - started, 1),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "grpcio": grpc.__version__,
            "platform": platform.platform(),
        },
        "options": {k: v for k, v in vars(arguments).items() if k not in {"admin_token", "run"}},
        "target": {
            "address": "started here" if arguments.start else arguments.server,
            "workers": arguments.workers if arguments.start else None,
            "cache_size": arguments.cache_size if arguments.start else None,
            "revision": revision,
            "pinned": pinned,
        },
        "scenario": {
            "fleet": dict(scenario.fleet),
            "keys": len(scenario.keys),
            "zipf": arguments.zipf,
            "shares": scenario.shares(),
        },
        "dockgate": dockgate,
        "baseline": baseline,
        "ratios": ratios(dockgate, baseline) if baseline else None,
        "check": check,
    }
    _print_summary(report, arguments)
    if arguments.report:
        write_report(Path(arguments.report), report)
        print(f"report: {arguments.report}")
    if arguments.plot:
        from dockgate_server.bench.plot import write_plot  # noqa: PLC0415 - matplotlib only here

        picture = {"dockgate": dockgate, **({"baseline": baseline} if baseline else {})}
        write_plot(Path(arguments.plot), picture, _title(report))
        print(f"picture: {arguments.plot}")
    if check["disagreements"] or (arguments.check and not check["decisions_checked"]):
        return 1
    return 0


def _print_summary(report: dict[str, Any], arguments: argparse.Namespace) -> None:
    fleet, dockgate = report["scenario"]["fleet"], report["dockgate"]
    shares = report["scenario"]["shares"]
    print(_title(report))
    print(
        "fleet: "
        + ", ".join(f"{value:,} {name.replace('_', ' ')}" for name, value in fleet.items())
    )
    print(
        f"mix: {report['scenario']['keys']:,} keys, Zipf s={arguments.zipf:g}; "
        f"push {shares['push']:.0%}, cross-account {shares['cross_account']:.0%}, "
        f"denied {shares['denied']:.0%}; keys sent {dockgate['keys']['sent']:,} "
        f"({dockgate['keys']['distinct']:,} distinct)"
    )
    print(format_table(dockgate, report["baseline"]))
    errors = dockgate["errors"]
    print("errors by status: " + (", ".join(f"{k} {v:,}" for k, v in errors.items()) or "none"))
    if dockgate["cache_hit_share"] is not None:
        print(f"decision cache hits: {dockgate['cache_hit_share']:.1%} of lookups")
    check = report["check"]
    if arguments.check:
        print(
            f"answers checked against the in-process engine: {check['agreed']:,} of "
            f"{check['decisions_checked']:,} decisions agree"
            + (
                f" ({check['other_revision']} at another revision)"
                if check["other_revision"]
                else ""
            )
        )
        for disagreement in check["disagreements"]:
            print(f"  disagreement: {json.dumps(disagreement)}")


def _title(report: dict[str, Any]) -> str:
    dockgate = report["dockgate"]
    what = (
        f"BatchAuthorize of {dockgate['batch_size']}"
        if dockgate["mode"] == "batch"
        else "unary Authorize"
    )
    how = (
        f"offered {dockgate['offered_calls_per_second']:,.0f} calls/s"
        if dockgate["offered_calls_per_second"]
        else "closed loop"
    )
    return (
        f"dockgate bench: {what}, {how}, {dockgate['concurrency']} in flight over "
        f"{dockgate['connections']} connections, {dockgate['seconds']:.1f} s"
    )


def _message(problem: BaseException) -> str:
    if isinstance(problem, grpc.RpcError):
        return f"{problem.code().name}: {problem.details()}"
    return str(problem)


if __name__ == "__main__":
    raise SystemExit(main())
