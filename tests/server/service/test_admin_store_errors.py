"""The admin servicer maps the store's typed errors to status codes by kind, never by text."""

from __future__ import annotations

import grpc
import pytest

from dockgate.v1 import errors_pb2
from dockgate_server.service.admin import _status_of
from dockgate_server.store.port import Conflict, NotFound, Refused, StoreError, Unavailable


@pytest.mark.parametrize(
    ("problem", "target", "code", "reason"),
    [
        (
            NotFound("user `x` does not exist"),
            True,
            grpc.StatusCode.NOT_FOUND,
            errors_pb2.NOT_FOUND,
        ),
        # a missing entity the call only refers to refuses the write
        (NotFound("x"), False, grpc.StatusCode.FAILED_PRECONDITION, errors_pb2.WRITE_REFUSED),
        # the text does not decide: a refusal that says "does not exist" stays a refusal
        (
            Refused("user `bob`: group `nobody` does not exist"),
            True,
            grpc.StatusCode.FAILED_PRECONDITION,
            errors_pb2.WRITE_REFUSED,
        ),
        (Conflict("x"), True, grpc.StatusCode.ABORTED, errors_pb2.WRITE_REFUSED),
        (Unavailable("x"), False, grpc.StatusCode.UNAVAILABLE, errors_pb2.STORE_UNAVAILABLE),
        (StoreError("x"), True, grpc.StatusCode.FAILED_PRECONDITION, errors_pb2.WRITE_REFUSED),
    ],
)
def test_each_kind_of_store_error_has_its_status(
    problem: StoreError, target: bool, code: grpc.StatusCode, reason: int
) -> None:
    assert _status_of(problem, target=target) == (code, reason)
