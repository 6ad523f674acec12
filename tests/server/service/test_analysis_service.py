"""`dockgate.v1.Analyzer` over a real gRPC port: the analysis's answers, paged, and its refusals."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2  # type: ignore[import-untyped]
from grpc_status import rpc_status

from dockgate.v1 import analysis_pb2, analysis_pb2_grpc
from dockgate_server.analysis import (
    REPOSITORY_ACTIONS,
    AccessChange,
    Finding,
    Proposal,
    preview,
    what_can,
    who_can,
)
from dockgate_server.engine.build import build_snapshot
from dockgate_server.engine.snapshot import Snapshot
from dockgate_server.remote import _change, _finding
from dockgate_server.service.analysis import MAX_PAGE, AnalyzerService
from tests.server.analysis.sample import (
    ALICE,
    APP,
    BOB,
    NOW,
    allow,
    document,
    sample_credentials,
    sample_fleet,
    sample_snapshot,
)


class Stale(Exception):  # noqa: N818 (what the runtime raises past --max-staleness)
    pass


@dataclass
class SnapshotSource:
    """An `AnalysisSource` over one snapshot, as a runtime answers: swappable, or stale."""

    snapshot: Snapshot = field(default_factory=sample_snapshot)
    stale: bool = False
    asked: int = 0

    def _current(self) -> Snapshot:
        if self.stale:
            raise Stale("the policy is 9 s old, past --max-staleness 1 s")
        self.asked += 1
        return self.snapshot

    def who_can(
        self, action: str, repository: str, *, include_denied: bool = False
    ) -> tuple[int, list[Finding]]:
        snapshot = self._current()
        found = who_can(snapshot, action, repository, now=NOW, include_denied=include_denied)
        return snapshot.revision, found

    def what_can(
        self, principal: str, repository: str | None = None, *, include_denied: bool = False
    ) -> tuple[int, list[Finding]]:
        snapshot = self._current()
        found = what_can(snapshot, principal, repository, now=NOW, include_denied=include_denied)
        return snapshot.revision, found

    def preview(self, proposal: Proposal) -> tuple[int, list[AccessChange]]:
        snapshot = self._current()
        return snapshot.revision, preview(snapshot, sample_fleet(), proposal, now=NOW)

    def repositories(self) -> list[str]:
        return list(self._current().repositories)


@dataclass
class Served:
    source: SnapshotSource
    stub: analysis_pb2_grpc.AnalyzerAsyncStub


Scenario = Callable[["Served"], Awaitable[None]]


def serve(scenario: Scenario) -> None:
    """Run `scenario` against the servicer on a real port (127.0.0.1, port 0)."""

    async def run() -> None:
        source = SnapshotSource()
        server = grpc.aio.server()
        servicer = AnalyzerService(source, (Stale,))
        analysis_pb2_grpc.add_AnalyzerServicer_to_server(servicer, server)
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
        try:
            await asyncio.wait_for(
                scenario(Served(source, analysis_pb2_grpc.AnalyzerStub(channel))), 60
            )
        finally:
            await channel.close()
            await server.stop(0)

    asyncio.run(run())


def error_info(error: grpc.aio.AioRpcError) -> tuple[grpc.StatusCode, str, str]:
    """The code, the ErrorInfo's reason and field."""
    status = rpc_status.from_call(error)  # type: ignore[arg-type]
    assert status is not None
    info = error_details_pb2.ErrorInfo()
    assert status.details[0].Unpack(info)
    return error.code(), info.reason, info.metadata.get("field", "")


async def refused(call: object) -> tuple[grpc.StatusCode, str, str]:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call  # type: ignore[misc]
    return error_info(caught.value)


def test_who_can_answers_as_the_analysis_does() -> None:
    async def scenario(served: Served) -> None:
        request = analysis_pb2.WhoCanRequest(action="ecr:PutImage", repository="team-a/app")
        page = await served.stub.WhoCan(request)
        expected = who_can(served.source.snapshot, "ecr:PutImage", APP, now=NOW)
        assert [_finding(found) for found in page.findings] == [f.to_json() for f in expected]
        assert page.revision == 4 and page.next_page_token == ""
        conditional = next(f for f in page.findings if f.principal == BOB)
        assert conditional.access == analysis_pb2.ACCESS_CONDITIONAL
        assert conditional.has_example and conditional.conditions[0].sid == "Office"

    serve(scenario)


def test_what_can_pages_through_one_answer_at_one_revision() -> None:
    async def scenario(served: Served) -> None:
        expected = [f.to_json() for f in what_can(served.source.snapshot, ALICE, now=NOW)]
        assert len(expected) > 3
        request = analysis_pb2.WhatCanRequest(
            principal=ALICE, page=analysis_pb2.PageRequest(size=2)
        )
        pages = [await served.stub.WhatCan(request)]
        # the store moves on between pages: the answer kept for revision 4 still serves them
        served.source.snapshot = build_snapshot(sample_fleet(), sample_credentials(), 5)
        while pages[-1].next_page_token:
            request.page.token = pages[-1].next_page_token
            pages.append(await served.stub.WhatCan(request))
        assert [len(p.findings) for p in pages[:-1]] == [2] * (len(pages) - 1)
        assert {p.revision for p in pages} == {4}
        assert [_finding(f) for p in pages for f in p.findings] == expected
        assert served.source.asked == 1  # one analysis for every page

    serve(scenario)


def test_a_token_of_an_answer_no_longer_kept_has_expired() -> None:
    async def scenario(served: Served) -> None:
        request = analysis_pb2.WhatCanRequest(
            principal=ALICE, page=analysis_pb2.PageRequest(size=1)
        )
        first = await served.stub.WhatCan(request)
        for action in REPOSITORY_ACTIONS[:8]:  # eight other answers push it out
            await served.stub.WhoCan(analysis_pb2.WhoCanRequest(action=action, repository=APP))
        served.source.snapshot = build_snapshot(sample_fleet(), sample_credentials(), 5)
        request.page.token = first.next_page_token
        code, reason, field_name = await refused(served.stub.WhatCan(request))
        assert (code, reason, field_name) == (
            grpc.StatusCode.FAILED_PRECONDITION,
            "PAGE_EXPIRED",
            "page.token",
        )

    serve(scenario)


def test_a_token_not_of_the_question_is_refused() -> None:
    async def scenario(served: Served) -> None:
        request = analysis_pb2.WhatCanRequest(
            principal=ALICE, page=analysis_pb2.PageRequest(size=1)
        )
        first = await served.stub.WhatCan(request)
        other = analysis_pb2.WhatCanRequest(principal=BOB, page=analysis_pb2.PageRequest(size=1))
        other.page.token = first.next_page_token
        assert (await refused(served.stub.WhatCan(other)))[0] is grpc.StatusCode.INVALID_ARGUMENT
        other.page.token = "not-a-token"
        assert (await refused(served.stub.WhatCan(other)))[2] == "page.token"
        other.page.token = ""
        other.page.size = MAX_PAGE + 1
        assert await refused(served.stub.WhatCan(other)) == (
            grpc.StatusCode.INVALID_ARGUMENT,
            "REQUEST_TOO_LARGE",
            "page.size",
        )

    serve(scenario)


@pytest.mark.parametrize(
    ("request_message", "reason", "field_name"),
    [
        (analysis_pb2.WhoCanRequest(repository=APP), "INVALID_ACTION", "action"),
        (analysis_pb2.WhoCanRequest(action="ecr:PutImage"), "INVALID_RESOURCE", "repository"),
        (
            analysis_pb2.WhoCanRequest(action="ecr:PutImage", repository="no/such"),
            "INVALID_RESOURCE",
            "repository",
        ),
        (
            analysis_pb2.WhoCanRequest(action="PutImage", repository=APP),
            "INVALID_ACTION",
            "action",
        ),
        (analysis_pb2.WhatCanRequest(principal="nobody"), "INVALID_PRINCIPAL", "principal"),
        (
            analysis_pb2.WhatCanRequest(principal=ALICE, repository="*"),
            "INVALID_RESOURCE",
            "repository",
        ),
    ],
)
def test_malformed_questions_name_the_field(
    request_message: object, reason: str, field_name: str
) -> None:
    async def scenario(served: Served) -> None:
        method: Any = (
            served.stub.WhoCan
            if isinstance(request_message, analysis_pb2.WhoCanRequest)
            else served.stub.WhatCan
        )
        assert await refused(method(request_message)) == (
            grpc.StatusCode.INVALID_ARGUMENT,
            reason,
            field_name,
        )

    serve(scenario)


def test_a_stale_runtime_answers_unavailable_never_findings() -> None:
    async def scenario(served: Served) -> None:
        served.source.stale = True
        request = analysis_pb2.WhoCanRequest(action="ecr:PutImage", repository=APP)
        assert await refused(served.stub.WhoCan(request)) == (
            grpc.StatusCode.UNAVAILABLE,
            "STORE_UNAVAILABLE",
            "",
        )

    serve(scenario)


def test_preview_of_a_policy() -> None:
    async def scenario(served: Served) -> None:
        policy = document(allow("ecr:*", APP))
        request = analysis_pb2.PreviewRequest(
            policy=analysis_pb2.ProposedPolicy(
                document=json.dumps(policy), kind="identity", target=BOB
            )
        )
        page = await served.stub.Preview(request)
        assert page.changes and all(change.principal == BOB for change in page.changes)
        put = next(c for c in page.changes if c.action == "ecr:PutImage")
        assert (put.before, put.after, put.new_access) == (
            analysis_pb2.ACCESS_CONDITIONAL,
            analysis_pb2.ACCESS_ALLOWED,
            True,
        )
        assert _change(put)["newAccess"] is True

    serve(scenario)


@pytest.mark.parametrize(
    ("proposal", "reason", "field_name"),
    [
        (
            analysis_pb2.ProposedPolicy(document="{", kind="identity", target=BOB),
            "INVALID_POLICY",
            "policy.document",
        ),
        (
            analysis_pb2.ProposedPolicy(document="{}", kind="identity", target=BOB),
            "INVALID_POLICY",
            "policy.document",
        ),
        (
            analysis_pb2.ProposedPolicy(document="{}", kind="session", target=BOB),
            "INVALID_POLICY",
            "policy.kind",
        ),
        (
            analysis_pb2.ProposedPolicy(
                document=json.dumps(document(allow("ecr:*"))),
                kind="identity",
                target="arn:aws:iam::111122223333:user/nobody",
            ),
            "NOT_FOUND",
            "policy.target",
        ),
    ],
)
def test_a_proposal_that_cannot_apply_is_refused(
    proposal: analysis_pb2.ProposedPolicy, reason: str, field_name: str
) -> None:
    async def scenario(served: Served) -> None:
        call = served.stub.Preview(analysis_pb2.PreviewRequest(policy=proposal))
        assert await refused(call) == (grpc.StatusCode.INVALID_ARGUMENT, reason, field_name)

    serve(scenario)


def test_a_preview_without_a_proposal_is_refused() -> None:
    async def scenario(served: Served) -> None:
        code, _, field_name = await refused(served.stub.Preview(analysis_pb2.PreviewRequest()))
        assert (code, field_name) == (grpc.StatusCode.INVALID_ARGUMENT, "proposal")

    serve(scenario)
