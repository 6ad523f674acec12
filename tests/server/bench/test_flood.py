"""The raw HTTP/2 load generator against a real grpcio server on 127.0.0.1: every call is counted
once, by the status the server sent; and the overload rows' verdicts."""

from __future__ import annotations

import asyncio
import math

import grpc

from dockgate_server.bench.flood import _grpc_status, _literal, _request_headers, flood
from dockgate_server.bench.overload import Overload, format_overload

CALLS = 300


async def _flood_a_server() -> tuple[dict[str, int], int]:
    async def answer(request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]) -> bytes:
        if request == b"refuse":
            await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, "busy")
        return b"answer:" + request

    handler = grpc.method_handlers_generic_handler(
        "t.Service", {"Call": grpc.unary_unary_rpc_method_handler(answer)}
    )
    server = grpc.aio.server(handlers=[handler])
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        result = await flood(
            f"127.0.0.1:{port}",
            [b"decide", b"refuse"],
            [0, 0, 1],
            rate=2000,
            duration=CALLS / 2000,
            timeout=30.0,
            method="/t.Service/Call",
            connections=3,
        )
    finally:
        await server.stop(None)
    return dict(result.statuses), result.sent


def test_every_call_is_counted_once_by_the_status_the_server_sent() -> None:
    statuses, sent = asyncio.run(_flood_a_server())
    assert sent == CALLS
    assert statuses == {"OK": CALLS * 2 // 3, "RESOURCE_EXHAUSTED": CALLS // 3}


async def _flood_a_server_allowing(streams: int) -> tuple[dict[str, int], int]:
    """Calls that each hold their stream a while, against a server allowing `streams` at once
    on a connection: how they ended, and the most the handler ever saw at once."""
    running = 0
    most = 0

    async def answer(request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]) -> bytes:
        nonlocal running, most
        running += 1
        most = max(most, running)
        try:
            await asyncio.sleep(0.002)
        finally:
            running -= 1
        return b"answer:" + request

    handler = grpc.method_handlers_generic_handler(
        "t.Service", {"Call": grpc.unary_unary_rpc_method_handler(answer)}
    )
    server = grpc.aio.server(handlers=[handler], options=[("grpc.max_concurrent_streams", streams)])
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        result = await flood(
            f"127.0.0.1:{port}",
            [b"decide"],
            [0],
            rate=2000,
            duration=60 / 2000,
            timeout=30.0,
            method="/t.Service/Call",
            connections=1,
        )
    finally:
        await server.stop(None)
    return dict(result.statuses), most


def test_no_more_streams_are_opened_than_the_server_allows() -> None:
    statuses, most = asyncio.run(_flood_a_server_allowing(2))
    assert statuses == {"OK": 60}  # none refused with RST_STREAM: the extra calls waited here
    assert 1 <= most <= 2


def test_the_status_is_read_from_a_header_block_alone() -> None:
    block = (
        b"\x88" + _literal(b"content-type", b"application/grpc") + _literal(b"grpc-status", b"8")
    )
    assert _grpc_status(block) == "8"
    assert _grpc_status(b"\x3f\xe1\x1f" + _literal(b"grpc-status", b"0")) == "0"  # size update
    assert _grpc_status(b"\xbe") == ""  # a dynamic entry: announced away, so unreadable
    huffman = b"\x00\x0bgrpc-status\x81\x1f"  # a Huffman-coded value is not guessed at
    assert _grpc_status(huffman) == ""


def test_the_request_headers_carry_the_deadline() -> None:
    block = _request_headers("/t.Service/Call", "127.0.0.1:1", 0.2)
    assert b"grpc-timeout" in block and b"200m" in block
    assert b"/t.Service/Call" in block


def _row(completed: float, p99: float, before: int, after: int, refused: int = 10) -> Overload:
    return Overload(
        multiple=3,
        saturation=1000,
        asked=3000,
        offered=3000,
        seconds=5,
        completed_per_second=completed,
        refused=refused,
        refusal_p99_ms=p99,
        statuses={"OK": 5000, "CANCELLED": refused},
        memory_before=before,
        memory_after=after,
        settle=60,
    )


def test_each_overload_goal_has_its_verdict() -> None:
    good = _row(800, 20.0, 100, 110)
    assert good.verdicts() == {"completed": True, "refusal_p99": True, "memory": True}
    bad = _row(500, 80.0, 100, 130)
    assert bad.verdicts() == {"completed": False, "refusal_p99": False, "memory": False}
    none_refused = _row(900, math.nan, 100, 100, refused=0)
    assert none_refused.verdicts()["refusal_p99"] is None
    text = format_overload([good, bad])
    assert "3x:" in text and "MISSED" in text and " met" in text
