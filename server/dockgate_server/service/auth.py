"""The admin port's bearer token: where it comes from, and the interceptor that demands it."""

from __future__ import annotations

import hmac
import os
import secrets
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import grpc

from dockgate.v1 import errors_pb2
from dockgate_server.service.errors import ServiceError, to_status

__all__ = ["TOKEN_VARIABLE", "TokenInterceptor", "load_admin_token"]

TOKEN_VARIABLE = "DOCKGATE_ADMIN_TOKEN"
_OPEN_PREFIXES = ("/grpc.health.v1.Health/", "/grpc.reflection.")
"""Health checks and reflection stay open: they reveal nothing and probes need them."""


def load_admin_token(token_file: Path) -> str:
    """`DOCKGATE_ADMIN_TOKEN` when set; else the token file, made (mode 0600) on first start."""
    given = os.environ.get(TOKEN_VARIABLE)
    if given:
        return given
    if token_file.exists():
        return token_file.read_text(encoding="utf-8").strip()
    token_file.parent.mkdir(parents=True, exist_ok=True)
    token = secrets.token_urlsafe(32)
    descriptor = os.open(token_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(token + "\n")
    return token


class TokenInterceptor(grpc.aio.ServerInterceptor):
    """Every admin call needs `authorization: Bearer TOKEN`; the comparison is constant-time."""

    def __init__(self, token: str) -> None:
        self._expected = f"Bearer {token}".encode()

    async def intercept_service(  # type: ignore[override]  # stubs: generic in request type
        self,
        continuation: Callable[
            [grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any]]
        ],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any]:
        method = handler_call_details.method or ""
        if method.startswith(_OPEN_PREFIXES):
            return await continuation(handler_call_details)
        presented = dict(handler_call_details.invocation_metadata or ()).get("authorization")
        if presented is None:
            return _refuse(
                errors_pb2.MISSING_TOKEN, "the admin port needs `authorization: Bearer TOKEN`"
            )
        if not hmac.compare_digest(str(presented).encode(), self._expected):
            return _refuse(errors_pb2.INVALID_TOKEN, "the admin token is not valid")
        return await continuation(handler_call_details)


def _refuse(reason: int, message: str) -> grpc.RpcMethodHandler[Any, Any]:
    status = to_status(ServiceError(grpc.StatusCode.UNAUTHENTICATED, reason, message))

    async def refuse(request: object, context: grpc.aio.ServicerContext[Any, Any]) -> None:
        await context.abort_with_status(status)

    return grpc.unary_unary_rpc_method_handler(refuse)
