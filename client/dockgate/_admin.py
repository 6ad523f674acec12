"""`AdminClient`: the store's writes and reads over `dockgate.v1.PolicyAdmin`, with the token."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import grpc

from dockgate._client import DEFAULT_TIMEOUT, Credentials
from dockgate._errors import from_rpc_error
from dockgate.v1 import admin_pb2, admin_pb2_grpc

__all__ = ["AdminClient", "Finding"]

T = TypeVar("T")
TOKEN_VARIABLE = "DOCKGATE_ADMIN_TOKEN"


@dataclass(frozen=True, slots=True)
class Finding:
    severity: str
    pointer: str
    message: str


class AdminClient:
    """Writes answer with the revision they raised the store to; pass it as `at_least_revision`
    to `Client.authorize` to read your own write."""

    def __init__(
        self,
        target: str = "127.0.0.1:50052",
        token: str | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        credentials: Credentials | None = None,
    ) -> None:
        token = token or os.environ.get(TOKEN_VARIABLE)
        if not token:
            raise ValueError(f"an admin token is needed: pass `token` or set {TOKEN_VARIABLE}")
        self.timeout = timeout
        self._metadata = (("authorization", f"Bearer {token}"),)
        self._channel = (
            grpc.secure_channel(target, credentials.channel_credentials())
            if credentials
            else grpc.insecure_channel(target)
        )
        self.stub = admin_pb2_grpc.PolicyAdminStub(self._channel)
        """the generated stub, for calls this class has no method for (pass `metadata`)"""

    @property
    def metadata(self) -> tuple[tuple[str, str], ...]:
        return self._metadata

    def __enter__(self) -> AdminClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        self._channel.close()

    def _call(self, method: Callable[..., T], request: object) -> T:
        try:
            return method(request, timeout=self.timeout, metadata=self._metadata)
        except grpc.RpcError as error:
            raise from_rpc_error(error) from None

    def revision(self) -> int:
        return self._call(self.stub.GetRevision, admin_pb2.GetRevisionRequest()).revision

    def import_bundle(self, bundle: Mapping[str, Any] | str, *, replace: bool = False) -> int:
        text = bundle if isinstance(bundle, str) else json.dumps(bundle)
        return self._call(
            self.stub.ImportBundle, admin_pb2.ImportBundleRequest(bundle=text, replace=replace)
        ).revision

    def export_bundle(self) -> dict[str, Any]:
        response = self._call(self.stub.ExportBundle, admin_pb2.ExportBundleRequest())
        result: dict[str, Any] = json.loads(response.bundle)
        return result

    def validate_policy(
        self, document: Mapping[str, Any] | str, kind: str = "identity"
    ) -> list[Finding]:
        text = document if isinstance(document, str) else json.dumps(document)
        response = self._call(
            self.stub.ValidatePolicy, admin_pb2.ValidatePolicyRequest(document=text, kind=kind)
        )
        return [Finding(f.severity, f.pointer, f.message) for f in response.findings]

    def put_repository(
        self,
        arn: str,
        *,
        tags: Mapping[str, str] | None = None,
        policy: Mapping[str, Any] | None = None,
    ) -> int:
        message = admin_pb2.Repository(arn=arn, tags=dict(tags or {}))
        if policy is not None:
            message.policy = json.dumps(policy)
        return self._call(self.stub.PutRepository, message).revision

    def set_repository_policy(self, arn: str, policy: Mapping[str, Any]) -> int:
        request = admin_pb2.SetRepositoryPolicyRequest(arn=arn, policy=json.dumps(policy))
        return self._call(self.stub.SetRepositoryPolicy, request).revision

    def delete_repository_policy(self, arn: str) -> int:
        return self._call(self.stub.DeleteRepositoryPolicy, admin_pb2.ArnRef(arn=arn)).revision

    def put_user(
        self,
        account: str,
        name: str,
        *,
        path: str = "/",
        tags: Mapping[str, str] | None = None,
        groups: tuple[str, ...] = (),
        inline_policies: Mapping[str, Mapping[str, Any]] | None = None,
        attached_policies: tuple[str, ...] = (),
        permissions_boundary: str | None = None,
    ) -> int:
        message = admin_pb2.User(
            account=account,
            name=name,
            path=path,
            tags=dict(tags or {}),
            groups=list(groups),
            inline_policies=[
                admin_pb2.InlinePolicy(name=n, document=json.dumps(d))
                for n, d in (inline_policies or {}).items()
            ],
            attached_policies=list(attached_policies),
            permissions_boundary=permissions_boundary or "",
        )
        return self._call(self.stub.PutUser, message).revision

    def put_role(
        self,
        account: str,
        name: str,
        *,
        path: str = "/",
        tags: Mapping[str, str] | None = None,
        trust_policy: Mapping[str, Any] | None = None,
        inline_policies: Mapping[str, Mapping[str, Any]] | None = None,
        attached_policies: tuple[str, ...] = (),
        permissions_boundary: str | None = None,
    ) -> int:
        message = admin_pb2.Role(
            account=account,
            name=name,
            path=path,
            tags=dict(tags or {}),
            trust_policy=json.dumps(trust_policy) if trust_policy is not None else "",
            inline_policies=[
                admin_pb2.InlinePolicy(name=n, document=json.dumps(d))
                for n, d in (inline_policies or {}).items()
            ],
            attached_policies=list(attached_policies),
            permissions_boundary=permissions_boundary or "",
        )
        return self._call(self.stub.PutRole, message).revision

    def delete_user(self, account: str, name: str) -> int:
        return self._call(
            self.stub.DeleteUser, admin_pb2.EntityRef(account=account, name=name)
        ).revision

    def delete_role(self, account: str, name: str) -> int:
        return self._call(
            self.stub.DeleteRole, admin_pb2.EntityRef(account=account, name=name)
        ).revision
