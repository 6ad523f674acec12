"""The `dockgate.v1.PolicyAdmin` servicer: every store write and read, on one writer thread.

SQLite connections belong to one thread, so every call runs on a single-thread executor that owns
the store; a write returns only once committed (durable), and then nudges the local snapshot.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import grpc

from dockgate.v1 import admin_pb2, admin_pb2_grpc, errors_pb2
from dockgate_server.policy.findings import PolicyError, Severity
from dockgate_server.policy.model import PolicyKind
from dockgate_server.policy.parse import load_json, validate_policy
from dockgate_server.service.clock import ServerClock
from dockgate_server.service.credentials_admin import CredentialsAdmin
from dockgate_server.service.errors import ServiceError, refusing, to_status
from dockgate_server.service.state import DecisionState
from dockgate_server.store.bundle import BundleError, bundle_to_fleet, fleet_to_bundle
from dockgate_server.store.model import (
    Change,
    Fleet,
    Group,
    ManagedPolicy,
    Repository,
    Role,
    User,
)
from dockgate_server.store.port import (
    Conflict,
    FleetStore,
    NotFound,
    StoreError,
    Unavailable,
    open_store,
)

__all__ = ["CHUNK_BYTES", "MAX_BUNDLE_BYTES", "AdminService"]

CHUNK_BYTES = 1024 * 1024
"""bytes of a bundle per streamed piece: well under every channel's message limit"""
MAX_BUNDLE_BYTES = 1024 * 1024 * 1024
"""a streamed import larger than this is refused before it is parsed"""

log = logging.getLogger("dockgate.admin")
T = TypeVar("T")
Context = grpc.aio.ServicerContext[Any, Any]


class AdminService(CredentialsAdmin, admin_pb2_grpc.PolicyAdminServicer):
    def __init__(
        self,
        store_url: str | Path,
        on_write: Callable[[], None],
        *,
        state: DecisionState | None = None,
        clock: ServerClock | None = None,
        registry_region: str | None = None,
    ) -> None:
        self.registry_region = registry_region
        self._store: FleetStore | None = None
        self._url = str(store_url)
        self._on_write = on_write
        self._state = state
        self._clock = clock or ServerClock()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="dockgate-admin")

    def close(self) -> None:
        def shut() -> None:
            if self._store is not None:
                self._store.close()

        self._executor.submit(shut).result()
        self._executor.shutdown()

    async def sweep_forever(self, interval: float) -> None:
        """Every `interval` seconds, drop expired sessions, revocations and retired keys."""
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(interval)
            try:
                change = await loop.run_in_executor(
                    self._executor, lambda: self.sweep(self._open())
                )
            except Exception:
                log.exception("credential sweep failed")  # the next sweep tries again
                continue
            if change is not None:
                self._on_write()
                log.info(
                    "swept expired credentials", extra={"fields": {"revision": change.revision}}
                )

    # -- plumbing ---------------------------------------------------------------------------

    def _open(self) -> FleetStore:
        if self._store is None:
            self._store = open_store(self._url)
        return self._store

    async def _run(
        self, context: Context, work: Callable[[FleetStore], T], *, target: bool = False
    ) -> T:
        """`target`: the call acts on a stored entity it names (a delete, a policy set), so that
        entity's absence is NOT_FOUND; any other refusal (a missing reference) is WRITE_REFUSED."""
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._executor, lambda: work(self._open()))
        except ServiceError as error:
            await context.abort_with_status(to_status(error))
        except PolicyError as problem:
            first = problem.errors[0] if problem.errors else None
            await context.abort_with_status(
                to_status(
                    ServiceError(
                        grpc.StatusCode.INVALID_ARGUMENT,
                        errors_pb2.INVALID_POLICY,
                        str(problem),
                        policy=first.policy if first else "",
                        pointer=first.pointer if first else "",
                    )
                )
            )
        except BundleError as problem:
            await context.abort_with_status(
                to_status(
                    ServiceError(
                        grpc.StatusCode.INVALID_ARGUMENT, errors_pb2.INVALID_BUNDLE, str(problem)
                    )
                )
            )
        except StoreError as problem:
            code, reason = _status_of(problem, target=target)
            await context.abort_with_status(to_status(ServiceError(code, reason, str(problem))))
        raise AssertionError("abort returned")

    async def _write(
        self,
        context: Context,
        work: Callable[[FleetStore], Change],
        what: str,
        *,
        target: bool = False,
    ) -> admin_pb2.WriteResponse:
        change = await self._run(context, work, target=target)
        self._on_write()
        log.info("store write", extra={"fields": {"write": what, "revision": change.revision}})
        return admin_pb2.WriteResponse(revision=change.revision)

    # -- revision ---------------------------------------------------------------------------

    async def GetRevision(
        self, request: admin_pb2.GetRevisionRequest, context: Context
    ) -> admin_pb2.RevisionResponse:
        return admin_pb2.RevisionResponse(revision=await self._run(context, lambda s: s.revision))

    # -- users, groups, roles -----------------------------------------------------------------

    @refusing
    async def PutUser(self, request: admin_pb2.User, context: Context) -> admin_pb2.WriteResponse:
        user = User(
            request.account,
            request.name,
            request.path or "/",
            request.user_id or None,
            dict(request.tags),
            request.permissions_boundary or None,
            tuple(request.groups),
            _inline(request.inline_policies),
            tuple(request.attached_policies),
            request.partition or "aws",
        )
        return await self._write(context, lambda s: s.put_user(user), "PutUser")

    async def GetUser(self, request: admin_pb2.EntityRef, context: Context) -> admin_pb2.User:
        user = await self._run(
            context, lambda s: _found(s.load_user(request.account, request.name), "user", request)
        )
        return _user_out(user)

    async def DeleteUser(
        self, request: admin_pb2.EntityRef, context: Context
    ) -> admin_pb2.WriteResponse:
        return await self._write(
            context,
            lambda s: s.delete_user(request.account, request.name),
            "DeleteUser",
            target=True,
        )

    async def ListUsers(
        self, request: admin_pb2.ListRequest, context: Context
    ) -> admin_pb2.UserList:
        fleet = await self._run(context, lambda s: s.load_fleet())
        return admin_pb2.UserList(
            users=[_user_out(u) for u in fleet.users if _in(request, u.account)]
        )

    @refusing
    async def PutGroup(self, request: admin_pb2.Group, context: Context) -> admin_pb2.WriteResponse:
        group = Group(
            request.account,
            request.name,
            request.path or "/",
            request.group_id or None,
            _inline(request.inline_policies),
            tuple(request.attached_policies),
            request.partition or "aws",
        )
        return await self._write(context, lambda s: s.put_group(group), "PutGroup")

    async def GetGroup(self, request: admin_pb2.EntityRef, context: Context) -> admin_pb2.Group:
        group = await self._run(
            context, lambda s: _found(s.load_group(request.account, request.name), "group", request)
        )
        return _group_out(group)

    async def DeleteGroup(
        self, request: admin_pb2.EntityRef, context: Context
    ) -> admin_pb2.WriteResponse:
        return await self._write(
            context,
            lambda s: s.delete_group(request.account, request.name),
            "DeleteGroup",
            target=True,
        )

    async def ListGroups(
        self, request: admin_pb2.ListRequest, context: Context
    ) -> admin_pb2.GroupList:
        fleet = await self._run(context, lambda s: s.load_fleet())
        return admin_pb2.GroupList(
            groups=[_group_out(g) for g in fleet.groups if _in(request, g.account)]
        )

    @refusing
    async def PutRole(self, request: admin_pb2.Role, context: Context) -> admin_pb2.WriteResponse:
        role = Role(
            request.account,
            request.name,
            request.path or "/",
            request.role_id or None,
            _document(request.trust_policy, "trust_policy") if request.trust_policy else None,
            dict(request.tags),
            request.permissions_boundary or None,
            request.max_session_duration or 3600,
            _inline(request.inline_policies),
            tuple(request.attached_policies),
            request.partition or "aws",
        )
        return await self._write(context, lambda s: s.put_role(role), "PutRole")

    async def GetRole(self, request: admin_pb2.EntityRef, context: Context) -> admin_pb2.Role:
        role = await self._run(
            context, lambda s: _found(s.load_role(request.account, request.name), "role", request)
        )
        return _role_out(role)

    async def DeleteRole(
        self, request: admin_pb2.EntityRef, context: Context
    ) -> admin_pb2.WriteResponse:
        return await self._write(
            context,
            lambda s: s.delete_role(request.account, request.name),
            "DeleteRole",
            target=True,
        )

    async def ListRoles(
        self, request: admin_pb2.ListRequest, context: Context
    ) -> admin_pb2.RoleList:
        fleet = await self._run(context, lambda s: s.load_fleet())
        return admin_pb2.RoleList(
            roles=[_role_out(r) for r in fleet.roles if _in(request, r.account)]
        )

    # -- managed policies -------------------------------------------------------------------

    @refusing
    async def PutManagedPolicy(
        self, request: admin_pb2.ManagedPolicy, context: Context
    ) -> admin_pb2.WriteResponse:
        versions = {
            v.version_id: _document(v.document, f"versions/{v.version_id}")
            for v in request.versions
        }
        name = request.name or request.arn.rsplit("/", 1)[-1]
        policy = ManagedPolicy(
            request.arn,
            name,
            request.path or "/",
            request.default_version,
            versions,
            request.policy_id or None,
        )
        return await self._write(context, lambda s: s.put_policy(policy), "PutManagedPolicy")

    async def GetManagedPolicy(
        self, request: admin_pb2.ArnRef, context: Context
    ) -> admin_pb2.ManagedPolicy:
        policy = await self._run(
            context, lambda s: _found(s.load_policy(request.arn), "managed policy", request)
        )
        return _policy_out(policy)

    async def DeleteManagedPolicy(
        self, request: admin_pb2.ArnRef, context: Context
    ) -> admin_pb2.WriteResponse:
        return await self._write(
            context, lambda s: s.delete_policy(request.arn), "DeleteManagedPolicy", target=True
        )

    async def ListManagedPolicies(
        self, request: admin_pb2.ListRequest, context: Context
    ) -> admin_pb2.ManagedPolicyList:
        fleet = await self._run(context, lambda s: s.load_fleet())
        return admin_pb2.ManagedPolicyList(
            policies=[_policy_out(p) for p in fleet.policies if _in(request, p.account or "")]
        )

    # -- repositories -----------------------------------------------------------------------

    @refusing
    async def PutRepository(
        self, request: admin_pb2.Repository, context: Context
    ) -> admin_pb2.WriteResponse:
        policy = _document(request.policy, "policy") if request.HasField("policy") else None
        repository = Repository(request.arn, dict(request.tags), policy)
        return await self._write(context, lambda s: s.put_repository(repository), "PutRepository")

    async def GetRepository(
        self, request: admin_pb2.ArnRef, context: Context
    ) -> admin_pb2.Repository:
        repository = await self._run(
            context, lambda s: _found(s.load_repository(request.arn), "repository", request)
        )
        return _repository_out(repository)

    async def DeleteRepository(
        self, request: admin_pb2.ArnRef, context: Context
    ) -> admin_pb2.WriteResponse:
        return await self._write(
            context, lambda s: s.delete_repository(request.arn), "DeleteRepository", target=True
        )

    async def ListRepositories(
        self, request: admin_pb2.ListRequest, context: Context
    ) -> admin_pb2.RepositoryList:
        fleet = await self._run(context, lambda s: s.load_fleet())
        return admin_pb2.RepositoryList(
            repositories=[_repository_out(r) for r in fleet.repositories if _in(request, r.account)]
        )

    @refusing
    async def SetRepositoryPolicy(
        self, request: admin_pb2.SetRepositoryPolicyRequest, context: Context
    ) -> admin_pb2.WriteResponse:
        document = _document(request.policy, "policy")
        return await self._write(
            context,
            lambda s: s.set_repository_policy(request.arn, document),
            "SetRepositoryPolicy",
            target=True,
        )

    async def DeleteRepositoryPolicy(
        self, request: admin_pb2.ArnRef, context: Context
    ) -> admin_pb2.WriteResponse:
        return await self._write(
            context,
            lambda s: s.set_repository_policy(request.arn, None),
            "DeleteRepositoryPolicy",
            target=True,
        )

    # -- organization, bundles, validation --------------------------------------------------

    async def SetOrganization(
        self, request: admin_pb2.OrganizationDocument, context: Context
    ) -> admin_pb2.WriteResponse:
        def work(store: FleetStore) -> Change:
            organization = None
            if request.organization:
                wrapper = {
                    "format": "dockgate-bundle/1",
                    "organization": _document(request.organization, "organization"),
                }
                organization = bundle_to_fleet(wrapper).organization
            return store.set_organization(organization)

        return await self._write(context, work, "SetOrganization")

    async def GetOrganization(
        self, request: admin_pb2.GetOrganizationRequest, context: Context
    ) -> admin_pb2.OrganizationDocument:
        def work(store: FleetStore) -> str:
            organization = store.load_organization()
            if organization is None:
                return ""
            return json.dumps(fleet_to_bundle(Fleet(organization=organization))["organization"])

        return admin_pb2.OrganizationDocument(organization=await self._run(context, work))

    @refusing
    async def ImportBundle(
        self, request: admin_pb2.ImportBundleRequest, context: Context
    ) -> admin_pb2.WriteResponse:
        bundle = _document(request.bundle, "bundle", errors_pb2.INVALID_BUNDLE)
        return await self._write(
            context,
            lambda s: s.import_fleet(bundle_to_fleet(bundle), replace=request.replace),
            "ImportBundle",
        )

    async def ExportBundle(
        self, request: admin_pb2.ExportBundleRequest, context: Context
    ) -> admin_pb2.ExportBundleResponse:
        def work(store: FleetStore) -> tuple[str, int]:
            with store.reading() as revision:
                return json.dumps(fleet_to_bundle(store.load_fleet())), revision

        text, revision = await self._run(context, work)
        return admin_pb2.ExportBundleResponse(bundle=text, revision=revision)

    async def ImportBundleChunks(
        self, request_iterator: AsyncIterator[admin_pb2.BundleChunk], context: Context
    ) -> admin_pb2.ImportBundleResponse:
        try:
            text, replace = await _joined(request_iterator)
        except ServiceError as error:
            await context.abort_with_status(to_status(error))
            raise AssertionError("abort returned") from None
        bundle = await self._run(
            context, lambda _: _document(text, "bundle", errors_pb2.INVALID_BUNDLE)
        )

        def work(store: FleetStore) -> tuple[Change, Fleet]:
            fleet = bundle_to_fleet(bundle)
            return store.import_fleet(fleet, replace=replace), fleet

        change, fleet = await self._run(context, work)
        self._on_write()
        log.info(
            "store write",
            extra={"fields": {"write": "ImportBundleChunks", "revision": change.revision}},
        )
        return admin_pb2.ImportBundleResponse(
            revision=change.revision,
            accounts=len(fleet.accounts),
            users=len(fleet.users),
            roles=len(fleet.roles),
            repositories=len(fleet.repositories),
        )

    async def ExportBundleChunks(
        self, request: admin_pb2.ExportBundleRequest, context: Context
    ) -> AsyncIterator[admin_pb2.BundleChunk]:
        def work(store: FleetStore) -> tuple[bytes, int]:
            with store.reading() as revision:
                return json.dumps(fleet_to_bundle(store.load_fleet())).encode(), revision

        data, revision = await self._run(context, work)
        for start in range(0, max(len(data), 1), CHUNK_BYTES):
            yield admin_pb2.BundleChunk(data=data[start : start + CHUNK_BYTES], revision=revision)

    async def ValidatePolicy(
        self, request: admin_pb2.ValidatePolicyRequest, context: Context
    ) -> admin_pb2.ValidatePolicyResponse:
        kinds = {str(kind) for kind in PolicyKind}
        kind = request.kind or "identity"
        if kind not in kinds:
            await context.abort_with_status(
                to_status(
                    ServiceError(
                        grpc.StatusCode.INVALID_ARGUMENT,
                        errors_pb2.INVALID_POLICY,
                        f"`kind` must be one of {', '.join(sorted(kinds))}",
                        field="kind",
                    )
                )
            )
        try:
            document = load_json(request.document)
        except ValueError as problem:
            finding = admin_pb2.Finding(
                severity="error", pointer="", message=f"invalid JSON: {problem}"
            )
            return admin_pb2.ValidatePolicyResponse(valid=False, findings=[finding])
        findings = validate_policy(document, kind=PolicyKind(kind), name=request.name or "policy")
        return admin_pb2.ValidatePolicyResponse(
            valid=not any(f.severity is Severity.ERROR for f in findings),
            findings=[
                admin_pb2.Finding(severity=str(f.severity), pointer=f.pointer, message=str(f))
                for f in findings
            ],
        )


async def _joined(chunks: AsyncIterator[admin_pb2.BundleChunk]) -> tuple[str, bool]:
    """The bundle's text and the first piece's `replace`; refused past `MAX_BUNDLE_BYTES`, as
    soon as the pieces pass it."""
    data = bytearray()
    replace: bool | None = None
    async for chunk in chunks:
        if replace is None:
            replace = chunk.replace
        data += chunk.data
        if len(data) > MAX_BUNDLE_BYTES:
            raise ServiceError(
                grpc.StatusCode.INVALID_ARGUMENT,
                errors_pb2.REQUEST_TOO_LARGE,
                f"`bundle`: is larger than {MAX_BUNDLE_BYTES} bytes",
                field="bundle",
            )
    try:
        return data.decode("utf-8"), bool(replace)
    except UnicodeDecodeError as problem:
        raise ServiceError(
            grpc.StatusCode.INVALID_ARGUMENT,
            errors_pb2.INVALID_BUNDLE,
            f"`bundle`: is not UTF-8 text: {problem}",
            field="bundle",
        ) from None


def _document(text: str, field: str, reason: int = errors_pb2.INVALID_POLICY) -> Any:
    try:
        return load_json(text)
    except ValueError as problem:
        raise ServiceError(
            grpc.StatusCode.INVALID_ARGUMENT,
            reason,
            f"`{field}` is not JSON: {problem}",
            field=field,
        ) from None


def _inline(policies: Any) -> dict[str, Any]:
    return {p.name: _document(p.document, f"inline_policies/{p.name}") for p in policies}


def _status_of(problem: StoreError, *, target: bool) -> tuple[grpc.StatusCode, int]:
    """The status code and reason of a store error, by its kind (never by its text)."""
    if isinstance(problem, Unavailable):
        # nothing was stored: the message names the store and why it cannot be reached
        return grpc.StatusCode.UNAVAILABLE, errors_pb2.STORE_UNAVAILABLE
    if isinstance(problem, Conflict):
        return grpc.StatusCode.ABORTED, errors_pb2.WRITE_REFUSED
    # a missing entity the call acts on is NOT_FOUND; a missing reference refuses the write
    if isinstance(problem, NotFound) and target:
        return grpc.StatusCode.NOT_FOUND, errors_pb2.NOT_FOUND
    return grpc.StatusCode.FAILED_PRECONDITION, errors_pb2.WRITE_REFUSED


def _found(value: T | None, what: str, request: Any) -> T:
    if value is None:
        ref = (
            getattr(request, "arn", "")
            or f"{getattr(request, 'name', '')} of account {getattr(request, 'account', '')}"
        )
        raise ServiceError(
            grpc.StatusCode.NOT_FOUND, errors_pb2.NOT_FOUND, f"{what} `{ref}` does not exist"
        )
    return value


def _in(request: admin_pb2.ListRequest, account: str) -> bool:
    return not request.account or request.account == account


def _inline_out(inline: Any) -> list[admin_pb2.InlinePolicy]:
    return [
        admin_pb2.InlinePolicy(name=name, document=json.dumps(doc)) for name, doc in inline.items()
    ]


def _user_out(user: User) -> admin_pb2.User:
    return admin_pb2.User(
        account=user.account,
        name=user.name,
        path=user.path,
        user_id=user.user_id or "",
        tags=dict(user.tags),
        permissions_boundary=user.boundary or "",
        groups=list(user.groups),
        inline_policies=_inline_out(user.inline),
        attached_policies=list(user.attached),
        partition=user.partition,
        arn=user.arn,
    )


def _group_out(group: Group) -> admin_pb2.Group:
    return admin_pb2.Group(
        account=group.account,
        name=group.name,
        path=group.path,
        group_id=group.group_id or "",
        inline_policies=_inline_out(group.inline),
        attached_policies=list(group.attached),
        partition=group.partition,
        arn=group.arn,
    )


def _role_out(role: Role) -> admin_pb2.Role:
    return admin_pb2.Role(
        account=role.account,
        name=role.name,
        path=role.path,
        role_id=role.role_id or "",
        trust_policy=json.dumps(role.trust_policy) if role.trust_policy is not None else "",
        tags=dict(role.tags),
        permissions_boundary=role.boundary or "",
        max_session_duration=role.max_session_duration,
        inline_policies=_inline_out(role.inline),
        attached_policies=list(role.attached),
        partition=role.partition,
        arn=role.arn,
    )


def _policy_out(policy: ManagedPolicy) -> admin_pb2.ManagedPolicy:
    return admin_pb2.ManagedPolicy(
        arn=policy.arn,
        name=policy.name,
        path=policy.path,
        default_version=policy.default_version,
        versions=[
            admin_pb2.PolicyVersion(version_id=v, document=json.dumps(d))
            for v, d in policy.versions.items()
        ],
        policy_id=policy.policy_id or "",
    )


def _repository_out(repository: Repository) -> admin_pb2.Repository:
    message = admin_pb2.Repository(arn=repository.arn, tags=dict(repository.tags))
    if repository.policy is not None:
        message.policy = json.dumps(repository.policy)
    return message
