"""`STORE_UNAVAILABLE` (a replica past `--max-staleness`, a write its store could not take) is an
`UnavailableError` whatever status code carries it."""

from __future__ import annotations

from typing import Any

import grpc
import pytest

import dockgate
from dockgate._errors import from_rpc_error
from dockgate.v1 import errors_pb2
from dockgate_server.service.errors import ServiceError, to_status


class _Failed(grpc.RpcError):
    """A failed call as grpc raises it, from the status the server sends."""

    def __init__(self, status: grpc.Status) -> None:
        super().__init__()
        self._status = status

    def code(self) -> grpc.StatusCode:
        return self._status.code

    def details(self) -> str:
        return self._status.details

    def trailing_metadata(self) -> Any:
        return self._status.trailing_metadata


@pytest.mark.parametrize("code", [grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.INTERNAL])
def test_store_unavailable_is_an_unavailable_error(code: grpc.StatusCode) -> None:
    sent = ServiceError(code, errors_pb2.STORE_UNAVAILABLE, "store `x`: unavailable: down")
    error = from_rpc_error(_Failed(to_status(sent)))
    assert type(error) is dockgate.UnavailableError
    assert error.reason == "STORE_UNAVAILABLE"
    assert error.message == "store `x`: unavailable: down"
