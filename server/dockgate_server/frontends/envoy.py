"""Envoy's ext_authz (`envoy.service.auth.v3.Authorization/Check`) on the decision port of every
worker: each `Check` asks the registry gate about the HTTP request Envoy describes."""

from __future__ import annotations

import argparse
import json
import logging
from collections.abc import Iterable, Mapping
from typing import Any

import grpc
from envoy.config.core.v3 import base_pb2
from envoy.service.auth.v3 import external_auth_pb2, external_auth_pb2_grpc
from envoy.type.v3 import http_status_pb2
from google.rpc import code_pb2, status_pb2  # type: ignore[import-untyped]

from dockgate_server.frontends.door import Listen, Option, Placement, Section, Site
from dockgate_server.frontends.registry import registry_gate
from dockgate_server.registry.gate import GateAnswer, GateRequest, RegistryGate

__all__ = ["EnvoyAuthorization", "EnvoyDoor"]

log = logging.getLogger("dockgate.envoy")

_OVERWRITE = base_pb2.HeaderValueOption.OVERWRITE_IF_EXISTS_OR_ADD
_SERVICE = external_auth_pb2.DESCRIPTOR.services_by_name["Authorization"]


class EnvoyDoor:
    name = "envoy"
    placement = Placement.EVERY_WORKER
    announces: tuple[str, ...] = ()
    uses_registry = True
    options = (
        Option(
            ("--envoy",),
            {
                "action": "store_true",
                "help": "serve Envoy's ext_authz (envoy.service.auth.v3.Authorization) on the "
                "decision port",
            },
            Section.REGISTRY,
        ),
    )

    def configure(self, arguments: argparse.Namespace) -> bool | None:
        return True if arguments.envoy else None

    def listens(self, settings: bool) -> tuple[Listen, ...]:
        return ()  # the decision port's

    async def open(self, settings: bool, site: Site) -> OnDecisionPort:
        port = site.grpc_ports.get("decision")
        if port is None:
            raise RuntimeError("Envoy's ext_authz needs the decision port, opened before it")
        # guarded and drained with the Authorizer: one admission bound for both
        port.add_guarded(_SERVICE, EnvoyAuthorization(registry_gate(site.registry, site.runtime)))
        return OnDecisionPort()


class OnDecisionPort:
    """A service on the decision port: that port serves, reflects and drains it."""

    ports: Mapping[str, int] = {}

    async def serve(self) -> None:
        """The decision port starts it."""

    async def reflect(self, reachable: bool, fresh: bool) -> None:
        """The decision port's health covers it."""

    async def drain(self, grace: float) -> None:
        """The decision port's drain finishes its calls."""


class EnvoyAuthorization(external_auth_pb2_grpc.AuthorizationServicer):  # type: ignore[misc]
    """Each `Check` asks the gate about the HTTP request Envoy describes.

    The client is the downstream address Envoy reports; its X-Forwarded-For counts only when that
    address is a trusted proxy. `aws:SecureTransport` follows X-Forwarded-Proto from a trusted
    proxy, else the scheme Envoy reports (Envoy derives it from the connection)."""

    def __init__(self, gate: RegistryGate) -> None:
        self.gate = gate

    async def Check(  # noqa: N802 - the contract's name
        self,
        request: external_auth_pb2.CheckRequest,
        context: grpc.aio.ServicerContext[object, object],
    ) -> external_auth_pb2.CheckResponse:
        try:
            http = request.attributes.request.http
            answer = self.gate.check(self._gate_request(request))
            return _to_envoy(answer, http.path)
        except Exception:
            log.exception("envoy check failed: the call is denied")
            return _fail_closed()

    def _gate_request(self, request: external_auth_pb2.CheckRequest) -> GateRequest:
        http = request.attributes.request.http
        headers = _headers(http)
        peer = request.attributes.source.address.socket_address.address
        proto = headers.get("x-forwarded-proto")
        secure: bool | None = None
        if proto and self.gate.trusts(peer):
            secure = proto.split(",")[0].strip().lower() == "https"
        elif http.scheme:
            secure = http.scheme.lower() == "https"
        return GateRequest(
            method=http.method,
            target=http.path,  # Envoy's path carries the query
            host=http.host,
            authorization=headers.get("authorization"),
            peer=peer,
            forwarded_for=headers.get("x-forwarded-for"),
            secure=secure,
        )


def _headers(http: Any) -> dict[str, str]:
    """Lower-case names to values: from `headers`, or `header_map` when Envoy sends raw values."""
    if http.headers:
        return {name.lower(): value for name, value in http.headers.items()}
    result: dict[str, str] = {}
    for header in http.header_map.headers:
        value = header.raw_value.decode("latin-1") if header.raw_value else header.value
        name = header.key.lower()
        # Envoy joins repeated headers with a comma in `headers`: do the same here
        result[name] = f"{result[name]},{value}" if name in result else value
    return result


def _to_envoy(answer: GateAnswer, path: str) -> external_auth_pb2.CheckResponse:
    if answer.status == 200 and not answer.answered_here:
        ok = external_auth_pb2.OkHttpResponse(
            # the registry behind must never see the registry token (it may run its own auth)
            headers_to_remove=["authorization"],
            response_headers_to_add=_options(answer.headers),
        )
        if answer.upstream_target != path:  # a mount the caller may not make: a plain upload
            ok.query_parameters_to_remove.extend(["mount", "from"])
        return external_auth_pb2.CheckResponse(
            status=status_pb2.Status(code=code_pb2.OK), ok_response=ok
        )
    # a denied response is also how Envoy answers with a body of ours (the catalog, with 200)
    code = code_pb2.UNAUTHENTICATED if answer.status == 401 else code_pb2.PERMISSION_DENIED
    return external_auth_pb2.CheckResponse(
        status=status_pb2.Status(code=code),
        denied_response=external_auth_pb2.DeniedHttpResponse(
            status=http_status_pb2.HttpStatus(code=answer.status),
            headers=_options(answer.headers),
            body=answer.body.decode("utf-8"),
        ),
    )


def _options(headers: Iterable[tuple[str, str]]) -> list[base_pb2.HeaderValueOption]:
    return [
        base_pb2.HeaderValueOption(
            header=base_pb2.HeaderValue(key=name, value=value), append_action=_OVERWRITE
        )
        for name, value in headers
    ]


def _fail_closed() -> external_auth_pb2.CheckResponse:
    body = json.dumps(
        {"errors": [{"code": "DENIED", "message": "the call could not be authorized"}]}
    )
    return external_auth_pb2.CheckResponse(
        status=status_pb2.Status(code=code_pb2.PERMISSION_DENIED),
        denied_response=external_auth_pb2.DeniedHttpResponse(
            status=http_status_pb2.HttpStatus(code=403),
            headers=_options([("Content-Type", "application/json; charset=utf-8")]),
            body=body,
        ),
    )
