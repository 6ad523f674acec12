"""The `dockgate.v1.Analyzer` servicer: who can, what can and preview, answered a page at a time.

A question is answered whole (off the event loop: it may take a second on a large fleet) and
served a page at a time (`service.pages`): the pages of one answer all come from one revision; a
token whose answer is no longer kept has expired (FAILED_PRECONDITION, `PAGE_EXPIRED`): the caller
asks again from the first page.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Sequence
from typing import Any, NoReturn, Protocol, TypeVar

import grpc

from dockgate.v1 import analysis_pb2, analysis_pb2_grpc, errors_pb2
from dockgate_server.analysis import (
    Access,
    AccessChange,
    BundleProposal,
    ConditionalStatement,
    Finding,
    PolicyProposal,
    Proposal,
    ProposalError,
)
from dockgate_server.engine.request import RequestError
from dockgate_server.policy.findings import PolicyError
from dockgate_server.policy.model import PolicyKind
from dockgate_server.policy.parse import load_json
from dockgate_server.service.convert import reasons_to_wire
from dockgate_server.service.errors import ServiceError, to_status
from dockgate_server.service.pages import DEFAULT_PAGE, MAX_PAGE, PageError, Pages
from dockgate_server.store.bundle import bundle_to_fleet
from dockgate_server.store.errors import StoreError

__all__ = [
    "DEFAULT_PAGE",
    "MAX_PAGE",
    "AnalysisSource",
    "AnalyzerService",
    "access_to_wire",
    "change_to_wire",
    "finding_to_wire",
    "resolve_repository",
]

log = logging.getLogger("dockgate.analysis")

_MAX_FIELD = 2048
_KINDS = {
    "identity": PolicyKind.IDENTITY,
    "repository": PolicyKind.REPOSITORY,
    "boundary": PolicyKind.BOUNDARY,
    "scp": PolicyKind.SCP,
    "rcp": PolicyKind.RCP,
}
_ACCESS = {
    Access.ALLOWED: analysis_pb2.ACCESS_ALLOWED,
    Access.CONDITIONAL: analysis_pb2.ACCESS_CONDITIONAL,
    Access.IMPLICITLY_DENIED: analysis_pb2.ACCESS_IMPLICITLY_DENIED,
    Access.EXPLICITLY_DENIED: analysis_pb2.ACCESS_EXPLICITLY_DENIED,
}
_FIELD_REASONS = {
    "principal": errors_pb2.INVALID_PRINCIPAL,
    "action": errors_pb2.INVALID_ACTION,
    "resource": errors_pb2.INVALID_RESOURCE,
}

_T = TypeVar("_T")


class AnalysisSource(Protocol):
    """What the questions are asked of: a door's `Runtime` is one. Each method raises
    `RequestError` for a malformed question and the service's `unavailable` exceptions when the
    policy is too old to answer from."""

    def who_can(
        self, action: str, repository: str, *, include_denied: bool = False
    ) -> tuple[int, list[Finding]]: ...

    def what_can(
        self, principal: str, repository: str | None = None, *, include_denied: bool = False
    ) -> tuple[int, list[Finding]]: ...

    def preview(self, proposal: Proposal) -> tuple[int, list[AccessChange]]: ...

    def repositories(self) -> list[str]: ...


class AnalyzerService(analysis_pb2_grpc.AnalyzerServicer):
    """`unavailable`: the exceptions `source` raises past `--max-staleness` (answered
    UNAVAILABLE, never with findings)."""

    def __init__(
        self, source: AnalysisSource, unavailable: tuple[type[Exception], ...] = ()
    ) -> None:
        self.source = source
        self.unavailable = unavailable
        self.pages = Pages()

    async def WhoCan(
        self,
        request: analysis_pb2.WhoCanRequest,
        context: grpc.aio.ServicerContext[object, object],
    ) -> analysis_pb2.FindingsPage:
        try:
            _required(request.action, "action", errors_pb2.INVALID_ACTION)
            _required(request.repository, "repository", errors_pb2.INVALID_RESOURCE)
            question = ("who", request.action, request.repository, request.include_denied)

            def ask() -> tuple[int, list[Finding]]:
                repository = resolve_repository(self.source, request.repository, "repository")
                return self.source.who_can(
                    request.action, repository, include_denied=request.include_denied
                )

            return _findings_page(*await self._page(question, request.page, ask))
        except Exception as problem:
            await self._abort(context, problem)

    async def WhatCan(
        self,
        request: analysis_pb2.WhatCanRequest,
        context: grpc.aio.ServicerContext[object, object],
    ) -> analysis_pb2.FindingsPage:
        try:
            _required(request.principal, "principal", errors_pb2.INVALID_PRINCIPAL)
            _bounded(request.repository, "repository")
            question = ("what", request.principal, request.repository, request.include_denied)

            def ask() -> tuple[int, list[Finding]]:
                repository = None
                if request.repository:
                    repository = resolve_repository(self.source, request.repository, "repository")
                    if repository == "*":
                        raise _invalid(
                            errors_pb2.INVALID_RESOURCE,
                            "repository",
                            "`*`: give a repository's ARN or name",
                        )
                return self.source.what_can(
                    request.principal, repository, include_denied=request.include_denied
                )

            return _findings_page(*await self._page(question, request.page, ask))
        except Exception as problem:
            await self._abort(context, problem)

    async def Preview(
        self,
        request: analysis_pb2.PreviewRequest,
        context: grpc.aio.ServicerContext[object, object],
    ) -> analysis_pb2.ChangesPage:
        try:
            which = request.WhichOneof("proposal")
            if which is None:
                raise _invalid(errors_pb2.INVALID_BUNDLE, "proposal", "give a bundle or a policy")
            given = (
                request.bundle
                if which == "bundle"
                else json.dumps(
                    [request.policy.document, request.policy.kind, request.policy.target]
                )
            )
            question = ("preview", which, hashlib.sha256(given.encode()).hexdigest())

            def ask() -> tuple[int, list[AccessChange]]:
                proposal = self._proposal(request)
                try:
                    return self.source.preview(proposal)
                except (PolicyError, ProposalError, StoreError) as problem:
                    # bare messages: `dockgate preview --server` says them as against a store
                    field = {"bundle": "bundle", "policy": "policy.document"}[which]
                    if isinstance(problem, ProposalError) and which == "policy":
                        field = "policy.target"
                    reason = errors_pb2.INVALID_BUNDLE
                    if isinstance(problem, PolicyError):
                        reason = errors_pb2.INVALID_POLICY
                    elif field == "policy.target":
                        reason = errors_pb2.NOT_FOUND
                    raise ServiceError(
                        grpc.StatusCode.INVALID_ARGUMENT, reason, str(problem), field=field
                    ) from None

            revision, page, after = await self._page(question, request.page, ask)
            return analysis_pb2.ChangesPage(
                changes=[change_to_wire(change) for change in page],
                revision=revision,
                next_page_token=after,
            )
        except Exception as problem:
            await self._abort(context, problem)

    # -- paging --------------------------------------------------------------------------------

    async def _page(
        self,
        question: tuple[object, ...],
        page: analysis_pb2.PageRequest,
        ask: Callable[[], tuple[int, list[_T]]],
    ) -> tuple[int, Sequence[_T], str]:
        try:
            return await self.pages.page(question, page.token, page.size, ask)
        except PageError as problem:
            field = f"page.{problem.field}"
            if problem.expired:
                raise ServiceError(
                    grpc.StatusCode.FAILED_PRECONDITION,
                    errors_pb2.PAGE_EXPIRED,
                    f"`{field}`: {problem}",
                    field=field,
                ) from None
            reason = (
                errors_pb2.REQUEST_TOO_LARGE if field == "page.size" else errors_pb2.INVALID_CONTEXT
            )
            raise _invalid(reason, field, str(problem)) from None

    # -- proposals and errors ------------------------------------------------------------------

    def _proposal(self, request: analysis_pb2.PreviewRequest) -> Proposal:
        if request.WhichOneof("proposal") == "bundle":
            bundle = _json(request.bundle, "bundle", errors_pb2.INVALID_BUNDLE)
            try:
                return BundleProposal(bundle_to_fleet(bundle))
            except StoreError as problem:
                raise ServiceError(
                    grpc.StatusCode.INVALID_ARGUMENT,
                    errors_pb2.INVALID_BUNDLE,
                    str(problem),
                    field="bundle",
                ) from None
        policy = request.policy
        kind = _KINDS.get(policy.kind)
        if kind is None:
            raise _invalid(
                errors_pb2.INVALID_POLICY,
                "policy.kind",
                f"`{policy.kind[:100]}`: give one of {', '.join(sorted(_KINDS))}",
            )
        _required(policy.target, "policy.target", errors_pb2.NOT_FOUND)
        target = policy.target
        if kind is PolicyKind.REPOSITORY:
            target = resolve_repository(self.source, target, "policy.target")
        document = _json(policy.document, "policy.document", errors_pb2.INVALID_POLICY)
        if not isinstance(document, dict):
            raise ServiceError(
                grpc.StatusCode.INVALID_ARGUMENT,
                errors_pb2.INVALID_POLICY,
                "a policy is a JSON object",
                field="policy.document",
            )
        return PolicyProposal(document, kind, target)

    async def _abort(
        self, context: grpc.aio.ServicerContext[object, object], problem: Exception
    ) -> NoReturn:
        await context.abort_with_status(to_status(self._error(problem)))
        raise AssertionError("abort returned")

    def _error(self, problem: Exception) -> ServiceError:
        if isinstance(problem, ServiceError):
            return problem
        if isinstance(problem, self.unavailable):
            return ServiceError(
                grpc.StatusCode.UNAVAILABLE, errors_pb2.STORE_UNAVAILABLE, str(problem)
            )
        if isinstance(problem, RequestError):
            field = problem.field if problem.field in _FIELD_REASONS else "request"
            if problem.field == "resource":
                field = "repository"
            reason = _FIELD_REASONS.get(problem.field, errors_pb2.INVALID_CONTEXT)
            return _invalid(reason, field, str(problem))
        log.error("analysis failed", exc_info=problem)  # never an answer: INTERNAL
        return ServiceError(
            grpc.StatusCode.INTERNAL,
            errors_pb2.INTERNAL_FAILURE,
            "internal error: the question was not answered",
        )


def resolve_repository(source: AnalysisSource, given: str, field: str) -> str:
    """An ARN (or `*`) as given; a name, the one repository of the store that has it."""
    if given == "*" or given.startswith("arn:"):
        return given
    found = sorted(
        arn for arn in source.repositories() if arn.split(":", 5)[-1] == f"repository/{given}"
    )
    if not found:
        raise _invalid(
            errors_pb2.INVALID_RESOURCE,
            field,
            f"`{given}`: no repository of the store has this name",
        )
    if len(found) > 1:
        listed = ", ".join(f"`{arn}`" for arn in found)
        raise _invalid(
            errors_pb2.INVALID_RESOURCE,
            field,
            f"`{given}`: names {len(found)} repositories ({listed}): give its ARN",
        )
    return found[0]


# -- to the wire -------------------------------------------------------------------------------


def access_to_wire(access: Access) -> analysis_pb2.Access.ValueType:
    return _ACCESS[access]


def finding_to_wire(found: Finding) -> analysis_pb2.AccessFinding:
    message = analysis_pb2.AccessFinding(
        principal=found.principal,
        type=str(found.type),
        action=found.action,
        repository=found.repository,
        access=_ACCESS[found.access],
        revision=found.revision,
        reasons=reasons_to_wire(found.reasons),
        conditions=[_conditional(c) for c in found.conditions],
        decided=found.type.decided,
    )
    if found.example is not None:
        message.has_example = True
        for key, value in found.example.items():
            listed = isinstance(value, tuple)
            message.example.add(key=key, values=list(value) if listed else [value], list=listed)
    return message


def change_to_wire(change: AccessChange) -> analysis_pb2.AccessChange:
    return analysis_pb2.AccessChange(
        principal=change.principal,
        type=str(change.type),
        action=change.action,
        repository=change.repository,
        before=_ACCESS[change.before],
        after=_ACCESS[change.after],
        new_access=change.new_access,
        revision=change.revision,
        reasons=reasons_to_wire(change.reasons),
        conditions=[_conditional(c) for c in change.conditions],
        decided=change.type.decided,
    )


def _conditional(statement: ConditionalStatement) -> analysis_pb2.ConditionalStatement:
    message = analysis_pb2.ConditionalStatement(
        policy=statement.policy,
        statement=statement.statement,
        effect=statement.effect,
        keys=list(statement.keys),
    )
    if statement.sid is not None:
        message.sid = statement.sid
    for operator, keys in statement.condition.items():
        for key, values in keys.items():
            message.condition.add(operator=operator, key=key, values=list(values))
    return message


# -- small checks ------------------------------------------------------------------------------


def _invalid(reason: int, field: str, message: str) -> ServiceError:
    return ServiceError(
        grpc.StatusCode.INVALID_ARGUMENT, reason, f"`{field}`: {message}", field=field
    )


def _required(value: str, field: str, reason: int) -> None:
    if not value:
        raise _invalid(reason, field, "is required")
    _bounded(value, field)


def _bounded(value: str, field: str) -> None:
    if len(value) > _MAX_FIELD:
        raise _invalid(
            errors_pb2.REQUEST_TOO_LARGE, field, f"is longer than {_MAX_FIELD} characters"
        )


def _json(text: str, field: str, reason: int) -> Any:
    try:
        return load_json(text)
    except ValueError as problem:
        raise ServiceError(
            grpc.StatusCode.INVALID_ARGUMENT, reason, f"not JSON: {problem}", field=field
        ) from None


def _findings_page(revision: int, page: Sequence[Finding], after: str) -> analysis_pb2.FindingsPage:
    return analysis_pb2.FindingsPage(
        findings=[finding_to_wire(found) for found in page],
        revision=revision,
        next_page_token=after,
    )
