"""A tree of exceptions built from the status and its ErrorInfo: no grpc.RpcError leaks."""

from __future__ import annotations

from collections.abc import Mapping

import grpc
from google.rpc import error_details_pb2, status_pb2  # type: ignore[import-untyped]

__all__ = [
    "DockgateError",
    "InternalError",
    "InvalidRequestError",
    "NotFoundError",
    "OverloadedError",
    "RevisionNotReachedError",
    "TimeoutError",
    "UnauthenticatedError",
    "UnavailableError",
    "WriteRefusedError",
]


class DockgateError(Exception):
    """Any failed call. `reason` is an `ErrorReason` name (`INVALID_PRINCIPAL`, …) when the server
    sent one; `metadata` holds its details (`field`, `policy`, `pointer`)."""

    def __init__(
        self,
        code: grpc.StatusCode,
        message: str,
        reason: str = "",
        metadata: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(f"{reason or code.name}: {message}")
        self.code = code
        self.message = message
        self.reason = reason
        self.metadata = dict(metadata or {})

    @property
    def field(self) -> str | None:
        return self.metadata.get("field")


class InvalidRequestError(DockgateError):
    """The request is malformed (INVALID_ARGUMENT): never retried, never a decision."""


class NotFoundError(DockgateError):
    pass


class UnauthenticatedError(DockgateError):
    """The admin port needs a valid token."""


class RevisionNotReachedError(DockgateError):
    """`at_least_revision` was not reached in time."""


class WriteRefusedError(DockgateError):
    """The store refused a write (a missing reference, a conflict)."""


class UnavailableError(DockgateError):
    """The server could not be reached (after the retries), or it could not reach its store
    (reason `STORE_UNAVAILABLE`: a write that was not stored, or a replica whose policy is older
    than its `--max-staleness`): never a decision; ask again, or ask another replica."""


class OverloadedError(DockgateError):
    """The server was too busy to decide the call (RESOURCE_EXHAUSTED, reason `OVERLOADED`): never
    a decision. The client retries it with backoff before raising this."""


class TimeoutError(DockgateError):
    """The deadline passed."""


class AccessDeniedError(DockgateError):
    """The policies do not allow a credentials call (PERMISSION_DENIED): AssumeRole, a login."""


class InternalError(DockgateError):
    """The server failed unexpectedly; the request was not decided."""


_BY_CODE: dict[grpc.StatusCode, type[DockgateError]] = {
    grpc.StatusCode.INVALID_ARGUMENT: InvalidRequestError,
    grpc.StatusCode.NOT_FOUND: NotFoundError,
    grpc.StatusCode.UNAUTHENTICATED: UnauthenticatedError,
    grpc.StatusCode.UNAVAILABLE: UnavailableError,
    grpc.StatusCode.DEADLINE_EXCEEDED: TimeoutError,
    grpc.StatusCode.INTERNAL: InternalError,
    grpc.StatusCode.PERMISSION_DENIED: AccessDeniedError,
    grpc.StatusCode.RESOURCE_EXHAUSTED: OverloadedError,
}


_DETAILS_KEY = "grpc-status-details-bin"


def from_rpc_error(error: grpc.RpcError) -> DockgateError:
    """The exception for a failed call, sync (`grpc.Call`) or async (`grpc.aio.AioRpcError`)."""
    code: grpc.StatusCode = getattr(error, "code", lambda: grpc.StatusCode.UNKNOWN)()
    message: str = getattr(error, "details", lambda: None)() or str(error)
    trailing = getattr(error, "trailing_metadata", lambda: None)() or ()
    reason, metadata = "", {}
    for key, value in trailing:
        if key != _DETAILS_KEY:
            continue
        status = status_pb2.Status.FromString(value)
        for detail in status.details:
            info = error_details_pb2.ErrorInfo()
            if detail.Unpack(info):
                reason, metadata = info.reason, dict(info.metadata)
    kind = _BY_CODE.get(code, DockgateError)
    if reason == "REVISION_NOT_REACHED":
        kind = RevisionNotReachedError
    elif reason == "WRITE_REFUSED" and code is not grpc.StatusCode.NOT_FOUND:
        kind = WriteRefusedError
    elif reason == "STORE_UNAVAILABLE":
        kind = UnavailableError
    return kind(code, message, reason, metadata)
