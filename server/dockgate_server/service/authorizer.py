"""The `dockgate.v1.Authorizer` servicer: decode, decide from the snapshot, encode."""

from __future__ import annotations

import logging
import time
from typing import NoReturn

import grpc
from google.protobuf.message import DecodeError

from dockgate.v1 import authorizer_pb2, authorizer_pb2_grpc, errors_pb2
from dockgate_server.engine.decision import Decision, Outcome
from dockgate_server.engine.request import RequestError
from dockgate_server.engine.snapshot import Snapshot
from dockgate_server.service.convert import (
    check_request_fields,
    context_from_wire,
    decision_to_wire,
    fill_decision,
    invalid,
    reasons_to_wire,
    simulation_case_from_wire,
)
from dockgate_server.service.errors import ServiceError, to_status
from dockgate_server.service.front_cache import FrontCache, FrontEntry
from dockgate_server.service.metrics import Metrics
from dockgate_server.service.state import DecisionState
from dockgate_server.simulate import run_case

__all__ = ["MAX_BATCH", "AuthorizerService"]

log = logging.getLogger("dockgate.authorizer")

MAX_BATCH = 1000
REVISION_WAIT = 2.0
"""Seconds a request with `at_least_revision` waits for that revision before failing."""

_FIELD_REASONS = {
    "principal": errors_pb2.INVALID_PRINCIPAL,
    "action": errors_pb2.INVALID_ACTION,
    "resource": errors_pb2.INVALID_RESOURCE,
    "context": errors_pb2.INVALID_CONTEXT,
}


class AuthorizerService(authorizer_pb2_grpc.AuthorizerServicer):
    def __init__(self, state: DecisionState, metrics: Metrics, *, front_cache: bool = True) -> None:
        self.state = state
        self.metrics = metrics
        cache = state.cache
        self.front = FrontCache(cache.maxsize) if front_cache and cache.enabled else None
        """answers repeated request bytes; on whenever the decision cache is"""
        self.wire_methods = {"Authorize": self.authorize_wire}
        """registered to take and answer bytes (`interceptors.add_guarded_servicer`)"""

    async def Authorize(
        self,
        request: authorizer_pb2.AuthorizeRequest,
        context: grpc.aio.ServicerContext[object, object],
    ) -> authorizer_pb2.AuthorizeResponse:
        """The generated servicer's signature, for a caller that holds a message; the port
        registers `authorize_wire` (see `wire_methods`)."""
        answer = await self.authorize_wire(request.SerializeToString(), context)
        return authorizer_pb2.AuthorizeResponse.FromString(answer)

    async def authorize_wire(
        self, data: bytes, context: grpc.aio.ServicerContext[object, object]
    ) -> bytes:
        """`Authorize` from the request's bytes to the answer's: a repeat at the same revision is
        answered from the front cache; anything else is decoded, decided and encoded."""
        started = time.perf_counter()
        front = self.front
        try:
            snapshot = self.state.snapshot
            if front is not None:
                entry = front.get(snapshot.revision, data, self.state.clock.now)
                if entry is not None:
                    self.metrics.latency.observe(time.perf_counter() - started)
                    self.metrics.count_decision(entry.outcome)
                    return entry.response
            request = _decode(data)
            if request.at_least_revision:
                snapshot = await self._snapshot(request.at_least_revision)
            decision, until = self._decide(snapshot, request)
            outcome = str(decision.outcome)
            response = decision_to_wire(
                decision, snapshot.revision, request.explain
            ).SerializeToString()
            if front is not None and until > self.state.clock.now():
                front.put(snapshot.revision, data, FrontEntry(response, outcome, until))
        except ServiceError as error:
            await self._abort(context, error)
        except Exception:
            log.exception("authorize failed")  # fail closed: an error is never a decision
            await self._abort(context, _internal())
        finally:
            self._count_cache()
        self.metrics.latency.observe(time.perf_counter() - started)
        self.metrics.count_decision(outcome)
        return response

    async def BatchAuthorize(
        self,
        request: authorizer_pb2.BatchAuthorizeRequest,
        context: grpc.aio.ServicerContext[object, object],
    ) -> authorizer_pb2.BatchAuthorizeResponse:
        try:
            if len(request.items) > MAX_BATCH:
                raise invalid(
                    errors_pb2.REQUEST_TOO_LARGE, "items", f"holds more than {MAX_BATCH} requests"
                )
            wanted = max((item.at_least_revision for item in request.items), default=0)
            snapshot = await self._snapshot(wanted)
            revision = snapshot.revision
            response = authorizer_pb2.BatchAuthorizeResponse(revision=revision)
            # each result is filled in place: building an AuthorizeResponse and a result around
            # it copies both (about 2 us an item, against 0.4 us); outcomes are counted once
            add = response.results.add
            outcomes: dict[Outcome, int] = {}
            for item in request.items:
                try:
                    decision = self._decide(snapshot, item)[0]
                except ServiceError as error:
                    add(
                        error=authorizer_pb2.ItemError(
                            reason=error.reason_name,
                            message=error.message,
                            field=error.metadata.get("field", ""),
                        )
                    )
                    continue
                outcome = decision.outcome
                outcomes[outcome] = outcomes.get(outcome, 0) + 1
                fill_decision(add().decision, decision, revision, item.explain)
            for outcome, count in outcomes.items():
                self.metrics.count_decision(str(outcome), count)
            return response
        except ServiceError as error:
            await self._abort(context, error)
        except Exception:
            log.exception("batch authorize failed")
            await self._abort(context, _internal())
        finally:
            self._count_cache()

    async def Simulate(
        self,
        request: authorizer_pb2.SimulateRequest,
        context: grpc.aio.ServicerContext[object, object],
    ) -> authorizer_pb2.SimulateResponse:
        try:
            result = run_case(simulation_case_from_wire(request))
        except ServiceError as error:
            await self._abort(context, error)
        except Exception:
            log.exception("simulate failed")
            await self._abort(context, _internal())
        return authorizer_pb2.SimulateResponse(
            id=result.id,
            decision=result.decision,
            expect=result.expect or "",
            ok=result.ok,
            reasons=reasons_to_wire(result.reasons),
            error=result.error or "",
            errors=result.errors,
        )

    async def _snapshot(self, revision: int) -> Snapshot:
        if not revision:
            return self.state.snapshot
        snapshot = await self.state.at_least(revision, REVISION_WAIT)
        if snapshot is None:
            raise ServiceError(
                grpc.StatusCode.FAILED_PRECONDITION,
                errors_pb2.REVISION_NOT_REACHED,
                f"revision {revision} not reached within {REVISION_WAIT:g} s "
                f"(serving {self.state.snapshot.revision})",
                field="at_least_revision",
            )
        return snapshot

    def _decide(
        self, snapshot: Snapshot, request: authorizer_pb2.AuthorizeRequest
    ) -> tuple[Decision, float]:
        """The decision, and until when it holds (see `DecisionCache.answer`)."""
        check_request_fields(request)
        context = context_from_wire(request.context)
        try:
            return self.state.cache.answer(
                snapshot,
                request.principal,
                request.action,
                request.resource,
                context,
                now=self.state.clock.now(),
            )
        except RequestError as problem:
            raise invalid(
                _FIELD_REASONS.get(problem.field, errors_pb2.INVALID_CONTEXT),
                problem.field,
                str(problem),
            ) from None

    def _count_cache(self) -> None:
        # counted on the event loop's thread once a call's lookups are done (once a call, not
        # once an item: it takes a lock), so the counters move with every call
        front_hits = self.front.hits if self.front is not None else 0
        self.metrics.count_cache(self.state.cache.hits + front_hits, self.state.cache.misses)

    async def _abort(
        self, context: grpc.aio.ServicerContext[object, object], error: ServiceError
    ) -> NoReturn:
        self.metrics.errors.labels(error.code.name).inc()
        await context.abort_with_status(to_status(error))
        raise AssertionError("abort returned")  # abort always raises


def _decode(data: bytes) -> authorizer_pb2.AuthorizeRequest:
    try:
        return authorizer_pb2.AuthorizeRequest.FromString(data)
    except DecodeError as problem:
        raise ServiceError(
            grpc.StatusCode.INVALID_ARGUMENT,
            errors_pb2.INVALID_CONTEXT,
            f"the request is not a valid message: {problem}",
            field="request",
        ) from None


def _internal() -> ServiceError:
    return ServiceError(
        grpc.StatusCode.INTERNAL,
        errors_pb2.INTERNAL_FAILURE,
        "internal error: the request was not decided",
    )
