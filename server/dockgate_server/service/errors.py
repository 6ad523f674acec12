"""Errors at the edge: a reason from `errors.proto`, sent as google.rpc.ErrorInfo in the status."""

from __future__ import annotations

import grpc
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2  # type: ignore[import-untyped]
from grpc_status import rpc_status

from dockgate.v1 import errors_pb2

__all__ = ["DOMAIN", "ServiceError", "to_status"]

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
