"""Admission on the decision port: a worker takes a bounded number of calls at once and refuses,
at once and never with an allow, a call it cannot answer in time.

Two bounds work together. gRPC's own queue of calls received but not yet handed to Python is kept
short (`queue_options`): past it, gRPC sheds calls before any Python runs, which is what keeps a
worker offered several times its capacity answering at about its capacity instead of spending
itself on calls whose callers have already given up. (grpcio reports that shedding to the caller as
CANCELLED, not RESOURCE_EXHAUSTED, and has no option to say otherwise; a refusal in Python could say
RESOURCE_EXHAUSTED but costs the worker about what a decision does, 250-400 us of CPU, grpc.aio's
own cost of a call, where gRPC's shedding costs tens of microseconds: refusing most of a flood in
Python would spend the worker's capacity on refusals.) The queue must stay shorter than a caller's
deadline times the worker's rate, or every call it holds times out before its turn (1024 calls, at
about 4,000 calls a second, outlast a 200 ms deadline: measured, almost nothing completed).

In Python, `Admission` refuses a call with RESOURCE_EXHAUSTED and the `OVERLOADED` reason when the
worker already has `limit` calls in its handlers (calls waiting for `at_least_revision` stay
there), or when the call's deadline leaves less than `reserve` seconds, too little to answer
before its caller gives up.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeAlias

import grpc
from envoy.service.auth.v3 import external_auth_pb2
from envoy.type.v3 import http_status_pb2
from google.rpc import code_pb2, status_pb2  # type: ignore[import-untyped]

from dockgate.v1 import errors_pb2
from dockgate_server.service.errors import ServiceError, to_status

__all__ = ["DEFAULT_LIMIT", "DEFAULT_QUEUE", "Admission", "Refusal", "queue_options", "refusal_for"]

DEFAULT_LIMIT = 1000
"""Calls a worker holds in its handlers at once; above the 500 `at_least_revision` waiters a
worker is expected to carry without slowing its other calls."""
DEFAULT_QUEUE = 256
"""Calls gRPC holds for a worker before it sheds: at a few hundred microseconds a call, tens of
milliseconds of waiting, well inside a caller's deadline."""
DEFAULT_RESERVE = 0.002
"""Seconds a call must have left to be taken: less, and its answer would come after its caller
gave up (a decision takes tens of microseconds; its answer waits behind the calls ready before)."""

Refusal: TypeAlias = "Callable[[Any, grpc.aio.ServicerContext[Any, Any]], Awaitable[Any]]"


class Admission:
    """What a worker takes: at most `limit` calls in its handlers, each with `reserve` seconds
    left at least. `refused` counts the calls turned away (read by the metrics)."""

    def __init__(
        self,
        limit: int = DEFAULT_LIMIT,
        reserve: float = DEFAULT_RESERVE,
        on_refusal: Callable[[], None] | None = None,
    ) -> None:
        if limit < 1:
            raise ValueError(f"admission limit `{limit}` must be at least 1")
        self.limit = limit
        self.reserve = reserve
        self.refused = 0
        self._on_refusal = on_refusal

    def admits(self, active: int, context: grpc.aio.ServicerContext[Any, Any]) -> bool:
        if active >= self.limit:
            return False
        remaining = context.time_remaining()
        return remaining is None or remaining >= self.reserve

    def count_refusal(self) -> None:
        self.refused += 1
        if self._on_refusal is not None:
            self._on_refusal()


def queue_options(queued: int) -> list[tuple[str, int]]:
    """gRPC's queue of calls not yet taken by Python: past half of `queued` it sheds some, past
    `queued` all (its soft and hard limits)."""
    hard = max(1, queued)
    return [
        ("grpc.server.max_pending_requests", max(0, hard // 2)),
        ("grpc.server.max_pending_requests_hard_limit", hard),
    ]


def refusal_for(response_type: str) -> Refusal:
    """How a method answering `response_type` refuses: Envoy's `Check` with a denied response
    (HTTP 503), whatever Envoy's failure mode; every other method with RESOURCE_EXHAUSTED."""
    if response_type == external_auth_pb2.CheckResponse.DESCRIPTOR.full_name:
        return _deny_check
    return _abort_overloaded


_OVERLOADED = to_status(
    ServiceError(
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        errors_pb2.OVERLOADED,
        "overloaded: the call was not decided; retry with backoff",
    )
)


async def _abort_overloaded(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
    await context.abort_with_status(_OVERLOADED)


_DENIED_CHECK = external_auth_pb2.CheckResponse(
    status=status_pb2.Status(code=code_pb2.UNAVAILABLE, message="overloaded"),
    denied_response=external_auth_pb2.DeniedHttpResponse(
        status=http_status_pb2.HttpStatus(code=http_status_pb2.ServiceUnavailable),
        body="overloaded: the request was not authorized; retry later\n",
    ),
)


async def _deny_check(
    request: Any, context: grpc.aio.ServicerContext[Any, Any]
) -> external_auth_pb2.CheckResponse:
    return _DENIED_CHECK
