"""`Client` and `AsyncClient`: decisions and access questions over gRPC, with a default deadline
and safe retries."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, TypeVar

import grpc

from dockgate._errors import DockgateError, InvalidRequestError, from_rpc_error
from dockgate._model import AccessChange, AccessFinding, Decision, SimulationResult
from dockgate._wire import (
    ContextInput,
    authorize_request,
    change_from_wire,
    decision_from_wire,
    finding_from_wire,
    preview_request,
    simulate_request,
    simulation_from_wire,
)
from dockgate.v1 import analysis_pb2, analysis_pb2_grpc, authorizer_pb2, authorizer_pb2_grpc

__all__ = ["AsyncClient", "AuthorizeItem", "Client", "Credentials"]

T = TypeVar("T")

DEFAULT_TIMEOUT = 5.0
RETRIES = 3
"""Attempts after the first, only when no server decided the request (a decision has no side
effects): UNAVAILABLE (it never reached one), RESOURCE_EXHAUSTED (one was overloaded and refused
it) and CANCELLED (gRPC dropped it unanswered: its own shedding under load, or a server stopping;
a call this client cancels raises no status)."""
_RETRIED = frozenset(
    (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.CANCELLED)
)
ANALYSIS_TIMEOUT = 60.0
"""Seconds a page of an access question may take by default: the first page is the whole
analysis (about a second for what-can on a 10,000-repository fleet)."""
_PAGE_SIZE = 1000
_RESTARTS = 3
"""Times a paged answer is asked again from its first page when the server no longer keeps it
(its revision passed while the pages were read)."""
_OVERLOAD_PAUSE = 4.0
"""An overloaded server is given longer backoffs than an unreachable one: retrying at once
would add to its load."""


@dataclass(frozen=True, slots=True)
class AuthorizeItem:
    """One request of `authorize_many`."""

    principal: str
    action: str
    resource: str
    context: ContextInput | None = None
    explain: bool = False


@dataclass(frozen=True, slots=True)
class Credentials:
    """TLS for the channel: the server's CA, and a client certificate for mTLS."""

    root_certificates: bytes | None = None
    private_key: bytes | None = None
    certificate_chain: bytes | None = None

    def channel_credentials(self) -> grpc.ChannelCredentials:
        return grpc.ssl_channel_credentials(
            self.root_certificates, self.private_key, self.certificate_chain
        )


def _items(
    requests: Iterable[AuthorizeItem | Mapping[str, Any]],
) -> authorizer_pb2.BatchAuthorizeRequest:
    batch = authorizer_pb2.BatchAuthorizeRequest()
    for given in requests:
        item = AuthorizeItem(**given) if isinstance(given, Mapping) else given
        batch.items.append(
            authorize_request(
                item.principal, item.action, item.resource, item.context, explain=item.explain
            )
        )
    return batch


def _batch_results(
    response: authorizer_pb2.BatchAuthorizeResponse,
) -> list[Decision | DockgateError]:
    results: list[Decision | DockgateError] = []
    for result in response.results:
        if result.HasField("decision"):
            results.append(decision_from_wire(result.decision))
        else:
            error = result.error
            results.append(
                InvalidRequestError(  # a bad item is a malformed request, as Authorize says
                    grpc.StatusCode.INVALID_ARGUMENT,
                    error.message,
                    error.reason,
                    {"field": error.field} if error.field else {},
                )
            )
    return results


Proposed = Mapping[str, Any] | str
"""a bundle or a policy document: as data, or as JSON text"""


def _who_request(action: str, repository: str, include_denied: bool) -> analysis_pb2.WhoCanRequest:
    return analysis_pb2.WhoCanRequest(
        action=action, repository=repository, include_denied=include_denied
    )


def _what_request(
    principal: str, repository: str | None, include_denied: bool
) -> analysis_pb2.WhatCanRequest:
    return analysis_pb2.WhatCanRequest(
        principal=principal, repository=repository or "", include_denied=include_denied
    )


def _expired(error: DockgateError) -> bool:
    return error.reason == "PAGE_EXPIRED"


def _backoff(attempt: int, code: grpc.StatusCode = grpc.StatusCode.UNAVAILABLE) -> float:
    jitter: float = 0.5 + random.random() / 2
    scale = _OVERLOAD_PAUSE if code is not grpc.StatusCode.UNAVAILABLE else 1.0
    return min(scale, 0.05 * scale * 2.0**attempt) * jitter


class Client:
    """A synchronous client of `dockgate.v1.Authorizer`. Use as a context manager, or `close()`."""

    def __init__(
        self,
        target: str = "127.0.0.1:50051",
        *,
        timeout: float = DEFAULT_TIMEOUT,
        credentials: Credentials | None = None,
    ) -> None:
        self.timeout = timeout
        self._channel = (
            grpc.secure_channel(target, credentials.channel_credentials())
            if credentials
            else grpc.insecure_channel(target)
        )
        self._stub = authorizer_pb2_grpc.AuthorizerStub(self._channel)
        self._analyzer = analysis_pb2_grpc.AnalyzerStub(self._channel)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        self._channel.close()

    def authorize(
        self,
        principal: str,
        action: str,
        resource: str,
        context: ContextInput | None = None,
        *,
        explain: bool = False,
        at_least_revision: int = 0,
        timeout: float | None = None,
    ) -> Decision:
        request = authorize_request(
            principal,
            action,
            resource,
            context,
            explain=explain,
            at_least_revision=at_least_revision,
        )
        return decision_from_wire(self._call(self._stub.Authorize, request, timeout))

    def authorize_many(
        self, requests: Iterable[AuthorizeItem | Mapping[str, Any]], *, timeout: float | None = None
    ) -> list[Decision | DockgateError]:
        """Up to 1,000 requests in one call, answered in order; a bad item gets its own error."""
        return _batch_results(self._call(self._stub.BatchAuthorize, _items(requests), timeout))

    def simulate(
        self, case: Mapping[str, Any], *, timeout: float | None = None
    ) -> SimulationResult:
        """Decide a simulation case (the JSON Lines format, as a dict) on the server."""
        return simulation_from_wire(
            self._call(self._stub.Simulate, simulate_request(case), timeout)
        )

    def who_can(
        self,
        action: str,
        repository: str,
        *,
        include_denied: bool = False,
        timeout: float | None = None,
    ) -> list[AccessFinding]:
        """Who may perform `action` on `repository` (an ARN, a name, or `*`), every page read."""
        pages = self._pages(
            self._analyzer.WhoCan, _who_request(action, repository, include_denied), timeout
        )
        return [finding_from_wire(found) for page in pages for found in page.findings]

    def what_can(
        self,
        principal: str,
        repository: str | None = None,
        *,
        include_denied: bool = False,
        timeout: float | None = None,
    ) -> list[AccessFinding]:
        """What `principal` may do (on `repository`, an ARN or a name, when given)."""
        pages = self._pages(
            self._analyzer.WhatCan, _what_request(principal, repository, include_denied), timeout
        )
        return [finding_from_wire(found) for page in pages for found in page.findings]

    def preview(
        self,
        *,
        bundle: Proposed | None = None,
        policy: Proposed | None = None,
        kind: str | None = None,
        target: str | None = None,
        timeout: float | None = None,
    ) -> list[AccessChange]:
        """Every access a bundle, or a policy of `kind` attached to `target`, would change;
        nothing is written. `ValueError` for neither or both."""
        request = preview_request(bundle, policy, kind, target)
        pages = self._pages(self._analyzer.Preview, request, timeout)
        return [change_from_wire(change) for page in pages for change in page.changes]

    def _pages(self, method: Callable[..., Any], request: Any, timeout: float | None) -> list[Any]:
        restarts = 0
        while True:
            pages: list[Any] = []
            request.page.CopyFrom(analysis_pb2.PageRequest(size=_PAGE_SIZE))
            try:
                while True:
                    page = self._call(method, request, timeout or ANALYSIS_TIMEOUT)
                    pages.append(page)
                    if not page.next_page_token:
                        return pages
                    request.page.token = page.next_page_token
            except DockgateError as error:
                if not _expired(error) or restarts >= _RESTARTS:
                    raise
                restarts += 1

    def _call(self, method: Callable[..., T], request: object, timeout: float | None) -> T:
        deadline = time.monotonic() + (timeout or self.timeout)
        attempt = 0
        while True:
            try:
                return method(request, timeout=max(0.001, deadline - time.monotonic()))
            except grpc.RpcError as error:
                failure = from_rpc_error(error)
            if failure.code not in _RETRIED or attempt >= RETRIES:
                raise failure
            pause = _backoff(attempt, failure.code)
            if time.monotonic() + pause >= deadline:
                raise failure
            time.sleep(pause)
            attempt += 1


class AsyncClient:
    """The asyncio client of `dockgate.v1.Authorizer`: `async with AsyncClient(...) as client`."""

    def __init__(
        self,
        target: str = "127.0.0.1:50051",
        *,
        timeout: float = DEFAULT_TIMEOUT,
        credentials: Credentials | None = None,
    ) -> None:
        self.timeout = timeout
        self._channel = (
            grpc.aio.secure_channel(target, credentials.channel_credentials())
            if credentials
            else grpc.aio.insecure_channel(target)
        )
        self._stub = authorizer_pb2_grpc.AuthorizerStub(self._channel)
        self._analyzer = analysis_pb2_grpc.AnalyzerStub(self._channel)

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        await self._channel.close()

    async def authorize(
        self,
        principal: str,
        action: str,
        resource: str,
        context: ContextInput | None = None,
        *,
        explain: bool = False,
        at_least_revision: int = 0,
        timeout: float | None = None,
    ) -> Decision:
        request = authorize_request(
            principal,
            action,
            resource,
            context,
            explain=explain,
            at_least_revision=at_least_revision,
        )
        return decision_from_wire(await self._call(self._stub.Authorize, request, timeout))

    async def authorize_many(
        self, requests: Iterable[AuthorizeItem | Mapping[str, Any]], *, timeout: float | None = None
    ) -> list[Decision | DockgateError]:
        return _batch_results(
            await self._call(self._stub.BatchAuthorize, _items(requests), timeout)
        )

    async def simulate(
        self, case: Mapping[str, Any], *, timeout: float | None = None
    ) -> SimulationResult:
        return simulation_from_wire(
            await self._call(self._stub.Simulate, simulate_request(case), timeout)
        )

    async def who_can(
        self,
        action: str,
        repository: str,
        *,
        include_denied: bool = False,
        timeout: float | None = None,
    ) -> list[AccessFinding]:
        pages = await self._pages(
            self._analyzer.WhoCan, _who_request(action, repository, include_denied), timeout
        )
        return [finding_from_wire(found) for page in pages for found in page.findings]

    async def what_can(
        self,
        principal: str,
        repository: str | None = None,
        *,
        include_denied: bool = False,
        timeout: float | None = None,
    ) -> list[AccessFinding]:
        pages = await self._pages(
            self._analyzer.WhatCan, _what_request(principal, repository, include_denied), timeout
        )
        return [finding_from_wire(found) for page in pages for found in page.findings]

    async def preview(
        self,
        *,
        bundle: Proposed | None = None,
        policy: Proposed | None = None,
        kind: str | None = None,
        target: str | None = None,
        timeout: float | None = None,
    ) -> list[AccessChange]:
        request = preview_request(bundle, policy, kind, target)
        pages = await self._pages(self._analyzer.Preview, request, timeout)
        return [change_from_wire(change) for page in pages for change in page.changes]

    async def _pages(
        self, method: Callable[..., Awaitable[Any]], request: Any, timeout: float | None
    ) -> list[Any]:
        restarts = 0
        while True:
            pages: list[Any] = []
            request.page.CopyFrom(analysis_pb2.PageRequest(size=_PAGE_SIZE))
            try:
                while True:
                    page = await self._call(method, request, timeout or ANALYSIS_TIMEOUT)
                    pages.append(page)
                    if not page.next_page_token:
                        return pages
                    request.page.token = page.next_page_token
            except DockgateError as error:
                if not _expired(error) or restarts >= _RESTARTS:
                    raise
                restarts += 1

    async def _call(
        self, method: Callable[..., Awaitable[T]], request: object, timeout: float | None
    ) -> T:
        deadline = time.monotonic() + (timeout or self.timeout)
        attempt = 0
        while True:
            try:
                return await method(request, timeout=max(0.001, deadline - time.monotonic()))
            except grpc.RpcError as error:
                failure = from_rpc_error(error)
            if failure.code not in _RETRIED or attempt >= RETRIES:
                raise failure
            pause = _backoff(attempt, failure.code)
            if time.monotonic() + pause >= deadline:
                raise failure
            await asyncio.sleep(pause)
            attempt += 1
