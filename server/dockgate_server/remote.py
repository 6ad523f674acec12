"""The CLI's `--server ADDRESS` mode: the same commands, answered by a running server.

Built on the generated `dockgate.v1` contract only: the service never depends on the client's code.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from typing import Any

import grpc

from dockgate.v1 import admin_pb2, admin_pb2_grpc, authorizer_pb2, authorizer_pb2_grpc
from dockgate_server.channels import ChannelFactory
from dockgate_server.policy.parse import load_json

__all__ = ["RemoteError", "remote_check", "remote_export", "remote_import", "remote_simulate"]

_TIMEOUT = 30.0
_CHUNK_BYTES = 1024 * 1024
"""bytes of a bundle per streamed piece: well under a channel's 4 MiB message limit"""
_OUTCOMES = {
    authorizer_pb2.OUTCOME_ALLOWED: "Allowed",
    authorizer_pb2.OUTCOME_IMPLICITLY_DENIED: "ImplicitlyDenied",
    authorizer_pb2.OUTCOME_EXPLICITLY_DENIED: "ExplicitlyDenied",
}


class RemoteError(Exception):
    """A call the server refused, or a server that could not be reached."""


def remote_check(
    address: str,
    question: tuple[str, str, str],
    context: dict[str, Any],
    *,
    explain: bool,
    connect: ChannelFactory = grpc.insecure_channel,
) -> dict[str, object]:
    """`question` is (principal, action, resource)."""
    principal, action, resource = question
    request = authorizer_pb2.AuthorizeRequest(
        principal=principal, action=action, resource=resource, explain=explain
    )
    for key, value in context.items():
        request.context[key].values.extend([value] if isinstance(value, str) else list(value))
    with connect(address) as channel:
        response = _call(authorizer_pb2_grpc.AuthorizerStub(channel).Authorize, request)
    result: dict[str, object] = {
        "decision": _OUTCOMES.get(response.outcome, "ImplicitlyDenied"),
        "revision": response.revision,
    }
    if response.errors:
        result["errors"] = list(response.errors)
    if explain:
        result["reasons"] = [_reason(r) for r in response.reasons]
    return result


def remote_simulate(
    address: str, lines: Iterable[str], *, connect: ChannelFactory = grpc.insecure_channel
) -> Iterator[dict[str, object]]:
    """One result per case, in the CLI's own output shape."""
    with connect(address) as channel:
        stub = authorizer_pb2_grpc.AuthorizerStub(channel)
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                case = load_json(line)
            except ValueError as problem:
                yield {
                    "id": f"line {number}",
                    "decision": "Error",
                    "expect": None,
                    "ok": False,
                    "matched": [],
                    "error": f"line {number}: invalid JSON: {problem}",
                }
                continue
            if not isinstance(case, dict):
                yield {
                    "id": f"line {number}",
                    "decision": "Error",
                    "expect": None,
                    "ok": False,
                    "matched": [],
                    "error": f"line {number}: a case must be a JSON object",
                }
                continue
            response = _call(stub.Simulate, _simulate_request(case))
            result: dict[str, object] = {
                "id": response.id,
                "decision": response.decision,
                "expect": response.expect or None,
                "ok": response.ok,
                "matched": [_reason(r) for r in response.reasons],
            }
            if response.error:
                result["error"] = response.error
            if response.errors:
                result["errors"] = list(response.errors)
            yield result


def remote_import(
    address: str,
    bundle_text: str,
    replace: bool,
    *,
    connect: ChannelFactory = grpc.insecure_channel,
) -> dict[str, object]:
    """What `dockgate import` prints: the revision and what the bundle held, as a local import.

    The bundle goes in pieces, so its size is not bound by one message's limit."""
    data = bundle_text.encode("utf-8", "surrogatepass")
    with connect(address) as channel:
        stub = admin_pb2_grpc.PolicyAdminStub(channel)
        response = _call(stub.ImportBundleChunks, _chunks(data, replace), admin=True)
    return {
        "revision": response.revision,
        "accounts": response.accounts,
        "users": response.users,
        "roles": response.roles,
        "repositories": response.repositories,
    }


def remote_export(
    address: str, *, connect: ChannelFactory = grpc.insecure_channel
) -> dict[str, Any]:
    with connect(address) as channel:
        pieces = _call(
            admin_pb2_grpc.PolicyAdminStub(channel).ExportBundleChunks,
            admin_pb2.ExportBundleRequest(),
            admin=True,
        )
        try:
            data = b"".join(piece.data for piece in pieces)
        except grpc.RpcError as error:  # a stream fails while it is read, not when it is opened
            raise _remote_error(error) from None
    bundle: dict[str, Any] = json.loads(data)
    return bundle


def _chunks(data: bytes, replace: bool) -> Iterator[admin_pb2.BundleChunk]:
    for start in range(0, max(len(data), 1), _CHUNK_BYTES):
        yield admin_pb2.BundleChunk(
            data=data[start : start + _CHUNK_BYTES], replace=replace and start == 0
        )


def _call(method: Any, request: object, *, admin: bool = False) -> Any:
    metadata = None
    if admin:
        token = os.environ.get("DOCKGATE_ADMIN_TOKEN")
        if not token:
            raise RemoteError("writing to a server needs its admin token in DOCKGATE_ADMIN_TOKEN")
        metadata = (("authorization", f"Bearer {token}"),)
    try:
        return method(request, timeout=_TIMEOUT, metadata=metadata)
    except grpc.RpcError as error:
        raise _remote_error(error) from None


def _remote_error(error: grpc.RpcError) -> RemoteError:
    code = error.code().name if isinstance(error, grpc.Call) else "UNKNOWN"
    details = error.details() if isinstance(error, grpc.Call) else str(error)
    return RemoteError(f"{code}: {details}")


def _reason(reason: authorizer_pb2.Reason) -> dict[str, object]:
    result: dict[str, object] = {"phase": reason.phase}
    if reason.policy:
        result["policy"] = reason.policy
        result["statement"] = reason.statement if reason.HasField("statement") else None
        if reason.sid:
            result["sid"] = reason.sid
        result["effect"] = reason.effect
    result["detail"] = reason.detail
    return result


def _simulate_request(case: dict[str, Any]) -> authorizer_pb2.SimulateRequest:
    inner = case.get("request") if isinstance(case.get("request"), dict) else {}
    assert isinstance(inner, dict)
    request = authorizer_pb2.SimulateRequest(
        id=str(case.get("id", "")),
        request=authorizer_pb2.AuthorizeRequest(
            principal=str(inner.get("principal", "")),
            action=str(inner.get("action", "")),
            resource=str(inner.get("resource", "")),
        ),
        identity_policies=[json.dumps(p) for p in case.get("identityPolicies") or []],
        principal_tags=case.get("principalTags") or {},
        resource_tags=case.get("resourceTags") or {},
        expect=str(case.get("expect") or ""),
    )
    for key, value in (inner.get("context") or {}).items():
        request.request.context[key].values.extend(
            [value] if isinstance(value, str) else list(value)
        )
    if case.get("resourcePolicy") is not None:
        request.resource_policy = json.dumps(case["resourcePolicy"])
    if case.get("permissionsBoundary") is not None:
        request.permissions_boundary = json.dumps(case["permissionsBoundary"])
    if case.get("sessionPolicy") is not None:
        request.session_policy = json.dumps(case["sessionPolicy"])
    if case.get("serviceControlPolicies") is not None:
        request.has_service_control_policies = True
        for level in case["serviceControlPolicies"]:
            request.service_control_policies.add(policies=[json.dumps(p) for p in level])
    if case.get("resourceControlPolicies") is not None:
        request.has_resource_control_policies = True
        for level in case["resourceControlPolicies"]:
            request.resource_control_policies.add(policies=[json.dumps(p) for p in level])
    return request
