"""`who_can`, `what_can` and `preview` of both clients: typed results, every page read, and an
answer asked again from its first page when the server no longer keeps it."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import Iterator
from typing import Any

import grpc
import pytest

import dockgate
from dockgate.v1 import analysis_pb2, errors_pb2
from dockgate_server.remote import remote_preview, remote_what_can, remote_who_can
from dockgate_server.service.errors import ServiceError, to_status
from tests.server.service.conftest import RunningServer, start_server

PUSHER = "arn:aws:iam::111122223333:user/ci/pusher"
PARTNER_CI = "arn:aws:iam::444455556666:role/partner-ci"
APP = "arn:aws:ecr:us-east-1:111122223333:repository/team-a/app"
TEAM_B = "arn:aws:ecr:us-east-1:111122223333:repository/team-b/*"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    running = start_server(tmp_path_factory.mktemp("client-analysis"))
    try:
        yield running
    finally:
        running.stop()


def as_json(found: dockgate.AccessFinding | dockgate.AccessChange) -> dict[str, object]:
    """The typed result as the CLI prints it, to compare with what the server sends."""
    fields = dataclasses.asdict(found)
    result: dict[str, object] = {
        key: fields[key] for key in ("principal", "type", "action", "repository")
    }
    if isinstance(found, dockgate.AccessFinding):
        result["access"] = str(found.access)
    else:
        result.update(before=str(found.before), after=str(found.after))
        result["newAccess"] = found.new_access
    result["revision"] = found.revision
    result["reasons"] = [
        {k: v for k, v in dataclasses.asdict(r).items() if v is not None} for r in found.reasons
    ]
    return result


def comparable(line: dict[str, object]) -> dict[str, object]:
    kept = {k: v for k, v in line.items() if k not in ("conditions", "example", "decided")}
    kept["reasons"] = [
        {k: v for k, v in reason.items() if v is not None}
        for reason in line["reasons"]  # type: ignore[attr-defined]
    ]
    return kept


def test_who_can_and_what_can_are_typed(served: RunningServer) -> None:
    with dockgate.Client(served.decision) as client:
        who = client.who_can("ecr:BatchGetImage", "team-a/app")
        what = client.what_can(PARTNER_CI)
    lines = remote_who_can(served.decision, "ecr:BatchGetImage", APP, False)
    assert [as_json(found) for found in who] == [comparable(line) for line in lines]
    account = next(found for found in who if found.type == "Account")
    assert account.decided is False and account.access is dockgate.Access.ALLOWED
    assert all(found.decided for found in who if found.type != "Account")
    lines = remote_what_can(served.decision, PARTNER_CI, None, False)
    assert [as_json(found) for found in what] == [comparable(line) for line in lines]
    assert ("*", "ecr:GetAuthorizationToken") in {(f.repository, f.action) for f in what}


def test_preview_of_a_policy_lists_new_conditional_access(served: RunningServer) -> None:
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": "ecr:PutImage",
                "Resource": TEAM_B,
                "Condition": {"IpAddress": {"aws:SourceIp": "203.0.113.0/24"}},
            }
        ],
    }

    async def ask() -> list[dockgate.AccessChange]:
        async with dockgate.AsyncClient(served.decision) as client:
            return await client.preview(policy=policy, kind="identity", target=PUSHER)

    changes = asyncio.run(ask())
    assert [(c.action, c.before, c.after, c.new_access) for c in changes] == [
        ("ecr:PutImage", dockgate.Access.IMPLICITLY_DENIED, dockgate.Access.CONDITIONAL, True)
    ]
    condition = changes[0].conditions[0].condition
    assert condition == {"IpAddress": {"aws:SourceIp": ("203.0.113.0/24",)}}
    lines = remote_preview(served.decision, policy=(json.dumps(policy), "identity", PUSHER))
    assert [as_json(change) for change in changes] == [comparable(line) for line in lines]


def test_a_malformed_question_is_an_invalid_request_naming_the_field(
    served: RunningServer,
) -> None:
    with dockgate.Client(served.decision) as client:
        with pytest.raises(dockgate.InvalidRequestError) as caught:
            client.what_can("nobody")
        assert caught.value.field == "principal"
        with pytest.raises(ValueError, match="a bundle or a policy"):
            client.preview()


class _Expired(grpc.RpcError):
    """PAGE_EXPIRED as the server sends it."""

    def __init__(self) -> None:
        super().__init__()
        error = ServiceError(
            grpc.StatusCode.FAILED_PRECONDITION,
            errors_pb2.PAGE_EXPIRED,
            "`page.token`: its answer at revision 1 is no longer kept",
            field="page.token",
        )
        self._status = to_status(error)

    def code(self) -> grpc.StatusCode:
        return self._status.code

    def details(self) -> str:
        return self._status.details

    def trailing_metadata(self) -> Any:
        return self._status.trailing_metadata


class _Pages:
    """WhatCan answering two pages per answer; the first second page it is asked has expired."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, int]] = []
        self.expired = False

    def WhatCan(  # noqa: N802 (the stub's method name)
        self, request: analysis_pb2.WhatCanRequest, timeout: float
    ) -> analysis_pb2.FindingsPage:
        revision = 1 if not self.expired else 2
        self.calls.append((request.page.token, revision))
        if request.page.token and not self.expired:
            self.expired = True
            raise _Expired()
        finding = analysis_pb2.AccessFinding(
            principal=request.principal,
            action="ecr:ListImages" if request.page.token else "ecr:BatchGetImage",
            repository=APP,
            access=analysis_pb2.ACCESS_ALLOWED,
            revision=revision,
            decided=True,
        )
        after = "" if request.page.token else "page-2"
        return analysis_pb2.FindingsPage(
            findings=[finding], revision=revision, next_page_token=after
        )


def test_an_expired_page_asks_again_from_the_first() -> None:
    pages = _Pages()
    with dockgate.Client("127.0.0.1:1") as client:
        client._analyzer = pages  # type: ignore[assignment]
        found = client.what_can(PUSHER)
    assert [(f.action, f.revision) for f in found] == [
        ("ecr:BatchGetImage", 2),
        ("ecr:ListImages", 2),
    ]
    assert pages.calls == [("", 1), ("page-2", 1), ("", 2), ("page-2", 2)]
