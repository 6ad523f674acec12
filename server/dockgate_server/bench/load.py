"""The load generator: `Authorize` or `BatchAuthorize` calls on a decision port, timed one by one.

Closed loop (`rate` None): `concurrency` callers, each sending its next call when the last one
answers, for a duration or a count. Open loop: calls offered at `rate` a second whatever the
answers (at most `concurrency` in flight), each timed from when it was due, so a server that falls
behind shows it in the latency rather than in a quietly lower rate.

Requests are encoded once, before the clock starts; a batch is the concatenation of its items'
encodings. Answers are not decoded on the hot path: a reservoir sample of them is kept for the
agreement check. Both the Dockgate server and the bare baseline are driven by this same code.
"""

from __future__ import annotations

import asyncio
import random
import time
from array import array
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from types import TracebackType

import grpc

from dockgate.v1 import authorizer_pb2
from dockgate_server.bench.progress import Progress
from dockgate_server.bench.scenario import Key
from dockgate_server.bench.stream import KeyStream

__all__ = ["Load", "LoadResult", "Phase", "Sample", "encode_request"]

_AUTHORIZE = "/dockgate.v1.Authorizer/Authorize"
_BATCH = "/dockgate.v1.Authorizer/BatchAuthorize"
_CHUNK = 1024
"""Keys taken from the stream at a time."""


@dataclass(frozen=True, slots=True)
class Phase:
    label: str
    batch_size: int = 0
    """0: unary `Authorize`; N: `BatchAuthorize` of N items"""
    concurrency: int = 16
    duration: float | None = 5.0
    count: int | None = None
    """calls; when given, the phase ends after that many rather than after `duration`"""
    rate: float | None = None
    """calls offered a second (open loop); None: as fast as answers come (closed loop)"""
    timeout: float = 5.0
    check: int = 0
    """answers kept (a uniform sample) for the agreement check"""


@dataclass(frozen=True, slots=True)
class Sample:
    keys: tuple[int, ...]
    answer: bytes
    """the encoded `AuthorizeResponse`, or `BatchAuthorizeResponse`"""


@dataclass
class LoadResult:
    phase: Phase
    seconds: float = 0.0
    calls: int = 0
    decisions: int = 0
    latencies: array[float] = field(default_factory=lambda: array("d"))
    """seconds, one per call, in the order they finished"""
    finished: array[float] = field(default_factory=lambda: array("d"))
    """seconds from the start of the phase at which each call finished"""
    errors: Counter[str] = field(default_factory=Counter)
    """failed calls by status code"""
    keys_sent: array[int] = field(default_factory=lambda: array("l"))
    samples: list[Sample] = field(default_factory=list)


def encode_request(key: Key) -> bytes:
    request = authorizer_pb2.AuthorizeRequest(
        principal=key.principal, action=key.action, resource=key.resource
    )
    for name, value in key.context.items():
        request.context[name].values.append(value)
    return request.SerializeToString()


class Load:
    """Calls on one address over `connections` HTTP/2 connections (each its own channel)."""

    def __init__(
        self,
        address: str,
        requests: Sequence[bytes],
        *,
        connections: int = 4,
        progress: Progress | None = None,
    ) -> None:
        self.address = address
        self.requests = requests
        # a batch item is field 1 of BatchAuthorizeRequest: its tag, its length, its bytes
        self.items = [b"\x0a" + _varint(len(body)) + body for body in requests]
        self.connections = max(1, connections)
        self.progress = progress or Progress(enabled=False)
        self._channels: list[grpc.aio.Channel] = []

    async def __aenter__(self) -> Load:
        options = [("grpc.use_local_subchannel_pool", 1)]  # one TCP connection per channel
        self._channels = [
            grpc.aio.insecure_channel(self.address, options=[*options, ("dockgate.bench", i)])
            for i in range(self.connections)
        ]
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        for channel in self._channels:
            await channel.close()

    async def run(self, stream: KeyStream, phase: Phase) -> LoadResult:
        return await _Run(self, stream, phase).go()

    async def prime(self, batch_size: int = 100, timeout: float = 60.0) -> None:
        """Ask every key once, in `BatchAuthorize` calls: a decision cache's steady state for a
        key pool this size."""
        channel = self._channels[0]
        call: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(_BATCH)
        for start in range(0, len(self.items), batch_size):
            await call(b"".join(self.items[start : start + batch_size]), timeout=timeout)

    async def call_once(self, connection: int, body: bytes, timeout: float = 5.0) -> bytes:
        """One `Authorize` on one connection, outside any phase (raises `AioRpcError`)."""
        channel = self._channels[connection % len(self._channels)]
        call: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(_AUTHORIZE)
        return await call(body, timeout=timeout)


class _Run:
    """One phase: its callers, its clock and what they record."""

    def __init__(self, load: Load, stream: KeyStream, phase: Phase) -> None:
        self.load = load
        self.stream = stream
        self.phase = phase
        self.result = LoadResult(phase)
        method = _BATCH if phase.batch_size else _AUTHORIZE
        self.calls: list[grpc.aio.UnaryUnaryMultiCallable[bytes, bytes]] = [
            channel.unary_unary(method) for channel in load._channels
        ]
        self.size = max(1, phase.batch_size)
        self.pending: list[int] = []
        self.issued = 0
        self.started = 0.0
        self.deadline = float("inf")
        self.seen = 0
        self.rng = random.Random(5)

    async def go(self) -> LoadResult:
        phase = self.phase
        self.load.progress.start(phase.label)
        self.started = time.perf_counter()
        if phase.count is None:
            self.deadline = self.started + (phase.duration or 0.0)
        ticker = asyncio.create_task(self._tick())
        try:
            if phase.rate is None:
                await asyncio.gather(*(self._caller(i) for i in range(max(1, phase.concurrency))))
            else:
                await self._offer(phase.rate)
        finally:
            ticker.cancel()
        result = self.result
        result.seconds = max(result.finished, default=time.perf_counter() - self.started)
        self._draw()
        self.load.progress.finish()
        return result

    def _more(self) -> bool:
        if self.phase.count is not None:
            return self.issued < self.phase.count
        return time.perf_counter() < self.deadline

    def _next_keys(self) -> list[int]:
        while len(self.pending) < self.size:
            self.pending.extend(self.stream.take(_CHUNK))
        keys, self.pending = self.pending[: self.size], self.pending[self.size :]
        return keys

    async def _caller(self, number: int) -> None:
        call = self.calls[number % len(self.calls)]
        while self._more():
            self.issued += 1
            await self._call(call, self._next_keys(), time.perf_counter())

    async def _offer(self, rate: float) -> None:
        """Open loop: call number i is due at start + i / rate."""
        interval = 1.0 / rate
        room = asyncio.Semaphore(max(1, self.phase.concurrency))
        running: set[asyncio.Task[None]] = set()

        async def one(call: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes], due: float) -> None:
            try:
                await self._call(call, self._next_keys(), due)
            finally:
                room.release()

        while self._more():
            due = self.started + self.issued * interval
            wait = due - time.perf_counter()
            if wait > 0:
                await asyncio.sleep(wait)
                continue
            await room.acquire()
            task = asyncio.create_task(one(self.calls[self.issued % len(self.calls)], due))
            running.add(task)
            task.add_done_callback(running.discard)
            self.issued += 1
        if running:
            await asyncio.gather(*running)

    async def _call(
        self, call: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes], keys: list[int], since: float
    ) -> None:
        load, result = self.load, self.result
        body = (
            b"".join(load.items[k] for k in keys)
            if self.phase.batch_size
            else load.requests[keys[0]]
        )
        answer: bytes | None = None
        try:
            answer = await call(body, timeout=self.phase.timeout)
        except grpc.aio.AioRpcError as error:
            result.errors[error.code().name] += 1
        except Exception as error:  # a client-side failure is counted, never hidden
            result.errors[f"CLIENT_{type(error).__name__}"] += 1
        ended = time.perf_counter()
        result.latencies.append(ended - since)
        result.finished.append(ended - self.started)
        result.keys_sent.extend(keys)
        result.calls += 1
        if answer is not None:
            result.decisions += len(keys)
            self._keep(keys, answer)

    def _keep(self, keys: list[int], answer: bytes) -> None:
        """Reservoir sampling: every answered call has the same chance to be kept."""
        wanted = self.phase.check
        if not wanted:
            return
        self.seen += 1
        samples = self.result.samples
        if len(samples) < wanted:
            samples.append(Sample(tuple(keys), answer))
        else:
            slot = self.rng.randrange(self.seen)
            if slot < wanted:
                samples[slot] = Sample(tuple(keys), answer)

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(self.load.progress.interval)
            self._draw()

    def _draw(self) -> None:
        phase, result = self.phase, self.result
        elapsed = time.perf_counter() - self.started
        if phase.count is not None:
            fraction = result.calls / max(1, phase.count)
        else:
            fraction = elapsed / max(1e-9, phase.duration or 0.0)
        errors = sum(result.errors.values())
        self.load.progress.show(fraction, result.calls, elapsed, errors)


def _varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)
