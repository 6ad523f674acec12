"""Prometheus metrics: decisions by outcome, latency, cache, revision, compile time, staleness.

With several worker processes, each writes to a shared multiprocess directory and the parent
serves the sum; `PROMETHEUS_MULTIPROC_DIR` must be set before the workers fork.
"""

from __future__ import annotations

import os
import threading

from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    multiprocess,
    start_http_server,
)

__all__ = ["Metrics", "serve_metrics"]

_LATENCY_BUCKETS = (
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    1.0,
)


class Metrics:
    def __init__(self, registry: CollectorRegistry = REGISTRY) -> None:
        self.decisions = Counter(
            "dockgate_decisions", "Decisions made, by outcome", ["outcome"], registry=registry
        )
        self.latency = Histogram(
            "dockgate_decision_seconds",
            "Time to decide one request",
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self.cache_hits = Counter("dockgate_cache_hits", "Decision cache hits", registry=registry)
        self.cache_misses = Counter(
            "dockgate_cache_misses", "Decision cache misses", registry=registry
        )
        self.revision = Gauge(
            "dockgate_snapshot_revision",
            "Revision of the snapshot decisions read",
            multiprocess_mode="max",
            registry=registry,
        )
        self.compile_seconds = Gauge(
            "dockgate_snapshot_compile_seconds",
            "Time the last snapshot took to build",
            multiprocess_mode="max",
            registry=registry,
        )
        self.staleness = Gauge(
            "dockgate_store_staleness_seconds",
            "Seconds since this replica last confirmed its snapshot is the store's newest",
            multiprocess_mode="max",
            registry=registry,
        )
        self.errors = Counter(
            "dockgate_request_errors", "Requests refused, by status", ["code"], registry=registry
        )
        self._cache_seen = (0, 0)
        self._cache_lock = threading.Lock()
        self._outcomes: dict[str, Counter] = {}

    def count_decision(self, outcome: str, count: int = 1) -> None:
        """`count` decisions with this outcome (a batch counts each outcome once, not each item).
        Each outcome's labelled counter is looked up once: `labels()` takes a lock and builds a
        key, on every decision it would be a measurable share of a call."""
        counter = self._outcomes.get(outcome)
        if counter is None:
            counter = self._outcomes[outcome] = self.decisions.labels(outcome)
        counter.inc(count)

    def count_cache(self, hits: int, misses: int) -> None:
        """Add what the cache counted since the last call. Called from the request path and
        from the refresh thread: one at a time, and a late caller's older totals add nothing."""
        with self._cache_lock:
            seen_hits, seen_misses = self._cache_seen
            if hits > seen_hits:
                self.cache_hits.inc(hits - seen_hits)
            if misses > seen_misses:
                self.cache_misses.inc(misses - seen_misses)
            self._cache_seen = (max(hits, seen_hits), max(misses, seen_misses))


def serve_metrics(host: str, port: int) -> int:
    """Serve /metrics over HTTP; returns the port (for port 0)."""
    registry = None
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    server, _ = (
        start_http_server(port, addr=host, registry=registry)
        if registry
        else start_http_server(port, addr=host)
    )
    return int(server.server_port)
