"""The web console's JSON API under `/api/`: questions asked through the runtime, nothing written.

Every answer is read through the `Runtime` (decide, who-can, what-can, preview, principals,
repositories, freshness, metrics); the analysis questions run on a thread of their own, off the
event loop. A request the runtime cannot answer now (past `--max-staleness`) is a 503, never a
decision; a malformed question is a 400 naming the field.
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, multiprocess
from prometheus_client.metrics_core import Metric

from dockgate_server.analysis import (
    ACCOUNT_ACTIONS,
    REPOSITORY_ACTIONS,
    Access,
    Finding,
    PolicyProposal,
    Proposal,
)
from dockgate_server.engine.request import RequestError
from dockgate_server.frontends.door import Runtime, Unavailable
from dockgate_server.frontends.http import HttpError, HttpRequest, HttpResponse, Route
from dockgate_server.policy.model import PolicyKind

__all__ = ["ACTION_GROUPS", "ConsoleApi", "api_routes", "group_access"]

ACTION_GROUPS: Mapping[str, tuple[str, ...]] = {
    "pull": ("ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"),
    "push": (
        "ecr:InitiateLayerUpload",
        "ecr:UploadLayerPart",
        "ecr:CompleteLayerUpload",
        "ecr:PutImage",
    ),
    "delete": ("ecr:BatchDeleteImage", "ecr:DeleteRepository"),
    "admin": (
        "ecr:SetRepositoryPolicy",
        "ecr:DeleteRepositoryPolicy",
        "ecr:PutLifecyclePolicy",
        "ecr:DeleteLifecyclePolicy",
        "ecr:PutImageTagMutability",
        "ecr:PutImageScanningConfiguration",
        "ecr:TagResource",
        "ecr:UntagResource",
    ),
}
"""the columns of the who-can matrix: the actions of each kind of registry call (`docker push`
also checks layers with `BatchCheckLayerAvailability`, a read: it is listed under pull)"""

PREVIEW_BODY = 1024 * 1024
"""bytes of a pasted policy or bundle at most"""
_LIMIT = 50
"""principals or repositories one search answers at most"""
_PROPOSAL_KINDS = ("identity", "boundary", "repository", "scp", "rcp")
_JSON = (("Content-Type", "application/json; charset=utf-8"), ("Cache-Control", "no-store"))
_RATE_WINDOW = 30.0
"""seconds of metric samples the decision rate is measured over"""


def api_routes(api: ConsoleApi) -> list[Route]:
    get = frozenset({"GET", "HEAD"})
    return [
        Route("/api/principals", api.principals, methods=get),
        Route("/api/actions", api.actions, methods=get),
        Route("/api/repositories", api.repositories, methods=get),
        Route("/api/ask", api.ask, methods=get),
        Route("/api/who-can", api.who_can, methods=get),
        Route("/api/what-can", api.what_can, methods=get),
        Route("/api/preview", api.preview, methods=frozenset({"POST"}), max_body=PREVIEW_BODY),
        Route("/api/state", api.state, methods=get),
    ]


def group_access(accesses: Iterable[Access]) -> str:
    """One cell of the matrix: `Allowed` when every action is, `Conditional` when every action
    is allowed in some contexts, `Partial` when some are and others not, else the strongest
    denial (`ExplicitlyDenied` over `ImplicitlyDenied`)."""
    found = set(accesses)
    if found <= {Access.ALLOWED}:
        return str(Access.ALLOWED) if found else str(Access.IMPLICITLY_DENIED)
    if all(access.grants for access in found):
        return str(Access.CONDITIONAL)
    if any(access.grants for access in found):
        return "Partial"
    if Access.EXPLICITLY_DENIED in found:
        return str(Access.EXPLICITLY_DENIED)
    return str(Access.IMPLICITLY_DENIED)


@dataclass(frozen=True, slots=True)
class _Sample:
    at: float
    decisions: float
    timed: float
    seconds: float


class ConsoleApi:
    """The handlers of `/api/`, over one runtime."""

    def __init__(self, runtime: Runtime, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.runtime = runtime
        self._monotonic = monotonic
        self._samples: deque[_Sample] = deque()

    async def principals(self, request: HttpRequest) -> HttpResponse:
        words = _optional(request, "q").lower().split()
        every = _answer(self.runtime.principals)
        found = [arn for arn in every if all(word in arn.lower() for word in words)]
        return _json({"principals": found[:_LIMIT], "total": len(found)})

    async def actions(self, request: HttpRequest) -> HttpResponse:
        return _json(
            {
                "repository": list(REPOSITORY_ACTIONS),
                "account": list(ACCOUNT_ACTIONS),
                "groups": {name: list(actions) for name, actions in ACTION_GROUPS.items()},
            }
        )

    async def repositories(self, request: HttpRequest) -> HttpResponse:
        words = _optional(request, "q").lower().split()
        every = sorted(_answer(self.runtime.repositories))
        found = [arn for arn in every if all(word in arn.lower() for word in words)]
        return _json({"repositories": found[:_LIMIT], "total": len(found)})

    async def ask(self, request: HttpRequest) -> HttpResponse:
        principal = _required(request, "principal")
        action = _required(request, "action")
        # IAM: an action without resource-level permissions is asked about resource `*`
        resource = _optional(request, "resource") or "*"
        context = _context(request.query.get("context", []))
        decision = _answer(lambda: self.runtime.decide(principal, action, resource, context))
        documents: dict[str, tuple[int, Mapping[str, Any] | None]] = {}
        for reason in decision.reasons:
            if reason.policy is not None and reason.policy not in documents:
                read = functools.partial(self.runtime.policy_document, reason.policy)
                documents[reason.policy] = await asyncio.to_thread(_answer, read)
        reasons = []
        for reason in decision.reasons:
            shown = reason.to_json()
            if reason.policy is not None:
                revision, document = documents[reason.policy]
                shown["document"] = document
                shown["documentRevision"] = revision
            reasons.append(shown)
        return _json(
            {
                "question": {
                    "principal": principal,
                    "action": action,
                    "resource": resource,
                    "context": context,
                },
                "decision": str(decision.outcome),
                "revision": decision.revision,
                "errors": list(decision.errors),
                "reasons": reasons,
            }
        )

    async def who_can(self, request: HttpRequest) -> HttpResponse:
        repository = _required(request, "repository")
        actions = list(dict.fromkeys(a for group in ACTION_GROUPS.values() for a in group))

        def ask_all() -> tuple[int, dict[str, list[Finding]]]:
            found: dict[str, list[Finding]] = {}
            revision = 0
            for action in actions:
                revision, found[action] = self.runtime.who_can(
                    action, repository, include_denied=True
                )
            return revision, found

        revision, by_action = await asyncio.to_thread(_answer, ask_all)
        rows: dict[tuple[str, str], dict[str, Finding]] = {}
        for action, findings in by_action.items():
            for finding in findings:
                rows.setdefault((finding.principal, str(finding.type)), {})[action] = finding
        return _json(
            {
                "repository": repository,
                "revision": revision,
                "groups": [{"name": n, "actions": list(a)} for n, a in ACTION_GROUPS.items()],
                "rows": [
                    _matrix_row(principal, kind, found)
                    for (principal, kind), found in sorted(rows.items())
                ],
            }
        )

    async def what_can(self, request: HttpRequest) -> HttpResponse:
        principal = _required(request, "principal")
        repository = _optional(request, "repository") or None
        revision, findings = await asyncio.to_thread(
            _answer,
            lambda: self.runtime.what_can(principal, repository, include_denied=True),
        )
        by_repository: dict[str, list[dict[str, object]]] = {}
        for finding in sorted(findings, key=lambda found: (found.repository, found.action)):
            by_repository.setdefault(finding.repository, []).append(_finding_cell(finding))
        return _json(
            {
                "principal": principal,
                "revision": revision,
                "repositories": [
                    {"repository": arn, "actions": cells}
                    for arn, cells in sorted(by_repository.items())
                ],
            }
        )

    async def preview(self, request: HttpRequest) -> HttpResponse:
        body = request.json()
        if not isinstance(body, dict):
            raise HttpError(400, "body: expected a JSON object")
        proposal = self._proposal(body)
        try:
            revision, changes = await asyncio.to_thread(
                _answer, lambda: self.runtime.preview(proposal)
            )
        except ValueError as problem:  # ProposalError, PolicyError, StoreError: it cannot apply
            raise HttpError(400, f"proposal: {problem}") from None
        return _json(
            {
                "revision": revision,
                "written": False,
                "newAccess": sum(1 for change in changes if change.new_access),
                "changes": [change.to_json() for change in changes],
            }
        )

    def _proposal(self, body: Mapping[str, Any]) -> Proposal:
        if "bundle" in body:
            try:
                return self.runtime.bundle_proposal(body["bundle"])
            except ValueError as problem:
                raise HttpError(400, f"bundle: {problem}") from None
        kind = body.get("kind")
        if kind not in _PROPOSAL_KINDS:
            choices = ", ".join(f"`{k}`" for k in _PROPOSAL_KINDS)
            raise HttpError(400, f"kind `{kind}`: expected one of {choices}, or a `bundle`")
        target = body.get("target")
        if not isinstance(target, str) or not target.strip():
            raise HttpError(400, "target: expected the ARN or ID the policy is attached to")
        policy = body.get("policy")
        if not isinstance(policy, dict):
            raise HttpError(400, "policy: expected a JSON object (a policy document)")
        return PolicyProposal(policy, PolicyKind(kind), target.strip())

    async def state(self, request: HttpRequest) -> HttpResponse:
        freshness = self.runtime.freshness()
        families, source = _metric_families(self.runtime)
        figures: dict[str, object] | None = None
        if families is not None:
            figures = self._figures(families)
            figures["source"] = source
        return _json(
            {
                "revision": freshness.revision,
                "staleness": freshness.staleness,
                "storeReachable": freshness.store_reachable,
                "tooStale": freshness.too_stale,
                "metrics": figures,
            }
        )

    def _figures(self, families: Iterable[Metric]) -> dict[str, object]:
        """Decisions by outcome, latency buckets, and the rate and mean latency over the last
        samples (one kept a second, for `_RATE_WINDOW` seconds)."""
        outcomes: dict[str, float] = {}
        buckets: list[tuple[float, float]] = []
        timed = seconds = 0.0
        for family in families:
            for point in family.samples:
                if point.name == "dockgate_decisions_total":
                    outcome = point.labels.get("outcome", "")
                    outcomes[outcome] = outcomes.get(outcome, 0.0) + point.value
                elif point.name == "dockgate_decision_seconds_bucket":
                    buckets.append((float(point.labels["le"]), point.value))
                elif point.name == "dockgate_decision_seconds_count":
                    timed += point.value
                elif point.name == "dockgate_decision_seconds_sum":
                    seconds += point.value
        merged: dict[float, float] = {}
        for bound, count in buckets:  # one set per worker: sum them
            merged[bound] = merged.get(bound, 0.0) + count
        total = sum(outcomes.values())
        now = self._monotonic()
        sample = _Sample(now, total, timed, seconds)
        while self._samples and now - self._samples[0].at > _RATE_WINDOW:
            self._samples.popleft()
        oldest = self._samples[0] if self._samples else None
        if not self._samples or now - self._samples[-1].at >= 1.0:
            self._samples.append(sample)
        rate = latency = None
        if oldest is not None and now > oldest.at:
            rate = (total - oldest.decisions) / (now - oldest.at)
            if timed > oldest.timed:
                latency = (seconds - oldest.seconds) / (timed - oldest.timed)
        return {
            "decisions": {name: int(count) for name, count in sorted(outcomes.items())},
            "total": int(total),
            "rate": rate,
            "window": None if oldest is None else now - oldest.at,
            "latencyMean": latency if latency is not None else (seconds / timed if timed else None),
            "latencyBuckets": [
                [None if bound == float("inf") else bound, int(count)]
                for bound, count in sorted(merged.items())
            ],
            "latencyP50": _quantile(merged, timed, 0.5),
            "latencyP99": _quantile(merged, timed, 0.99),
        }


def _metric_families(runtime: Runtime) -> tuple[list[Metric] | None, str | None]:
    """The decision metrics this process can read: its own, or under `--workers` (where it
    decides nothing) the sum the workers write to the multiprocess folder."""
    metrics = runtime.metrics
    if metrics is not None:
        return [*metrics.decisions.collect(), *metrics.latency.collect()], "this process"
    folder = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not folder or not os.path.isdir(folder):
        return None, None
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, folder)  # type: ignore[no-untyped-call]
    return list(registry.collect()), "the worker processes, summed"


def _quantile(buckets: Mapping[float, float], count: float, q: float) -> float | None:
    """The upper bound of the latency bucket holding quantile `q` (None: no decision timed, or
    past the last finite bound)."""
    if not count:
        return None
    for bound, seen in sorted(buckets.items()):
        if seen >= q * count:
            return None if bound == float("inf") else bound
    return None


def _matrix_row(principal: str, kind: str, found: Mapping[str, Finding]) -> dict[str, object]:
    decided = next(iter(found.values())).type.decided
    cells: dict[str, object] = {}
    for name, actions in ACTION_GROUPS.items():
        accesses = {a: found[a].access if a in found else Access.IMPLICITLY_DENIED for a in actions}
        cells[name] = {
            "access": group_access(accesses.values()),
            "actions": [
                _finding_cell(found[a]) if a in found else {"action": a, "access": str(access)}
                for a, access in accesses.items()
            ],
        }
    return {"principal": principal, "type": kind, "decided": decided, "cells": cells}


def _finding_cell(finding: Finding) -> dict[str, object]:
    cell: dict[str, object] = {
        "action": finding.action,
        "access": str(finding.access),
        "reasons": [reason.to_json() for reason in finding.reasons],
    }
    if finding.conditions:
        cell["conditions"] = [found.to_json() for found in finding.conditions]
    return cell


def _answer(question: Callable[[], Any]) -> Any:
    """The runtime's answer; 503 past `--max-staleness`, 400 for a malformed question."""
    try:
        return question()
    except Unavailable as stale:
        raise HttpError(503, str(stale)) from None
    except RequestError as problem:
        raise HttpError(400, f"{problem.field}: {problem}") from None


def _required(request: HttpRequest, name: str) -> str:
    value = _optional(request, name)
    if not value:
        raise HttpError(400, f"{name}: required")
    return value


def _optional(request: HttpRequest, name: str) -> str:
    values = request.query.get(name, [])
    if len(values) > 1:
        raise HttpError(400, f"{name}: given {len(values)} times, expected once")
    return values[0].strip() if values else ""


def _context(pairs: Sequence[str]) -> dict[str, str | list[str]]:
    """`KEY=VALUE` pairs as a request context; a key given again is multivalued (such as
    `aws:TagKeys`), a key given once single-valued."""
    values: dict[str, list[str]] = {}
    for pair in pairs:
        key, equals, value = pair.partition("=")
        if not equals or not key.strip():
            raise HttpError(400, f"context `{pair}`: expected KEY=VALUE")
        values.setdefault(key.strip(), []).append(value)
    return {key: found[0] if len(found) == 1 else found for key, found in values.items()}


def _json(document: Mapping[str, object]) -> HttpResponse:
    return HttpResponse(200, _JSON, json.dumps(document).encode())
