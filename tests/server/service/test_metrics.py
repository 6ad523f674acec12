"""Prometheus metrics over HTTP: decisions by outcome, latency, cache hits and misses, revision."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families

import dockgate
from dockgate import AdminClient, Client, Outcome
from tests.server.service.conftest import RunningServer, start_server

ACCOUNT = "111122223333"
READER = f"arn:aws:iam::{ACCOUNT}:user/reader"
APP = f"arn:aws:ecr:us-east-1:{ACCOUNT}:repository/team-a/app"


def _scrape(running: RunningServer) -> dict[str, Metric]:
    assert running.metrics_port is not None
    url = f"http://127.0.0.1:{running.metrics_port}/metrics"
    with urllib.request.urlopen(url, timeout=10) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain")
        text = response.read().decode("utf-8")
    return {family.name: family for family in text_string_to_metric_families(text)}


def _value(metrics: dict[str, Metric], family: str, sample: str, **labels: str) -> float | None:
    for found in metrics[family].samples:
        if found.name == sample and all(found.labels.get(k) == v for k, v in labels.items()):
            return float(found.value)
    return None


def test_metrics_show_decisions_latency_cache_and_revision(server: RunningServer) -> None:
    with Client(server.decision) as client:
        for _ in range(3):  # one miss, then two hits
            assert client.authorize(READER, "ecr:BatchGetImage", APP).allowed
        denied = client.authorize(READER, "ecr:PutImage", APP)
        assert denied.outcome is Outcome.IMPLICITLY_DENIED
        forbidden = client.authorize(READER, "ecr:DeleteRepository", APP)  # the SCP denies it
        assert forbidden.outcome is Outcome.EXPLICITLY_DENIED
        with pytest.raises(dockgate.InvalidRequestError):
            client.authorize("not-a-principal", "ecr:BatchGetImage", APP)

    metrics = _scrape(server)

    decisions = metrics["dockgate_decisions"]
    assert decisions.type == "counter"
    by_outcome = {
        s.labels["outcome"]: s.value for s in decisions.samples if s.name.endswith("_total")
    }
    assert by_outcome == {"Allowed": 3, "ImplicitlyDenied": 1, "ExplicitlyDenied": 1}

    latency = metrics["dockgate_decision_seconds"]
    assert latency.type == "histogram"
    assert _value(metrics, "dockgate_decision_seconds", "dockgate_decision_seconds_count") == 5
    buckets = [s for s in latency.samples if s.name == "dockgate_decision_seconds_bucket"]
    assert {s.labels["le"] for s in buckets} >= {"0.001", "0.1", "+Inf"}
    assert (
        _value(metrics, "dockgate_decision_seconds", "dockgate_decision_seconds_bucket", le="+Inf")
        == 5
    )
    seconds = _value(metrics, "dockgate_decision_seconds", "dockgate_decision_seconds_sum")
    assert seconds is not None
    assert seconds > 0

    assert _value(metrics, "dockgate_cache_hits", "dockgate_cache_hits_total") == 2
    misses = _value(metrics, "dockgate_cache_misses", "dockgate_cache_misses_total")
    assert misses is not None
    assert misses >= 3

    refused = _value(
        metrics, "dockgate_request_errors", "dockgate_request_errors_total", code="INVALID_ARGUMENT"
    )
    assert refused == 1

    compile_seconds = _value(
        metrics, "dockgate_snapshot_compile_seconds", "dockgate_snapshot_compile_seconds"
    )
    assert compile_seconds is not None
    assert compile_seconds >= 0

    with AdminClient(server.admin, server.token) as admin:
        assert _revision(metrics) == admin.revision()
        written = admin.put_repository(f"arn:aws:ecr:us-east-1:{ACCOUNT}:repository/metrics/app")
    deadline = time.monotonic() + 5  # the gauge moves when the snapshot is swapped
    while _revision(_scrape(server)) != written and time.monotonic() < deadline:
        time.sleep(0.02)
    assert _revision(_scrape(server)) == written


def _revision(metrics: dict[str, Metric]) -> float | None:
    return _value(metrics, "dockgate_snapshot_revision", "dockgate_snapshot_revision")


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[RunningServer]:
    running = start_server(tmp_path, "--workers", "2")
    try:
        yield running
    finally:
        if running.process.poll() is None:
            try:
                running.stop(signal.SIGTERM, timeout=15)
            except subprocess.TimeoutExpired:
                for pid in (running.process.pid, *running.workers):
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
                running.process.wait()


def test_the_parent_serves_the_sum_over_workers(workers: RunningServer) -> None:
    asked = 20
    for _ in range(asked):  # a client each: a new connection each, spread over the workers
        with Client(workers.decision) as client:
            assert client.authorize(READER, "ecr:BatchGetImage", APP).allowed
    metrics = _scrape(workers)
    assert (
        _value(metrics, "dockgate_decisions", "dockgate_decisions_total", outcome="Allowed")
        == asked
    )
    assert _value(metrics, "dockgate_decision_seconds", "dockgate_decision_seconds_count") == asked
    hits = _value(metrics, "dockgate_cache_hits", "dockgate_cache_hits_total") or 0
    misses = _value(metrics, "dockgate_cache_misses", "dockgate_cache_misses_total") or 0
    assert hits + misses == asked
    assert 1 <= misses <= len(workers.workers)  # one miss per worker that answered
    with AdminClient(workers.admin, workers.token) as admin:
        assert _revision(metrics) == admin.revision()
    assert workers.stop() == 0
