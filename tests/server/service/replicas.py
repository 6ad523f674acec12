"""Several `dockgate serve` replicas on one PostgreSQL database, and the probes the tests use.

Each replica is a real process on ephemeral 127.0.0.1 ports with its own data folder; the first
one started seeds the sample fleet (started alone, so two replicas never both seed it).
"""

from __future__ import annotations

import base64
import contextlib
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import grpc
from envoy.service.auth.v3 import external_auth_pb2, external_auth_pb2_grpc
from grpc_health.v1 import health_pb2

from tests.server.service.conftest import RunningServer, start_server

__all__ = [
    "ACCOUNT",
    "ADAPTERS",
    "SETTLE",
    "envoy_status",
    "health_status",
    "replicas",
    "scrape",
    "settle",
]

T = TypeVar("T")

ACCOUNT = "111122223333"
ADAPTERS = ("--envoy", "--registry-account", ACCOUNT, "--registry-region", "us-east-1")
"""Envoy's ext_authz on each decision port: a login password checked from the replica's own
snapshot, as a registry proxy beside it would"""
SETTLE = 30.0
"""seconds a poll may take before the test gives up: a bound on liveness, not a latency check"""


@contextlib.contextmanager
def replicas(
    root: Path, url: str, *extra: str, count: int = 3, seed: bool = True
) -> Iterator[list[RunningServer]]:
    """`count` replicas serving `url`, stopped (SIGTERM, then SIGKILL) when the block ends."""
    running: list[RunningServer] = []
    try:
        for number in range(count):
            folder = root / f"replica-{number}"
            folder.mkdir()
            # the first replica seeds a new store; the others find it seeded
            running.append(start_server(folder, "--store", url, *extra, seed=seed and not number))
        yield running
    finally:
        for server in running:
            with contextlib.suppress(Exception):
                server.stop(timeout=20)
            if server.process.poll() is None:
                server.process.kill()
                server.process.wait()


def settle(ask: Callable[[], T], done: Callable[[T], bool], what: str) -> T:
    """Ask until `done` holds of the answer, at most SETTLE seconds; fail naming `what`."""
    deadline = time.monotonic() + SETTLE
    answer = ask()
    while not done(answer):
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: still {answer!r} after {SETTLE:g} s")
        time.sleep(0.02)
        answer = ask()
    return answer


def envoy_status(server: RunningServer, password: str, path: str, method: str = "GET") -> int:
    """The HTTP status the replica's ext_authz tells Envoy to answer for this registry call."""
    credentials = base64.b64encode(f"AWS:{password}".encode()).decode()
    request = external_auth_pb2.CheckRequest()
    http = request.attributes.request.http
    http.method = method
    http.path = path
    http.host = "registry.example"
    http.headers["authorization"] = f"Basic {credentials}"
    request.attributes.source.address.socket_address.address = "127.0.0.1"
    with grpc.insecure_channel(server.decision) as channel:
        response = external_auth_pb2_grpc.AuthorizationStub(channel).Check(request, timeout=10)
    if response.HasField("ok_response"):
        return 200
    return int(response.denied_response.status.code)


def health_status(server: RunningServer, service: str = "") -> str:
    """The decision port's health of `service` ("" is the whole server): SERVING, NOT_SERVING."""
    with grpc.insecure_channel(server.decision) as channel:
        check: grpc.UnaryUnaryMultiCallable[
            health_pb2.HealthCheckRequest, health_pb2.HealthCheckResponse
        ] = channel.unary_unary(
            "/grpc.health.v1.Health/Check",
            request_serializer=health_pb2.HealthCheckRequest.SerializeToString,
            response_deserializer=health_pb2.HealthCheckResponse.FromString,
        )
        answer = check(health_pb2.HealthCheckRequest(service=service), timeout=10)
    return str(health_pb2.HealthCheckResponse.ServingStatus.Name(answer.status))


def scrape(server: RunningServer, name: str) -> float | None:
    """The value of one unlabelled metric on the replica's metrics port."""
    url = f"http://127.0.0.1:{server.metrics_port}/metrics"
    with urllib.request.urlopen(url, timeout=10) as answer:
        text = answer.read().decode()
    for line in text.splitlines():
        found, _, value = line.partition(" ")
        if found == name:
            return float(value)
    return None
