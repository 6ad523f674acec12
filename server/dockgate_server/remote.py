"""The CLI's `--server ADDRESS` mode: the same commands, answered by a running server.

Built on the generated `dockgate.v1` contract only: the service never depends on the client's code.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import grpc
from google.rpc import error_details_pb2  # type: ignore[import-untyped]
from grpc_status import rpc_status

from dockgate.v1 import (
    admin_pb2,
    admin_pb2_grpc,
    analysis_pb2,
    analysis_pb2_grpc,
    authorizer_pb2,
    authorizer_pb2_grpc,
)
from dockgate_server.channels import ChannelFactory
from dockgate_server.policy.parse import load_json

__all__ = [
    "RemoteError",
    "remote_check",
    "remote_export",
    "remote_import",
    "remote_preview",
    "remote_simulate",
    "remote_what_can",
    "remote_who_can",
]

_TIMEOUT = 30.0
_CHUNK_BYTES = 1024 * 1024
"""bytes of a bundle per streamed piece: well under a channel's 4 MiB message limit"""
_OUTCOMES = {
    authorizer_pb2.OUTCOME_ALLOWED: "Allowed",
    authorizer_pb2.OUTCOME_IMPLICITLY_DENIED: "ImplicitlyDenied",
    authorizer_pb2.OUTCOME_EXPLICITLY_DENIED: "ExplicitlyDenied",
}


_ANALYSIS_TIMEOUT = 120.0
"""seconds a page of an access question may take: the first page is the whole analysis"""
_PAGE_SIZE = 1000
_RESTARTS = 3
"""times a paged answer is asked again from its first page once the server no longer keeps it"""
_ACCESS = {
    analysis_pb2.ACCESS_ALLOWED: "Allowed",
    analysis_pb2.ACCESS_CONDITIONAL: "Conditional",
    analysis_pb2.ACCESS_IMPLICITLY_DENIED: "ImplicitlyDenied",
    analysis_pb2.ACCESS_EXPLICITLY_DENIED: "ExplicitlyDenied",
}


class RemoteError(Exception):
    """A call the server refused, or a server that could not be reached. `details` is the
    server's message; `reason` and `field` come from its ErrorInfo, when it sent one."""

    def __init__(
        self, message: str, *, details: str = "", reason: str = "", field: str = ""
    ) -> None:
        super().__init__(message)
        self.details = details or message
        self.reason = reason
        self.field = field


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
    reason = field = ""
    status = rpc_status.from_call(error) if isinstance(error, grpc.Call) else None
    details_found: list[Any] = list(status.details) if status is not None else []
    for detail in details_found:
        info = error_details_pb2.ErrorInfo()
        if detail.Unpack(info):
            reason, field = info.reason, info.metadata.get("field", "")
    return RemoteError(f"{code}: {details}", details=details or "", reason=reason, field=field)


# -- access analysis ---------------------------------------------------------------------------


def remote_who_can(
    address: str,
    action: str,
    repository: str,
    include_denied: bool,
    *,
    connect: ChannelFactory = grpc.insecure_channel,
) -> list[dict[str, object]]:
    """What `dockgate who-can` prints, a JSON object a finding, every page read."""
    request = analysis_pb2.WhoCanRequest(
        action=action, repository=repository, include_denied=include_denied
    )
    with connect(address) as channel:
        pages = _pages(analysis_pb2_grpc.AnalyzerStub(channel).WhoCan, request)
    return [_finding(found) for page in pages for found in page.findings]


def remote_what_can(
    address: str,
    principal: str,
    repository: str | None,
    include_denied: bool,
    *,
    connect: ChannelFactory = grpc.insecure_channel,
) -> list[dict[str, object]]:
    request = analysis_pb2.WhatCanRequest(
        principal=principal, repository=repository or "", include_denied=include_denied
    )
    with connect(address) as channel:
        pages = _pages(analysis_pb2_grpc.AnalyzerStub(channel).WhatCan, request)
    return [_finding(found) for page in pages for found in page.findings]


def remote_preview(
    address: str,
    *,
    bundle: str | None = None,
    policy: tuple[str, str, str] | None = None,
    connect: ChannelFactory = grpc.insecure_channel,
) -> list[dict[str, object]]:
    """A bundle's JSON text, or a policy as (document text, kind, target)."""
    if policy is not None:
        document, kind, target = policy
        request = analysis_pb2.PreviewRequest(
            policy=analysis_pb2.ProposedPolicy(document=document, kind=kind, target=target)
        )
    else:
        request = analysis_pb2.PreviewRequest(bundle=bundle or "")
    with connect(address) as channel:
        pages = _pages(analysis_pb2_grpc.AnalyzerStub(channel).Preview, request)
    return [_change(change) for page in pages for change in page.changes]


def _pages(method: Callable[..., Any], request: Any) -> list[Any]:
    restarts = 0
    while True:
        pages: list[Any] = []
        request.page.CopyFrom(analysis_pb2.PageRequest(size=_PAGE_SIZE))
        try:
            while True:
                page = method(request, timeout=_ANALYSIS_TIMEOUT)
                pages.append(page)
                if not page.next_page_token:
                    return pages
                request.page.token = page.next_page_token
        except grpc.RpcError as error:
            failure = _remote_error(error)
            if failure.reason != "PAGE_EXPIRED" or restarts >= _RESTARTS:
                raise failure from None
            restarts += 1


def _finding(message: analysis_pb2.AccessFinding) -> dict[str, object]:
    """As `analysis.Finding.to_json` spells it."""
    result: dict[str, object] = {
        "principal": message.principal,
        "type": message.type,
        "action": message.action,
        "repository": message.repository,
        # never read an unknown access as a grant
        "access": _ACCESS.get(message.access, "ImplicitlyDenied"),
        "revision": message.revision,
        "reasons": [_reason(r) for r in message.reasons],
    }
    if not message.decided:
        result["decided"] = False
    if message.conditions:
        result["conditions"] = [_conditional(c) for c in message.conditions]
    if message.has_example:
        result["example"] = {
            entry.key: list(entry.values) if entry.list else (list(entry.values) or [""])[0]
            for entry in message.example
        }
    return result


def _change(message: analysis_pb2.AccessChange) -> dict[str, object]:
    """As `analysis.AccessChange.to_json` spells it."""
    result: dict[str, object] = {
        "principal": message.principal,
        "type": message.type,
        "action": message.action,
        "repository": message.repository,
        "before": _ACCESS.get(message.before, "ImplicitlyDenied"),
        "after": _ACCESS.get(message.after, "ImplicitlyDenied"),
        "newAccess": message.new_access,
        "revision": message.revision,
        "reasons": [_reason(r) for r in message.reasons],
    }
    if not message.decided:
        result["decided"] = False
    if message.conditions:
        result["conditions"] = [_conditional(c) for c in message.conditions]
    return result


def _conditional(message: analysis_pb2.ConditionalStatement) -> dict[str, object]:
    result: dict[str, object] = {"policy": message.policy, "statement": message.statement}
    if message.HasField("sid"):
        result["sid"] = message.sid
    result["effect"] = message.effect
    block: dict[str, dict[str, list[str]]] = {}
    for clause in message.condition:
        block.setdefault(clause.operator, {})[clause.key] = list(clause.values)
    result["condition"] = block
    result["keys"] = list(message.keys)
    return result


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
