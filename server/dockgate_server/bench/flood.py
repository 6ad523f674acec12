"""An open-loop load generator cheap enough to overload a server from one CPU: unary gRPC calls
written as raw HTTP/2 frames.

The grpcio client costs about as much CPU per call as the server does, so on a small machine it
cannot offer a server several times what the server can answer. Here each call is a HEADERS frame
encoded once for the whole run and a DATA frame around a request encoded before the clock starts;
answers are read by a small frame parser. The client announces an HPACK table size of 0, so the
server's header blocks refer to no dynamic table and `grpc-status` is read from each trailer block
alone. As a gRPC client's encoder does, the first call on a connection adds its fixed request
headers to the server's HPACK table and every later call names them by index (only `grpc-timeout`
is spelled out each time). Each call carries `grpc-timeout`; an answer counts as completed only
when it is `OK` and came within that deadline, and every latency is timed from when its call was
due.

Like every HTTP/2 client (RFC 9113 section 5.1.2), a connection opens no more streams at once than
the server's SETTINGS_MAX_CONCURRENT_STREAMS allows: a call due while the connection is full waits
here for a stream, and one whose deadline passes while it waits ends as `CLIENT_DEADLINE`, the
server having never seen it; a stream the server refuses all the same (RST_STREAM
REFUSED_STREAM: gRPC frees a stream a little after its last frame) is sent again, as gRPC's clients
retry it transparently (`honour_settings=False` does neither: such calls end as `RST_STREAM_7`).
"""

from __future__ import annotations

import asyncio
import time
from array import array
from collections import Counter, deque
from collections.abc import Sequence
from dataclasses import dataclass, field

import grpc

__all__ = ["FloodResult", "flood"]

_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
_DATA, _HEADERS, _RST, _SETTINGS, _PING, _GOAWAY, _WINDOW, _CONTINUATION = 0, 1, 3, 4, 6, 7, 8, 9
_END_STREAM, _ACK, _END_HEADERS, _PADDED, _PRIORITY = 0x1, 0x1, 0x4, 0x8, 0x20
_BIG_WINDOW = 2**31 - 1
_STATUS_NAMES = {code.value[0]: code.name for code in grpc.StatusCode}
_STATIC_TABLE_SIZE = 61
"""Entries of HPACK's static table; an index above it would name the dynamic table."""
_MAX_CONCURRENT_STREAMS = 3
"""The SETTINGS identifier of the number of streams a peer lets the other side open at once."""
_REFUSED_STREAM = 7
"""The RST_STREAM code of a stream the server did not process: safe to send again."""
_LINGER = 1.0
"""Seconds past the deadline an answer is still waited for before the call counts as lost."""


@dataclass
class FloodResult:
    rate: float
    """calls offered a second"""
    seconds: float = 0.0
    """how long the offering took"""
    sent: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    """calls by how they ended: a status name, `LATE` (OK past the deadline), `LOST` (no answer),
    `CLIENT_DEADLINE` (its deadline passed while it waited for a stream the server allows)"""
    latencies: dict[str, array[float]] = field(default_factory=dict)
    """seconds from when each call was due to its answer, by how it ended"""

    @property
    def completed(self) -> int:
        return self.statuses["OK"]

    def record(self, status: str, latency: float) -> None:
        self.statuses[status] += 1
        found = self.latencies.get(status)
        if found is None:
            found = self.latencies[status] = array("d")
        found.append(latency)


async def flood(
    address: str,
    requests: Sequence[bytes],
    order: Sequence[int],
    *,
    rate: float,
    duration: float,
    timeout: float,
    method: str = "/dockgate.v1.Authorizer/Authorize",
    connections: int = 8,
    honour_settings: bool = True,
    index_headers: bool = True,
) -> FloodResult:
    """Offer `rate` calls a second for `duration` seconds over `connections` connections, the
    requests taken in `order` (indices into `requests`, cycled); `honour_settings`: open no more
    streams at once than the server allows; `index_headers`: name the fixed request headers by
    their index in the server's HPACK table after the first call (False: spell them out every
    time, which costs the server more per call than a gRPC client does)."""
    host, _, port = address.rpartition(":")
    loop = asyncio.get_running_loop()
    result = FloodResult(rate)
    first_block = _request_headers(method, address, timeout, index=index_headers)
    header_block = _indexed_headers(timeout) if index_headers else first_block
    bodies = [_grpc_message(body) for body in requests]
    links = []
    for _ in range(max(1, connections)):
        _, link = await loop.create_connection(
            lambda: _Link(result, timeout, honour_settings, first_block),
            host.strip("[]"),
            int(port),
        )
        links.append(link)
    await asyncio.sleep(0.05)  # the settings exchange
    started = time.perf_counter()
    interval = 1.0 / rate
    total = int(rate * duration)
    sent = 0
    while sent < total:
        now = time.perf_counter()
        due_count = min(total, int((now - started) / interval) + 1)
        while sent < due_count:
            due = started + sent * interval
            body = bodies[order[sent % len(order)]]
            links[sent % len(links)].call(header_block, body, due)
            sent += 1
        for link in links:
            link.expire_held(now)
            link.flush()
        await asyncio.sleep(0.0005)
    result.seconds = time.perf_counter() - started
    result.sent = sent
    give_up = time.perf_counter() + timeout + _LINGER
    while any(link.open_calls() for link in links) and time.perf_counter() < give_up:
        for link in links:
            link.expire_held(time.perf_counter())
            link.flush()
        await asyncio.sleep(0.01)
    for link in links:
        link.close()
    return result


class _Link(asyncio.Protocol):
    """One HTTP/2 connection: its calls in flight, its send window and what it has read."""

    def __init__(
        self,
        result: FloodResult,
        timeout: float,
        honour_settings: bool = True,
        first_block: bytes | None = None,
    ) -> None:
        self.result = result
        self.first_block = first_block
        """the header block of the connection's first call (it fills the server's HPACK table)"""
        self.timeout = timeout
        self.honour_settings = honour_settings
        self.peer_streams = 2**31 - 1
        """streams the server lets this side open at once (its SETTINGS_MAX_CONCURRENT_STREAMS)"""
        self.sent: dict[int, tuple[bytes, bytes]] = {}
        """stream → its header block and DATA payload, to send again if the server refuses it"""
        self.held: deque[tuple[bytes, bytes, float]] = deque()
        """calls waiting for a stream: header block, DATA payload, due"""
        self.transport: asyncio.Transport | None = None
        self.next_stream = 1
        self.calls: dict[int, float] = {}
        """stream → when its call was due"""
        self.answered: set[int] = set()
        """streams whose response message has arrived"""
        self.window = 65_535
        """bytes of DATA the server lets this side send on the connection"""
        self.waiting: list[tuple[bytes, int, float]] = []
        """calls held back for want of window: DATA payload, stream, due"""
        self.out: list[bytes] = []
        self.buffer = bytearray()
        self.fragments: dict[int, bytearray] = {}
        """streams whose header block continues in CONTINUATION frames"""
        self.fragment_ends: dict[int, bool] = {}
        self.received = 0
        self.closed = False

    # -- writing ----------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        settings = b"".join(
            identifier.to_bytes(2, "big") + value.to_bytes(4, "big")
            for identifier, value in ((1, 0), (2, 0), (4, _BIG_WINDOW))  # table 0, no push
        )
        transport.write(
            _PREFACE
            + _frame(_SETTINGS, 0, 0, settings)
            + _frame(_WINDOW, 0, 0, (_BIG_WINDOW - 65_535).to_bytes(4, "big"))
        )

    def call(self, header_block: bytes, message: bytes, due: float) -> None:
        if self.honour_settings and (self.held or len(self.calls) >= self.peer_streams):
            self.held.append((header_block, message, due))
            return
        self._open(header_block, message, due)

    def _open(self, header_block: bytes, message: bytes, due: float) -> None:
        stream = self.next_stream
        self.next_stream += 2
        self.calls[stream] = due
        if self.honour_settings:
            self.sent[stream] = (header_block, message)
        if self.closed:
            self.finish(stream, "UNAVAILABLE")
            return
        if self.first_block is not None:
            header_block, self.first_block = self.first_block, None
        self.out.append(_frame(_HEADERS, _END_HEADERS, stream, header_block))
        if self.waiting or len(message) > self.window:
            self.waiting.append((message, stream, due))
        else:
            self.window -= len(message)
            self.out.append(_frame(_DATA, _END_STREAM, stream, message))

    def flush(self) -> None:
        if self.out and self.transport is not None and not self.closed:
            self.transport.write(b"".join(self.out))
        self.out.clear()

    def open_calls(self) -> int:
        return len(self.calls) + len(self.held)

    def expire_held(self, now: float) -> None:
        """Calls whose deadline passed while they waited for a stream end here."""
        held = self.held
        while held and now - held[0][2] >= self.timeout:
            self.result.record("CLIENT_DEADLINE", now - held.popleft()[2])

    def _open_held(self, now: float) -> None:
        self.expire_held(now)
        while self.held and len(self.calls) < self.peer_streams:
            self._open(*self.held.popleft())

    def close(self) -> None:
        for stream in list(self.calls):
            self.finish(stream, "LOST")
        while self.held:
            self.result.record("LOST", time.perf_counter() - self.held.popleft()[2])
        if self.transport is not None:
            self.transport.close()

    # -- reading ----------------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        buffer = self.buffer
        buffer += data
        now = time.perf_counter()
        offset = 0
        while len(buffer) - offset >= 9:
            length = int.from_bytes(buffer[offset : offset + 3], "big")
            end = offset + 9 + length
            if len(buffer) < end:
                break
            kind, flags = buffer[offset + 3], buffer[offset + 4]
            stream = int.from_bytes(buffer[offset + 5 : offset + 9], "big") & 0x7FFF_FFFF
            self._frame(kind, flags, stream, bytes(buffer[offset + 9 : end]), now)
            offset = end
        del buffer[:offset]
        self.flush()

    def _frame(self, kind: int, flags: int, stream: int, payload: bytes, now: float) -> None:
        if kind == _DATA:
            self.received += len(payload)
            if stream in self.calls and payload:
                self.answered.add(stream)
            if self.received > _BIG_WINDOW // 2:  # give the server its window back
                self.out.append(_frame(_WINDOW, 0, 0, self.received.to_bytes(4, "big")))
                self.received = 0
            if flags & _END_STREAM:
                self._end(stream, "", now)
        elif kind == _HEADERS:
            block = _unpad(payload, flags)
            if not flags & _END_HEADERS:
                self.fragments[stream] = bytearray(block)
                self.fragment_ends[stream] = bool(flags & _END_STREAM)
            elif flags & _END_STREAM:
                self._end(stream, _grpc_status(block), now)
        elif kind == _CONTINUATION:
            self.fragments[stream] += payload
            if flags & _END_HEADERS:
                block = bytes(self.fragments.pop(stream))
                if self.fragment_ends.pop(stream):
                    self._end(stream, _grpc_status(block), now)
        elif kind == _RST:
            if stream in self.calls:
                code = int.from_bytes(payload[:4], "big")
                if code == _REFUSED_STREAM and self.honour_settings:
                    header_block, message = self.sent.pop(stream)
                    self.answered.discard(stream)
                    self.held.appendleft((header_block, message, self.calls.pop(stream)))
                    self._open_held(now)
                else:
                    self._end(stream, "", now, f"RST_STREAM_{code}")
        elif kind == _SETTINGS:
            if not flags & _ACK:
                for at in range(0, len(payload) - 5, 6):
                    if int.from_bytes(payload[at : at + 2], "big") == _MAX_CONCURRENT_STREAMS:
                        self.peer_streams = int.from_bytes(payload[at + 2 : at + 6], "big")
                self.out.append(_frame(_SETTINGS, _ACK, 0, b""))
                self._open_held(now)
        elif kind == _PING:
            if not flags & _ACK:
                self.out.append(_frame(_PING, _ACK, 0, payload))
        elif kind == _WINDOW:
            if stream == 0:
                self.window += int.from_bytes(payload[:4], "big") & 0x7FFF_FFFF
                self._release()
        elif kind == _GOAWAY:
            last = int.from_bytes(payload[:4], "big") & 0x7FFF_FFFF
            self.closed = True
            for waiting in [s for s in self.calls if s > last]:
                self.finish(waiting, "UNAVAILABLE", now)

    def _release(self) -> None:
        while self.waiting and len(self.waiting[0][0]) <= self.window:
            message, stream, _ = self.waiting.pop(0)
            self.window -= len(message)
            self.out.append(_frame(_DATA, _END_STREAM, stream, message))

    def _end(self, stream: int, status: str, now: float, override: str = "") -> None:
        if stream not in self.calls:
            return
        if override:
            name = override
        elif status.isdigit():
            name = _STATUS_NAMES.get(int(status), f"STATUS_{status}")
        else:
            name = "UNDECODED"
        if name == "OK":
            if stream not in self.answered:
                name = "EMPTY"
            elif now - self.calls[stream] > self.timeout:
                name = "LATE"
        self.finish(stream, name, now)

    def finish(self, stream: int, status: str, now: float | None = None) -> None:
        due = self.calls.pop(stream)
        self.answered.discard(stream)
        self.sent.pop(stream, None)
        now = now or time.perf_counter()
        self.result.record(status, now - due)
        if self.held and not self.closed:
            self._open_held(now)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        now = time.perf_counter()
        for stream in list(self.calls):
            self.finish(stream, "UNAVAILABLE", now)
        while self.held:
            self.result.record("UNAVAILABLE", now - self.held.popleft()[2])


# -- encoding -------------------------------------------------------------------------------------


def _frame(kind: int, flags: int, stream: int, payload: bytes) -> bytes:
    return (
        len(payload).to_bytes(3, "big") + bytes((kind, flags)) + stream.to_bytes(4, "big") + payload
    )


def _grpc_message(body: bytes) -> bytes:
    return b"\x00" + len(body).to_bytes(4, "big") + body


def _request_headers(method: str, authority: str, timeout: float, *, index: bool = False) -> bytes:
    """A call's header block: static entries by index, the rest as literals; with `index`, the
    fixed literals are added to the server's table (`_indexed_headers` names them after)."""
    milliseconds = max(1, round(timeout * 1000))
    return b"".join(
        (
            b"\x83",  # :method POST
            b"\x86",  # :scheme http
            _literal_indexed(4, method.encode(), index),  # :path
            _literal_indexed(1, authority.encode(), index),  # :authority
            _literal_indexed(31, b"application/grpc", index),  # content-type
            _literal(b"te", b"trailers", index),
            _literal(b"grpc-timeout", f"{milliseconds}m".encode()),
        )
    )


def _indexed_headers(timeout: float) -> bytes:
    """The header block of every call after the first: the four fixed literals the first added
    are the dynamic entries 62 (`te`, the newest) to 65 (`:path`)."""
    milliseconds = max(1, round(timeout * 1000))
    return b"".join(
        (
            b"\x83",
            b"\x86",
            _integer(_STATIC_TABLE_SIZE + 4, 7, 0x80),  # :path
            _integer(_STATIC_TABLE_SIZE + 3, 7, 0x80),  # :authority
            _integer(_STATIC_TABLE_SIZE + 2, 7, 0x80),  # content-type
            _integer(_STATIC_TABLE_SIZE + 1, 7, 0x80),  # te
            _literal(b"grpc-timeout", f"{milliseconds}m".encode()),
        )
    )


def _literal_indexed(index: int, value: bytes, add: bool = False) -> bytes:
    """A literal whose name is the static entry `index`; `add`: the server adds it to its table."""
    return (_integer(index, 6, 0x40) if add else _integer(index, 4, 0x00)) + _string(value)


def _literal(name: bytes, value: bytes, add: bool = False) -> bytes:
    return (b"\x40" if add else b"\x00") + _string(name) + _string(value)


def _string(value: bytes) -> bytes:
    return _integer(len(value), 7, 0x00) + value


def _integer(value: int, prefix: int, first: int) -> bytes:
    limit = (1 << prefix) - 1
    if value < limit:
        return bytes((first | value,))
    out = bytearray((first | limit,))
    value -= limit
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


# -- decoding -------------------------------------------------------------------------------------


def _unpad(payload: bytes, flags: int) -> bytes:
    start, end = 0, len(payload)
    if flags & _PADDED:
        start, end = 1, end - payload[0]
    if flags & _PRIORITY:
        start += 5
    return payload[start:end]


def _grpc_status(block: bytes) -> str:
    """The `grpc-status` of a header block without a dynamic table; "" when absent or unreadable
    (Huffman-coded, or naming a dynamic entry the announced table size forbids)."""
    position, size = 0, len(block)
    status = ""
    while position < size:
        byte = block[position]
        if byte & 0x80:  # an indexed field: no static entry is grpc-status
            index, position = _read_integer(block, position, 7)
            if index > _STATIC_TABLE_SIZE:
                return ""
            continue
        if byte & 0xE0 == 0x20:  # a dynamic table size update
            _, position = _read_integer(block, position, 5)
            continue
        index, position = _read_integer(block, position, 6 if byte & 0x40 else 4)
        name: bytes | None = None
        if index == 0:
            name, position = _read_string(block, position)
        elif index > _STATIC_TABLE_SIZE:
            return ""
        value, position = _read_string(block, position)
        if name == b"grpc-status" and value is not None:
            status = value.decode("ascii", "replace")
    return status


def _read_integer(block: bytes, position: int, prefix: int) -> tuple[int, int]:
    limit = (1 << prefix) - 1
    value = block[position] & limit
    position += 1
    if value < limit:
        return value, position
    shift = 0
    while True:
        byte = block[position]
        position += 1
        value += (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, position


def _read_string(block: bytes, position: int) -> tuple[bytes | None, int]:
    """The string at `position` (None when Huffman-coded: not needed here) and what follows it."""
    huffman = bool(block[position] & 0x80)
    length, position = _read_integer(block, position, 7)
    end = position + length
    return (None if huffman else bytes(block[position:end])), end
