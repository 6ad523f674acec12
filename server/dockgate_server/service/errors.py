"""Errors at the edge: a reason from `errors.proto`, sent as google.rpc.ErrorInfo in the status."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import grpc
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2  # type: ignore[import-untyped]
from grpc_status import rpc_status

from dockgate.v1 import errors_pb2

__all__ = ["DOMAIN", "ServiceError", "refusing", "to_status"]

Request = TypeVar("Request")
Response = TypeVar("Response")
Context = grpc.aio.ServicerContext[Any, Any]
Method = Callable[[Any, Request, Context], Awaitable[Response]]

DOMAIN = "dockgate.dev"


class ServiceError(Exception):
    """A failure to report as a status code with an ErrorInfo naming the reason and the field."""

    def __init__(
        self,
        code: grpc.StatusCode,
        reason: int,
        message: str,
        **metadata: str,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.metadata = metadata

    @property
    def reason_name(self) -> str:
        return errors_pb2.ErrorReason.Name(self.reason)  # type: ignore[arg-type]


def to_status(error: ServiceError) -> grpc.Status:
    info = error_details_pb2.ErrorInfo(
        reason=error.reason_name, domain=DOMAIN, metadata=error.metadata
    )
    detail = any_pb2.Any()
    detail.Pack(info)
    status = status_pb2.Status(code=error.code.value[0], message=error.message, details=[detail])
    result: grpc.Status = rpc_status.to_status(status)
    return result


def refusing(method: Method[Request, Response]) -> Method[Request, Response]:
    """A ServiceError raised by a servicer method (while decoding its request, say) becomes its
    status, as one raised inside the admin's store work does; never an UNKNOWN."""

    @functools.wraps(method)
    async def call(self: Any, request: Request, context: Context) -> Response:
        try:
            return await method(self, request, context)
        except ServiceError as error:
            await context.abort_with_status(to_status(error))
            raise AssertionError("abort returned") from None

    return call
