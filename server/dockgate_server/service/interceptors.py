"""Server interceptors: count calls for a drain before shutdown; refuse undecodable messages."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeAlias

import grpc
from google.protobuf.message import DecodeError

from dockgate.v1 import errors_pb2
from dockgate_server.service.errors import ServiceError, to_status

__all__ = ["CallTracker", "UndecodableRefusal"]

Continuation: TypeAlias = (
    "Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any] | None]]"
)


class CallTracker(grpc.aio.ServerInterceptor):
    """How many unary calls are running, and when the last one started: a shutdown serves on until
    the port has been quiet for a moment, because stopping at once cancels calls that gRPC has
    received but not yet handed to a servicer."""

    def __init__(self) -> None:
        self.active = 0
        self.last_start = 0.0

    def quiet_for(self, seconds: float) -> bool:
        return self.active == 0 and time.monotonic() - self.last_start >= seconds

    async def intercept_service(
        self, continuation: Continuation, handler_call_details: grpc.HandlerCallDetails
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        handler = await continuation(handler_call_details)
        if handler is None or handler.unary_unary is None:
            return handler  # streams (health watches, reflection) are not calls to wait for
        behavior = handler.unary_unary

        async def tracked(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            self.active += 1
            self.last_start = time.monotonic()
            try:
                return await behavior(request, context)  # type: ignore[arg-type]
            finally:
                self.active -= 1

        return grpc.unary_unary_rpc_method_handler(
            tracked,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )


class _Undecodable:
    """What a lenient decoder hands on instead of raising: bytes that are no such message."""

    __slots__ = ("problem",)

    def __init__(self, problem: str) -> None:
        self.problem = problem


class UndecodableRefusal(grpc.aio.ServerInterceptor):
    """Bytes that do not decode as the request message get INVALID_ARGUMENT with an ErrorInfo,
    where gRPC alone would answer UNKNOWN."""

    async def intercept_service(
        self, continuation: Continuation, handler_call_details: grpc.HandlerCallDetails
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        handler = await continuation(handler_call_details)
        if handler is None or handler.unary_unary is None or handler.request_deserializer is None:
            return handler
        behavior, decode = handler.unary_unary, handler.request_deserializer

        def lenient(data: bytes) -> Any:
            try:
                return decode(data)
            except DecodeError as problem:
                return _Undecodable(str(problem))

        async def refusing(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            if isinstance(request, _Undecodable):
                error = ServiceError(
                    grpc.StatusCode.INVALID_ARGUMENT,
                    errors_pb2.INVALID_CONTEXT,
                    f"the request is not a valid message: {request.problem}",
                    field="request",
                )
                await context.abort_with_status(to_status(error))
            return await behavior(request, context)  # type: ignore[arg-type]

        return grpc.unary_unary_rpc_method_handler(
            refusing, request_deserializer=lenient, response_serializer=handler.response_serializer
        )
