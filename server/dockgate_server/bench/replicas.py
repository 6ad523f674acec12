"""`make bench-replicas`: three replicas on one PostgreSQL, the freshness and throughput goals.

Run: `python -m dockgate_server.bench.replicas` (about a minute). It starts a throw-away
PostgreSQL cluster (`bench.postgres_cluster`) and three `dockgate serve --store postgresql://…`
replicas on 127.0.0.1, loads a synthetic fleet through one of them, then:

- freshness: `--writes` SetRepositoryPolicy writes through replica 0, one after another; after
  each is acknowledged, `Authorize` with `at_least_revision` of its revision on all three at
  once. The time from the acknowledgement to each answer is how long the write took to become
  visible there; a write's figure is its slowest replica's. Every answer is checked to reflect
  the write (the policy alternates between allowing and denying one principal).
- throughput: the other replicas stop; a fourth `dockgate serve` on SQLite gets the same fleet;
  the same closed-loop `Authorize` load (`bench.harness.measure`) runs against the PostgreSQL
  replica and the SQLite server in turns, best of `--repeat`. The hot path never touches the
  store, so the ratio should be about one.

Each row prints its goal and whether it was met; nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import grpc

from dockgate.v1 import admin_pb2, admin_pb2_grpc, authorizer_pb2, authorizer_pb2_grpc
from dockgate_server.bench.fleet import FleetShape, synthetic_fleet
from dockgate_server.bench.harness import measure
from dockgate_server.bench.load import Phase
from dockgate_server.bench.postgres_cluster import PostgresCluster
from dockgate_server.bench.progress import Progress
from dockgate_server.bench.report import percentile
from dockgate_server.bench.scenario import MixShape, Scenario, build_scenario
from dockgate_server.bench.servers import LocalServer, pin, pin_apart, start_dockgate
from dockgate_server.store.bundle import fleet_to_bundle
from dockgate_server.store.model import Fleet

__all__ = ["main"]

_START_TIMEOUT = 60.0
_ADMIN_TIMEOUT = 300.0
_PULL = "ecr:BatchGetImage"


@dataclass(frozen=True, slots=True)
class Row:
    figure: str
    measured: float
    goal: str
    """`<= 20` (ms) or `>= 0.95` (a ratio)"""

    @property
    def met(self) -> bool:
        sign, bound = self.goal.split()
        return self.measured <= float(bound) if sign == "<=" else self.measured >= float(bound)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--writes", type=int, default=200, help="writes timed (default: 200)")
    parser.add_argument("--seconds", type=float, default=4.0, help="per throughput run")
    parser.add_argument("--warmup", type=float, default=1.0, help="before each throughput run")
    parser.add_argument("--repeat", type=int, default=3, help="throughput runs; the best counts")
    parser.add_argument("--concurrency", type=int, default=16, help="calls in flight")
    parser.add_argument("--connections", type=int, default=4, help="HTTP/2 connections")
    parser.add_argument("--report", metavar="PATH", help="write every figure here as JSON")
    arguments = parser.parse_args(argv)
    progress = Progress()
    fleet = synthetic_fleet(FleetShape(1000, 200, 40, groups=20))
    progress.note("starting a throw-away PostgreSQL cluster")
    with PostgresCluster() as cluster:
        url = cluster.create_database()
        servers: list[LocalServer] = []
        try:
            progress.note("starting three replicas on PostgreSQL")
            servers = [start_dockgate(store=url) for _ in range(3)]
            revision = _load(servers[0], fleet)
            freshness = asyncio.run(_freshness(servers, fleet, revision, arguments.writes))
            # the writer and the third replica stop: the measured one runs beside nothing else
            # of Dockgate's, as the SQLite server will
            measured = servers[1]
            for server in (servers[0], servers[2]):
                server.stop()
            servers = [measured]
            progress.note("starting the same server on SQLite")
            servers.append(start_dockgate())  # its store: store.sqlite3 in its own folder
            sqlite_revision = _load(servers[1], fleet)
            rates = _throughput(
                arguments,
                postgresql=measured,
                sqlite=servers[1],
                fleet=fleet,
                revisions=(revision, sqlite_revision),
                progress=progress,
            )
        finally:
            for server in servers:
                server.stop()
    progress.finish()
    slowest = freshness["slowest_ms"]
    rows = [
        Row("write visible on all three replicas, p50 (ms)", percentile(slowest, 50), "<= 20"),
        Row("write visible on all three replicas, p99 (ms)", percentile(slowest, 99), "<= 100"),
        Row(
            "decisions/s on PostgreSQL / on SQLite (ratio)",
            rates["postgresql"] / rates["sqlite"],
            ">= 0.95",
        ),
    ]
    print(_table(rows, freshness, rates))
    if arguments.report:
        report = {
            "rows": [
                {"figure": r.figure, "measured": r.measured, "goal": r.goal, "met": r.met}
                for r in rows
            ],
            "freshness": freshness,
            "decisions_per_second": rates,
        }
        Path(arguments.report).write_text(json.dumps(report, indent=2) + "\n")
    return 0


def _metadata(server: LocalServer) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {server.token}"),)


def _load(server: LocalServer, fleet: Fleet) -> int:
    request = admin_pb2.ImportBundleRequest(bundle=json.dumps(fleet_to_bundle(fleet)), replace=True)
    with grpc.insecure_channel(server.admin or "") as channel:
        written = admin_pb2_grpc.PolicyAdminStub(channel).ImportBundle(
            request, timeout=_ADMIN_TIMEOUT, metadata=_metadata(server)
        )
    return int(written.revision)


async def _freshness(
    servers: list[LocalServer], fleet: Fleet, loaded: int, writes: int
) -> dict[str, Any]:
    """Write through the first server; time each write's visibility on every server."""
    user = fleet.users[0]
    principal = f"arn:aws:iam::{user.account}:user{user.path}{user.name}"
    repository = fleet.repositories[0].arn
    channels = [grpc.aio.insecure_channel(server.address) for server in servers]
    admin_channel = grpc.aio.insecure_channel(servers[0].admin or "")
    try:
        admin = admin_pb2_grpc.PolicyAdminStub(admin_channel)
        deciders = [authorizer_pb2_grpc.AuthorizerStub(channel) for channel in channels]
        await _settle(deciders, principal, repository, loaded)
        per_replica: list[list[float]] = [[] for _ in servers]
        slowest: list[float] = []
        wrong = 0
        for index in range(writes):
            allow = index % 2 == 0
            request = admin_pb2.SetRepositoryPolicyRequest(
                arn=repository, policy=json.dumps(_policy(principal, allow))
            )
            written = await admin.SetRepositoryPolicy(
                request, timeout=_ADMIN_TIMEOUT, metadata=_metadata(servers[0])
            )
            acknowledged = time.perf_counter()
            answers = await _ask_all(deciders, principal, repository, written.revision)
            times = [(moment - acknowledged) * 1000 for moment, _ in answers]
            for seen, milliseconds in zip(per_replica, times, strict=True):
                seen.append(milliseconds)
            slowest.append(max(times))
            expected = (
                authorizer_pb2.OUTCOME_ALLOWED
                if allow
                else authorizer_pb2.OUTCOME_EXPLICITLY_DENIED
            )
            wrong += sum(
                answer.revision < written.revision or answer.outcome != expected
                for _, answer in answers
            )
    finally:
        for channel in [*channels, admin_channel]:
            await channel.close()
    return {
        "writes": writes,
        "slowest_ms": sorted(slowest),
        "p50_ms_by_replica": [percentile(sorted(seen), 50) for seen in per_replica],
        "p99_ms_by_replica": [percentile(sorted(seen), 99) for seen in per_replica],
        "answers_not_reflecting_the_write": wrong,
    }


async def _settle(
    deciders: list[authorizer_pb2_grpc.AuthorizerAsyncStub],
    principal: str,
    repository: str,
    revision: int,
) -> None:
    """Until every replica has compiled the loaded fleet (seconds, for a big one), before the
    clock starts."""
    deadline = time.monotonic() + _START_TIMEOUT
    while True:
        try:
            await _ask_all(deciders, principal, repository, revision)
            return
        except grpc.aio.AioRpcError as error:
            if error.code() is not grpc.StatusCode.FAILED_PRECONDITION:
                raise
            if time.monotonic() > deadline:
                raise


async def _ask_all(
    deciders: list[authorizer_pb2_grpc.AuthorizerAsyncStub],
    principal: str,
    repository: str,
    revision: int,
) -> list[tuple[float, authorizer_pb2.AuthorizeResponse]]:
    """`Authorize` at `revision` on every replica at once; when each answered, and what."""

    async def ask(
        decider: authorizer_pb2_grpc.AuthorizerAsyncStub,
    ) -> tuple[float, authorizer_pb2.AuthorizeResponse]:
        request = authorizer_pb2.AuthorizeRequest(
            principal=principal, action=_PULL, resource=repository, at_least_revision=revision
        )
        # the synthetic organization's SCP denies any call not made in us-east-1
        request.context["aws:RequestedRegion"].values.append("us-east-1")
        answer: authorizer_pb2.AuthorizeResponse = await decider.Authorize(request, timeout=10)
        return time.perf_counter(), answer

    return list(await asyncio.gather(*(ask(decider) for decider in deciders)))


def _policy(principal: str, allow: bool) -> dict[str, Any]:
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": f"bench{time.monotonic_ns()}",
                "Effect": "Allow" if allow else "Deny",
                "Principal": {"AWS": principal},
                "Action": _PULL,
            }
        ],
    }


def _throughput(
    arguments: argparse.Namespace,
    *,
    postgresql: LocalServer,
    sqlite: LocalServer,
    fleet: Fleet,
    revisions: tuple[int, int],
    progress: Progress,
) -> dict[str, float]:
    """Best closed-loop decisions a second of each server, the servers taking turns."""
    scenario = build_scenario(fleet, MixShape())
    # the load generator on one CPU, the servers on the others; this process's CPUs come back
    given = pin_apart([postgresql, sqlite])
    phase = Phase("", 0, arguments.concurrency, arguments.seconds)
    best = {"postgresql": 0.0, "sqlite": 0.0}
    targets = [("postgresql", postgresql, revisions[0]), ("sqlite", sqlite, revisions[1])]
    for attempt in range(max(1, arguments.repeat)):
        for name, server, revision in targets:
            labelled = replace(phase, label=name)
            rate = asyncio.run(
                _rate(arguments, server, scenario, labelled, revision=revision, progress=progress)
            )
            best[name] = max(best[name], rate)
            progress.note(f"{name}, run {attempt + 1}: {rate:,.0f} decisions/s")
    if given is not None:
        pin([os.getpid()], given)
    return best


async def _rate(
    arguments: argparse.Namespace,
    server: LocalServer,
    scenario: Scenario,
    phase: Phase,
    *,
    revision: int,
    progress: Progress,
) -> float:
    measured = await measure(
        server.address,
        scenario,
        phase,
        zipf=1.0,
        warmup=arguments.warmup,
        connections=arguments.connections,
        server=server,
        progress=progress,
        revision=revision,
    )
    return measured.result.decisions / max(measured.result.seconds, 1e-9)


def _table(rows: list[Row], freshness: dict[str, Any], rates: dict[str, float]) -> str:
    by_replica = ", ".join(
        f"{p50:.1f}/{p99:.1f}"
        for p50, p99 in zip(
            freshness["p50_ms_by_replica"], freshness["p99_ms_by_replica"], strict=True
        )
    )
    lines = [
        f"three replicas on one PostgreSQL; {freshness['writes']} writes through replica 0, "
        "each timed from its acknowledgement until Authorize answers at its revision",
        f"  p50/p99 ms by replica (0 is the writer): {by_replica}",
        f"  answers that did not reflect their write: "
        f"{freshness['answers_not_reflecting_the_write']}",
        f"  decisions/s: PostgreSQL replica {rates['postgresql']:,.0f}, "
        f"SQLite server {rates['sqlite']:,.0f}",
        f"{'figure':<52}{'measured':>10}{'goal':>10}",
    ]
    for row in rows:
        shown = f"{row.measured:.2f}" if "ratio" in row.figure else f"{row.measured:.1f}"
        lines.append(f"{row.figure:<52}{shown:>10}{row.goal:>10}  {'met' if row.met else 'MISSED'}")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
