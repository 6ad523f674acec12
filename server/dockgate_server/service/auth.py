"""The admin port's bearer token: where it comes from, and the interceptor that demands it."""

from __future__ import annotations

import hmac
import os
import secrets
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import grpc

from dockgate.v1 import errors_pb2
from dockgate_server.private_files import make_private_dirs, tighten
from dockgate_server.service.errors import ServiceError, to_status

__all__ = [
    "TOKEN_VARIABLE",
    "AdminTokenError",
    "TokenInterceptor",
    "load_admin_token",
]

TOKEN_VARIABLE = "DOCKGATE_ADMIN_TOKEN"
_OPEN_PREFIXES = ("/grpc.health.v1.Health/", "/grpc.reflection.")
"""Health checks and reflection stay open: they reveal nothing and probes need them."""


class AdminTokenError(ValueError):
    """An admin token that must not be used: the server refuses to start; the message says why."""


def load_admin_token(token_file: Path) -> str:
    """`DOCKGATE_ADMIN_TOKEN` when set; else the token file, made (mode 0600) on first start.

    An empty or blank token is refused, from either place: it would make `Bearer ` (or a
    header of spaces) the password of the admin port. Raises `AdminTokenError`.
    """
    given = os.environ.get(TOKEN_VARIABLE)
    if given is not None:
        # set but blank is refused, not read as unset: the operator meant to choose the token
        if not given.strip():
            raise AdminTokenError(
                f"${TOKEN_VARIABLE} is set but empty: set it to a token, or unset it to use "
                f"`{token_file}`"
            )
        return given
    try:
        return _read_token_file(token_file)
    except FileNotFoundError:
        pass
    except OSError as problem:
        raise AdminTokenError(
            f"admin token file `{token_file}`: cannot read: {problem.strerror}"
        ) from None
    try:
        return _create_token_file(token_file)
    except OSError as problem:
        raise AdminTokenError(
            f"admin token file `{token_file}`: cannot create: {problem.strerror}"
        ) from None


def _read_token_file(token_file: Path) -> str:
    token = token_file.read_text(encoding="utf-8").strip()
    if not token:
        raise AdminTokenError(
            f"admin token file `{token_file}` is empty: delete it to have a new token made, "
            f"or write a token in it"
        )
    tighten(token_file, 0o600)
    return token


def _create_token_file(token_file: Path) -> str:
    """Written whole to a temporary file, then linked into place: a crash leaves either no token
    file or a complete one, and of two servers starting at once, both use the one that won."""
    make_private_dirs(token_file.parent)
    token = secrets.token_urlsafe(32)
    descriptor, partial = tempfile.mkstemp(prefix=".admin-token.", dir=token_file.parent)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:  # mkstemp: mode 0600
            handle.write(token + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(partial, token_file)
        except FileExistsError:
            return _read_token_file(token_file)
    finally:
        os.unlink(partial)
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
