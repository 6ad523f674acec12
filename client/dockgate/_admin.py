"""`AdminClient`: the store's writes and reads over `dockgate.v1.PolicyAdmin`, with the token."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import grpc

from dockgate._client import DEFAULT_TIMEOUT, Credentials
from dockgate._errors import from_rpc_error
from dockgate.v1 import admin_pb2, admin_pb2_grpc, authorizer_pb2

__all__ = ["AdminClient", "Finding", "LoginPassword", "Session"]

T = TypeVar("T")
TOKEN_VARIABLE = "DOCKGATE_ADMIN_TOKEN"


@dataclass(frozen=True, slots=True)
class Finding:
    severity: str
    pointer: str
    message: str


@dataclass(frozen=True, slots=True)
class Session:
    """A session the server issued: act as `arn` until `expires_at` (seconds since the epoch)."""

    arn: str
    issued_at: float
    expires_at: float
    revision: int
    """the store revision that holds the session: pass it as `at_least_revision`"""


@dataclass(frozen=True, slots=True)
class LoginPassword:
    """The password for `docker login --username AWS`; `token_id` is for revoking it."""

    password: str = field(repr=False)
    token_id: str
    expires_at: float
    principal: str


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
        """Land a bundle of any size in one transaction (streamed in pieces); its revision."""
        text = bundle if isinstance(bundle, str) else json.dumps(bundle)
        data = text.encode()
        try:
            return int(
                self.stub.ImportBundleChunks(
                    _bundle_chunks(data, replace=replace),
                    timeout=self.timeout,
                    metadata=self._metadata,
                ).revision
            )
        except grpc.RpcError as error:
            if not _unimplemented(error):
                raise from_rpc_error(error) from None
        # a server older than the streamed calls: one message, as far as its limit allows
        return self._call(
            self.stub.ImportBundle, admin_pb2.ImportBundleRequest(bundle=text, replace=replace)
        ).revision

    def export_bundle(self) -> dict[str, Any]:
        """The whole fleet as a bundle, streamed in pieces (any size)."""
        try:
            pieces = self.stub.ExportBundleChunks(
                admin_pb2.ExportBundleRequest(), timeout=self.timeout, metadata=self._metadata
            )
            text: bytes | str = b"".join(piece.data for piece in pieces)
        except grpc.RpcError as error:
            if not _unimplemented(error):
                raise from_rpc_error(error) from None
            text = self._call(self.stub.ExportBundle, admin_pb2.ExportBundleRequest()).bundle
        result: dict[str, Any] = json.loads(text)
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

    # -- temporary credentials --------------------------------------------------------------

    def assume_role(
        self,
        caller: str,
        role_arn: str,
        session_name: str,
        *,
        duration: int = 0,
        policy: Mapping[str, Any] | None = None,
        tags: Mapping[str, str] | None = None,
        source_identity: str | None = None,
        external_id: str | None = None,
        context: Mapping[str, str | list[str]] | None = None,
    ) -> Session:
        """As STS AssumeRole; raises `AccessDeniedError` when the trust policy does not allow."""
        request = admin_pb2.AssumeRoleRequest(
            caller=caller,
            role_arn=role_arn,
            session_name=session_name,
            duration_seconds=duration,
            policy=json.dumps(policy) if policy is not None else "",
            tags=dict(tags or {}),
            source_identity=source_identity or "",
            external_id=external_id or "",
            context=_context(context),
        )
        return _session(self._call(self.stub.AssumeRole, request))

    def get_federation_token(
        self,
        caller: str,
        name: str,
        *,
        duration: int = 0,
        policy: Mapping[str, Any] | None = None,
        tags: Mapping[str, str] | None = None,
        context: Mapping[str, str | list[str]] | None = None,
    ) -> Session:
        """As STS GetFederationToken, for the IAM user `caller`."""
        request = admin_pb2.GetFederationTokenRequest(
            caller=caller,
            name=name,
            duration_seconds=duration,
            policy=json.dumps(policy) if policy is not None else "",
            tags=dict(tags or {}),
            context=_context(context),
        )
        return _session(self._call(self.stub.GetFederationToken, request))

    def revoke_session(self, arn: str) -> int:
        return self._call(self.stub.RevokeSession, admin_pb2.ArnRef(arn=arn)).revision

    def get_login_password(
        self, principal: str, *, context: Mapping[str, str | list[str]] | None = None
    ) -> LoginPassword:
        """As ECR GetAuthorizationToken: needs `ecr:GetAuthorizationToken` for `principal`."""
        request = admin_pb2.GetLoginPasswordRequest(principal=principal, context=_context(context))
        response = self._call(self.stub.GetLoginPassword, request)
        return LoginPassword(
            response.password, response.token_id, response.expires_at, response.principal
        )

    def verify_login_password(self, password: str) -> str:
        """The principal the password stands for; `UnauthenticatedError` when it does not
        verify (its `metadata["rejection"]` says why: expired, revoked, tampered, ...)."""
        request = admin_pb2.VerifyLoginPasswordRequest(password=password)
        return self._call(self.stub.VerifyLoginPassword, request).principal

    def revoke_login_token(self, token_id: str) -> int:
        request = admin_pb2.RevokeLoginTokenRequest(token_id=token_id)
        return self._call(self.stub.RevokeLoginToken, request).revision

    def rotate_login_key(self) -> str:
        """A new signing key for login tokens; returns its ID."""
        return self._call(self.stub.RotateLoginKey, admin_pb2.RotateLoginKeyRequest()).key_id


CHUNK_BYTES = 1024 * 1024
"""bytes of a bundle per streamed piece: well under every channel's message limit"""


def _bundle_chunks(data: bytes, *, replace: bool = False) -> Iterator[admin_pb2.BundleChunk]:
    """`data` in pieces for `ImportBundleChunks`; the first carries `replace`."""
    for start in range(0, max(len(data), 1), CHUNK_BYTES):
        yield admin_pb2.BundleChunk(
            data=data[start : start + CHUNK_BYTES], replace=replace and start == 0
        )


def _unimplemented(error: grpc.RpcError) -> bool:
    code = getattr(error, "code", lambda: None)()
    return bool(code == grpc.StatusCode.UNIMPLEMENTED)


def _context(
    context: Mapping[str, str | list[str]] | None,
) -> dict[str, authorizer_pb2.ContextValues]:
    return {
        key: authorizer_pb2.ContextValues(values=[value] if isinstance(value, str) else value)
        for key, value in (context or {}).items()
    }


def _session(response: admin_pb2.SessionResponse) -> Session:
    return Session(response.arn, response.issued_at, response.expires_at, response.revision)
