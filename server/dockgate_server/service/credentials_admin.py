"""The credential RPCs of `dockgate.v1.PolicyAdmin`: sessions, login tokens, signing keys.

A mixin of `AdminService`: decisions come from the process's own snapshot (brought up to the
store's revision first), writes go through the admin's store thread like every other write.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import unquote

import grpc

from dockgate.v1 import admin_pb2, errors_pb2
from dockgate_server.credentials.login import LoginRejected
from dockgate_server.credentials.sessions import (
    AccessDeniedError,
    AssumeRoleInput,
    CredentialInputError,
    FederationInput,
    assume_role,
    check_login,
    get_federation_token,
)
from dockgate_server.credentials.tokens import (
    TOKEN_LIFETIME,
    LoginVerifier,
    issue_token,
    new_signing_key,
)
from dockgate_server.engine.sessions import format_time
from dockgate_server.engine.snapshot import Snapshot
from dockgate_server.policy.findings import PolicyError
from dockgate_server.policy.parse import load_json
from dockgate_server.policy.principal import CallerKind, parse_caller
from dockgate_server.service.clock import ServerClock
from dockgate_server.service.convert import context_from_wire
from dockgate_server.service.errors import ServiceError, refusing
from dockgate_server.service.state import DecisionState
from dockgate_server.store.model import Change, Document, Session, SigningKey
from dockgate_server.store.port import FleetStore

__all__ = ["KEY_LIFETIME", "CredentialsAdmin"]

log = logging.getLogger("dockgate.admin")
T = TypeVar("T")
Context = grpc.aio.ServicerContext[Any, Any]

KEY_LIFETIME = TOKEN_LIFETIME
"""a retired key is dropped once every token it signed has expired"""
_FRESHNESS = 2.0


class CredentialsAdmin:
    """Needs, from the class it is mixed into: `_run`, `_write`, `_on_write`, `_state`,
    `_clock`."""

    _state: DecisionState | None
    _clock: ServerClock
    _on_write: Callable[[], None]
    registry_region: str | None = None
    """the registry's Region (`--registry-region`): a login's `aws:RequestedRegion`; None: not
    known, and the key is absent (a Region-fencing SCP then refuses every login, as it should)"""

    async def _run(
        self, context: Context, work: Callable[[FleetStore], T], *, target: bool = False
    ) -> T:
        raise NotImplementedError  # provided by AdminService

    async def _write(
        self,
        context: Context,
        work: Callable[[FleetStore], Change],
        what: str,
        *,
        target: bool = False,
    ) -> admin_pb2.WriteResponse:
        raise NotImplementedError  # provided by AdminService

    # -- sessions ---------------------------------------------------------------------------

    @refusing
    async def AssumeRole(
        self, request: admin_pb2.AssumeRoleRequest, context: Context
    ) -> admin_pb2.SessionResponse:
        given = AssumeRoleInput(
            request.caller,
            request.role_arn,
            request.session_name,
            request.duration_seconds,
            _document(request.policy, "policy"),
            dict(request.tags),
            request.source_identity or None,
            request.external_id or None,
            context_from_wire(request.context),
        )
        return await self._issue(context, lambda snapshot, now: assume_role(snapshot, given, now))

    @refusing
    async def GetFederationToken(
        self, request: admin_pb2.GetFederationTokenRequest, context: Context
    ) -> admin_pb2.SessionResponse:
        given = FederationInput(
            request.caller,
            request.name,
            request.duration_seconds,
            _document(request.policy, "policy"),
            dict(request.tags),
            context_from_wire(request.context),
        )
        return await self._issue(
            context, lambda snapshot, now: get_federation_token(snapshot, given, now)
        )

    async def ListSessions(
        self, request: admin_pb2.ListRequest, context: Context
    ) -> admin_pb2.SessionList:
        sessions = await self._run(context, lambda s: s.load_sessions(live_only=True))
        return admin_pb2.SessionList(
            sessions=[
                _session_out(session)
                for session in sessions
                if not request.account or session.arn.split(":")[4] == request.account
            ]
        )

    async def RevokeSession(
        self, request: admin_pb2.ArnRef, context: Context
    ) -> admin_pb2.WriteResponse:
        now = self._clock.now()
        return await self._write(
            context,
            lambda s: s.revoke_session(request.arn, now),
            "RevokeSession",
            target=True,
        )

    async def _issue(
        self, context: Context, decide: Callable[[Snapshot, float], Session]
    ) -> admin_pb2.SessionResponse:
        snapshot = await self._fresh_snapshot(context)
        session = _refusals(lambda: decide(snapshot, self._clock.now()))
        written = await self._write(context, lambda s: s.put_session(session), "IssueSession")
        return admin_pb2.SessionResponse(
            arn=session.arn,
            issued_at=session.issued_at,
            expires_at=session.expires_at,
            revision=written.revision,
        )

    # -- login tokens -----------------------------------------------------------------------

    @refusing
    async def GetLoginPassword(
        self, request: admin_pb2.GetLoginPasswordRequest, context: Context
    ) -> admin_pb2.LoginPasswordResponse:
        _check_login_principal(request.principal)
        snapshot = await self._fresh_snapshot(context)
        now = self._clock.now()
        # what AWS sets on GetAuthorizationToken; a value the caller passes wins (an admin front
        # end that logs people in knows their address better than this connection does)
        login_context = {
            **self._login_context(context, now),
            **context_from_wire(request.context),
        }
        _refusals(lambda: check_login(snapshot, request.principal, login_context, now))
        key = await self._run(context, self._current_key)
        self._on_write()  # a first key may have been written
        session = snapshot.credentials.sessions.get(request.principal)
        password, token = issue_token(
            key, request.principal, session.session_id if session else None, now
        )
        expires_at = min(token.expires_at, session.expires_at) if session else token.expires_at
        log.info("login token issued", extra={"fields": {"token_id": token.token_id}})
        # every process serving decisions refreshes from the store each poll: hand the password
        # out once they have all had two polls to see its key (new after a rotation) and session
        await asyncio.sleep(2 * self._state_poll_interval())
        return admin_pb2.LoginPasswordResponse(
            password=password,
            token_id=token.token_id,
            expires_at=expires_at,
            principal=request.principal,
        )

    @refusing
    async def RevokeLoginToken(
        self, request: admin_pb2.RevokeLoginTokenRequest, context: Context
    ) -> admin_pb2.WriteResponse:
        if not request.token_id:
            raise _invalid("token_id", "a token ID is required")
        until = request.expires_at or self._clock.now() + TOKEN_LIFETIME
        return await self._write(
            context,
            lambda s: s.revoke_token(request.token_id, until),
            "RevokeLoginToken",
        )

    async def RotateLoginKey(
        self, request: admin_pb2.RotateLoginKeyRequest, context: Context
    ) -> admin_pb2.RotateLoginKeyResponse:
        key = new_signing_key(self._clock.now())
        written = await self._write(context, lambda s: s.add_signing_key(key), "RotateLoginKey")
        return admin_pb2.RotateLoginKeyResponse(key_id=key.key_id, revision=written.revision)

    @refusing
    async def VerifyLoginPassword(
        self, request: admin_pb2.VerifyLoginPasswordRequest, context: Context
    ) -> admin_pb2.VerifyLoginPasswordResponse:
        snapshot = await self._fresh_snapshot(context)
        verify = LoginVerifier(lambda: snapshot.credentials, self._clock.now)
        try:
            login = verify(request.password)
        except LoginRejected as rejected:
            raise ServiceError(
                grpc.StatusCode.UNAUTHENTICATED,
                errors_pb2.INVALID_CREDENTIALS,
                str(rejected),
                rejection=str(rejected.rejection),
            ) from None
        return admin_pb2.VerifyLoginPasswordResponse(
            principal=login.principal, expires_at=login.expires_at
        )

    def _login_context(self, context: Context, now: float) -> dict[str, str]:
        """The keys AWS sets on a GetAuthorizationToken call, as far as this call knows them."""
        keys = {
            "aws:CurrentTime": format_time(now),
            "aws:EpochTime": str(int(now)),
            "aws:SecureTransport": "true" if _is_tls(context) else "false",
        }
        if self.registry_region is not None:
            keys["aws:RequestedRegion"] = self.registry_region
        address = _peer_address(context.peer())
        if address is not None:
            keys["aws:SourceIp"] = address
        return keys

    def _state_poll_interval(self) -> float:
        return self._state.poll_interval if self._state is not None else 0.0

    def _current_key(self, store: FleetStore) -> SigningKey:
        """The key that signs new tokens; the first call makes one."""
        keys = store.signing_keys()
        if keys and keys[-1].retired_at is None:
            return keys[-1]
        key = new_signing_key(self._clock.now())
        store.add_signing_key(key)
        return key

    # -- sweeping ---------------------------------------------------------------------------

    def sweep(self, store: FleetStore) -> Change | None:
        """Drop what has expired by the server's clock (run on the store thread)."""
        return store.sweep(self._clock.now(), KEY_LIFETIME)

    # -- plumbing ---------------------------------------------------------------------------

    async def _fresh_snapshot(self, context: Context) -> Snapshot:
        """This process's snapshot, at least at the store's current revision."""
        if self._state is None:
            raise RuntimeError("credential calls need the decision state")
        revision = await self._run(context, lambda s: s.revision)
        snapshot = await self._state.at_least(revision, _FRESHNESS)
        if snapshot is None:
            raise ServiceError(
                grpc.StatusCode.UNAVAILABLE,
                errors_pb2.REVISION_NOT_REACHED,
                f"the snapshot did not reach revision {revision} within {_FRESHNESS:g} s",
            )
        return snapshot


def _check_login_principal(principal: str) -> None:
    """IAM: a role acts only through its sessions, so a bare role ARN never calls
    GetAuthorizationToken (its sessions do: `arn:aws:sts::ACCOUNT:assumed-role/ROLE/NAME`)."""
    try:
        caller = parse_caller(principal)
    except ValueError as problem:
        raise _invalid("principal", str(problem)) from None
    if caller.kind is CallerKind.ROLE:
        raise _invalid(
            "principal",
            f"principal `{principal}` is a role, which cannot log in: "
            "assume it and log in as the session",
        )


def _is_tls(context: Context) -> bool:
    security = context.auth_context().get("transport_security_type", ())
    return b"ssl" in security


def _peer_address(peer: str) -> str | None:
    """The IP address of a gRPC peer (`ipv4:127.0.0.1:5000`, `ipv6:[::1]:5000`), or None."""
    scheme, _, rest = unquote(peer).partition(":")
    if scheme == "ipv4":
        host = rest.rpartition(":")[0]
    elif scheme == "ipv6" and rest.startswith("["):
        host = rest[1 : rest.find("]")]
    else:
        return None  # a Unix socket, or nothing known: the key stays absent
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)  # a dual-stack socket's view of an IPv4 client
    return str(address)


def _refusals(work: Callable[[], T]) -> T:
    """The credential checks' refusals, as statuses."""
    try:
        return work()
    except CredentialInputError as problem:
        raise _invalid(problem.field, str(problem)) from None
    except AccessDeniedError as denied:
        raise ServiceError(
            grpc.StatusCode.PERMISSION_DENIED, errors_pb2.ACCESS_DENIED, str(denied)
        ) from None
    except PolicyError as problem:
        first = problem.errors[0] if problem.errors else None
        raise ServiceError(
            grpc.StatusCode.INVALID_ARGUMENT,
            errors_pb2.INVALID_POLICY,
            str(problem),
            field="policy",
            pointer=first.pointer if first else "",
        ) from None


def _document(text: str, field: str) -> Document | None:
    if not text:
        return None
    try:
        document: Document = load_json(text)
    except ValueError as problem:
        raise _invalid(field, f"not JSON: {problem}") from None
    return document


def _invalid(field: str, message: str) -> ServiceError:
    return ServiceError(
        grpc.StatusCode.INVALID_ARGUMENT,
        errors_pb2.INVALID_CREDENTIAL_REQUEST,
        message,
        field=field,
    )


def _session_out(session: Session) -> admin_pb2.Session:
    return admin_pb2.Session(
        arn=session.arn,
        caller=session.caller,
        issued_at=session.issued_at,
        expires_at=session.expires_at,
        policy="" if session.policy is None else json.dumps(session.policy),
        tags=dict(session.tags),
        source_identity=session.source_identity or "",
    )
