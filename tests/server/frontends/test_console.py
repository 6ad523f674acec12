"""The web console's JSON API and pages, without a browser: each question answered through a real
runtime over the sample fleet, the errors a user's mistake gets, and the host check."""

from __future__ import annotations

import argparse
import asyncio
import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

import dockgate_server.data
from dockgate_server.analysis import Access
from dockgate_server.frontends.console import ASSETS, ConsoleDoor, console_routes, error_page
from dockgate_server.frontends.console_api import ACTION_GROUPS, ConsoleApi, group_access
from dockgate_server.frontends.http import Handler, HttpError, HttpRequest, HttpResponse
from dockgate_server.frontends.runtime import ProcessRuntime
from dockgate_server.policy.parse import load_json
from dockgate_server.service.metrics import Metrics
from dockgate_server.store.bundle import bundle_to_fleet
from dockgate_server.store.port import open_store

A = "111122223333"
PUSHER = f"arn:aws:iam::{A}:user/ci/pusher"
READER = f"arn:aws:iam::{A}:user/reader"
ROOT = f"arn:aws:iam::{A}:root"
APP = f"arn:aws:ecr:us-east-1:{A}:repository/team-a/app"
HOST = "127.0.0.1:8190"


@pytest.fixture(scope="module")
def store_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("console") / "store.sqlite3"
    with open_store(path) as store:
        sample = Path(dockgate_server.data.__file__).parent / "sample-bundle.json"
        store.import_fleet(bundle_to_fleet(load_json(sample.read_text())))
    return path


@pytest.fixture(scope="module")
def runtime(store_path: Path) -> Iterator[ProcessRuntime]:
    started = ProcessRuntime.start(store_path, None)
    try:
        yield started
    finally:
        started.stop()


@pytest.fixture(scope="module")
def routes(runtime: ProcessRuntime) -> dict[str, Handler]:
    return {route.path: route.handler for route in console_routes(ConsoleApi(runtime), "0.0.0.0")}


def call(
    routes: Mapping[str, Handler],
    target: str,
    *,
    body: object = None,
    host: str = HOST,
) -> HttpResponse:
    method = "GET" if body is None else "POST"
    headers: dict[str, tuple[str, ...]] = {"host": (host,)}
    data = b""
    if body is not None:
        headers["content-type"] = ("application/json",)
        data = json.dumps(body).encode()
    request = HttpRequest(method, target, headers, data, "127.0.0.1")
    handler = routes[target.split("?", 1)[0]]

    async def answered() -> HttpResponse:
        return await handler(request)

    return asyncio.run(answered())


def answer(routes: Mapping[str, Handler], target: str, body: object = None) -> Any:
    response = call(routes, target, body=body)
    assert response.status == 200
    return json.loads(response.body)


def refusal(routes: Mapping[str, Handler], target: str, body: object = None) -> HttpError:
    with pytest.raises(HttpError) as refused:
        call(routes, target, body=body)
    return refused.value


def test_principals_are_searched_as_typed(routes: dict[str, Handler]) -> None:
    found = answer(routes, "/api/principals?q=ci+PUSHER")
    assert found == {"principals": [PUSHER], "total": 1}
    every = answer(routes, "/api/principals")
    assert READER in every["principals"] and ROOT in every["principals"]


def test_the_catalogue_and_the_repositories(routes: dict[str, Handler]) -> None:
    catalogue = answer(routes, "/api/actions")
    assert "ecr:PutImage" in catalogue["repository"]
    assert "ecr:GetAuthorizationToken" in catalogue["account"]
    assert catalogue["groups"]["push"] == list(ACTION_GROUPS["push"])
    assert answer(routes, "/api/repositories?q=team-a")["repositories"] == [APP]


def test_ask_returns_the_decision_with_each_deciding_policy_s_text(
    routes: dict[str, Handler],
) -> None:
    found = answer(routes, f"/api/ask?principal={PUSHER}&action=ecr:PutImage&resource={APP}")
    assert found["decision"] == "Allowed" and found["revision"] == 1
    identity = found["reasons"][0]
    assert identity["phase"] == "IdentityPolicy" and identity["statement"] == 2
    assert identity["document"]["Statement"][2]["Sid"] == "PushTeamA"
    assert identity["documentRevision"] == 1
    phases = {reason["phase"] for reason in found["reasons"]}
    assert phases == {"IdentityPolicy", "ServiceControlPolicy"}
    assert all(reason["document"] is not None for reason in found["reasons"])


def test_ask_shows_the_scp_statement_that_denies(routes: dict[str, Handler]) -> None:
    found = answer(routes, f"/api/ask?principal={ROOT}&action=ecr:DeleteRepository&resource={APP}")
    assert found["decision"] == "ExplicitlyDenied"
    [deny] = found["reasons"]
    assert deny["phase"] == "ServiceControlPolicy" and deny["effect"] == "Deny"
    assert deny["document"]["Statement"][deny["statement"]]["Sid"] == "NoDeletes"


def test_ask_takes_context_keys_and_an_account_action(routes: dict[str, Handler]) -> None:
    found = answer(
        routes,
        f"/api/ask?principal={READER}&action=ecr:GetAuthorizationToken"
        "&context=aws:SourceIp=203.0.113.7&context=aws:TagKeys=a&context=aws:TagKeys=b",
    )
    assert found["question"]["resource"] == "*"
    assert found["question"]["context"] == {
        "aws:SourceIp": "203.0.113.7",
        "aws:TagKeys": ["a", "b"],
    }
    assert found["decision"] == "Allowed"


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("/api/ask?action=ecr:PutImage", "principal: required"),
        (f"/api/ask?principal={READER}&action=ecr:PutImage&context=nokey", "context `nokey`"),
        (f"/api/ask?principal={READER}&principal={PUSHER}&action=x", "principal: given 2 times"),
        (f"/api/ask?principal={READER}&action=no-colon&resource={APP}", "action"),
        ("/api/who-can", "repository: required"),
        ("/api/what-can?principal=not-an-arn", "principal"),
    ],
)
def test_a_malformed_question_is_a_400_naming_its_field(
    routes: dict[str, Handler], target: str, message: str
) -> None:
    refused = refusal(routes, target)
    assert refused.status == 400
    assert refused.message.startswith(message), refused.message


def test_who_can_is_a_matrix_of_principals_and_action_groups(routes: dict[str, Handler]) -> None:
    found = answer(routes, f"/api/who-can?repository={APP}")
    assert [group["name"] for group in found["groups"]] == ["pull", "push", "delete", "admin"]
    rows = {(row["principal"], row["type"]): row for row in found["rows"]}
    pusher = rows[PUSHER, "User"]["cells"]
    assert pusher["push"]["access"] == "Allowed"
    assert pusher["delete"]["access"] == "ImplicitlyDenied"
    put = next(a for a in pusher["push"]["actions"] if a["action"] == "ecr:PutImage")
    assert put["reasons"][0]["sid"] == "PushTeamA"
    assert rows[READER, "User"]["cells"]["push"]["access"] == "ImplicitlyDenied"
    # the SCP's deny of DeleteRepository leaves root part of delete: shown, not hidden
    assert rows[ROOT, "Root"]["cells"]["delete"]["access"] == "Partial"
    partner = rows["arn:aws:iam::444455556666:root", "Account"]
    assert partner["decided"] is False and partner["cells"]["pull"]["access"] == "Allowed"


def test_what_can_groups_a_principal_s_access_by_repository(routes: dict[str, Handler]) -> None:
    found = answer(routes, f"/api/what-can?principal={READER}")
    by_repository = {group["repository"]: group["actions"] for group in found["repositories"]}
    assert {a["action"] for a in by_repository["*"]} == {"ecr:GetAuthorizationToken"}
    app = {a["action"]: a["access"] for a in by_repository[APP]}
    assert app["ecr:BatchGetImage"] == "Allowed" and "ecr:PutImage" not in app
    one = answer(routes, f"/api/what-can?principal={READER}&repository={APP}")
    assert [group["repository"] for group in one["repositories"]] == [APP]


def test_a_previewed_policy_lists_what_would_change_and_writes_nothing(
    routes: dict[str, Handler], runtime: ProcessRuntime
) -> None:
    policy = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "ecr:PutImage", "Resource": APP}],
    }
    found = answer(routes, "/api/preview", {"kind": "identity", "target": READER, "policy": policy})
    assert found["written"] is False and found["newAccess"] == 1
    [change] = found["changes"]
    assert (change["principal"], change["action"], change["before"], change["after"]) == (
        READER,
        "ecr:PutImage",
        "ImplicitlyDenied",
        "Allowed",
    )
    assert runtime.freshness().revision == found["revision"] == 1


def test_a_previewed_bundle_is_merged_as_an_import_would(routes: dict[str, Handler]) -> None:
    bundle = {
        "format": "dockgate-bundle/1",
        "accounts": {
            A: {
                "repositories": [
                    {
                        "repositoryArn": f"arn:aws:ecr:us-east-1:{A}:repository/team-b/tools",
                        "policyText": json.dumps(
                            {
                                "Version": "2012-10-17",
                                "Statement": [
                                    {
                                        "Effect": "Allow",
                                        "Principal": {"AWS": "arn:aws:iam::444455556666:root"},
                                        "Action": "ecr:BatchGetImage",
                                    }
                                ],
                            }
                        ),
                    }
                ]
            }
        },
    }
    found = answer(routes, "/api/preview", {"bundle": bundle})
    assert found["newAccess"] >= 1
    assert {c["principal"] for c in found["changes"]} >= {"arn:aws:iam::444455556666:root"}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"kind": "session", "target": READER, "policy": {}}, "kind `session`"),
        ({"kind": "identity", "policy": {}}, "target:"),
        ({"kind": "identity", "target": READER, "policy": "{}"}, "policy:"),
        ({"kind": "identity", "target": READER, "policy": {"Statement": 1}}, "proposal:"),
        ({"kind": "identity", "target": f"arn:aws:iam::{A}:user/ghost", "policy": {}}, "proposal"),
        ({"bundle": {"format": "nope"}}, "bundle:"),
        ([1, 2], "body:"),
    ],
)
def test_a_proposal_that_cannot_apply_is_a_400(
    routes: dict[str, Handler], body: object, message: str
) -> None:
    refused = refusal(routes, "/api/preview", body)
    assert refused.status == 400
    assert refused.message.startswith(message), refused.message


def test_the_state_says_when_this_process_makes_no_decisions(
    routes: dict[str, Handler], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    found = answer(routes, "/api/state")
    assert found["revision"] == 1 and found["storeReachable"] is True
    assert found["tooStale"] is False and found["metrics"] is None


def test_the_state_reads_the_decision_rate_and_latency(store_path: Path) -> None:
    metrics = Metrics(CollectorRegistry())
    started = ProcessRuntime.start(store_path, metrics)
    clock = [100.0]
    try:
        api = ConsoleApi(started, monotonic=lambda: clock[0])
        state = {route.path: route.handler for route in console_routes(api, "127.0.0.1")}
        first = answer(state, "/api/state")["metrics"]
        assert first["total"] == 0 and first["rate"] is None
        metrics.count_decision("Allowed", 30)
        metrics.count_decision("ImplicitlyDenied", 10)
        for seconds in (0.0002, 0.0002, 0.0004, 0.02):
            metrics.latency.observe(seconds)
        clock[0] += 4.0
        second = answer(state, "/api/state")["metrics"]
    finally:
        started.stop()
    assert second["decisions"] == {"Allowed": 30, "ImplicitlyDenied": 10}
    assert second["rate"] == pytest.approx(10.0) and second["window"] == pytest.approx(4.0)
    assert second["latencyMean"] == pytest.approx(0.0052)
    assert second["latencyP50"] == 0.00025 and second["latencyP99"] == 0.025
    assert second["source"] == "this process"


@pytest.mark.parametrize(
    ("accesses", "cell"),
    [
        ([Access.ALLOWED, Access.ALLOWED], "Allowed"),
        ([Access.ALLOWED, Access.CONDITIONAL], "Conditional"),
        ([Access.ALLOWED, Access.IMPLICITLY_DENIED], "Partial"),
        ([Access.IMPLICITLY_DENIED, Access.EXPLICITLY_DENIED], "ExplicitlyDenied"),
        ([Access.IMPLICITLY_DENIED], "ImplicitlyDenied"),
        ([], "ImplicitlyDenied"),
    ],
)
def test_a_matrix_cell_sums_up_its_actions(accesses: list[Access], cell: str) -> None:
    assert group_access(accesses) == cell


def test_the_pages_are_served_from_the_package_with_a_strict_policy(
    routes: dict[str, Handler],
) -> None:
    for name in ("", *ASSETS):
        response = call(routes, f"/{name}")
        headers = dict(response.headers)
        assert response.status == 200 and response.body
        assert "script-src 'self'" in headers["Content-Security-Policy"]
    page = call(routes, "/").body.decode()
    assert "http://" not in page and "https://" not in page  # nothing fetched from elsewhere


@pytest.mark.parametrize("host", ["127.0.0.1:8190", "localhost:8190", "[::1]:8190", "0.0.0.0"])
def test_the_console_answers_its_own_addresses(routes: dict[str, Handler], host: str) -> None:
    assert call(routes, "/api/actions", host=host).status == 200


def test_another_host_name_is_refused_against_dns_rebinding(routes: dict[str, Handler]) -> None:
    with pytest.raises(HttpError) as refused:
        call(routes, "/api/principals", host="attacker.example:8190")
    assert refused.value.status == 421
    page = error_page(refused.value)
    assert json.loads(page.body) == {
        "error": "host `attacker.example:8190`: not this console's address"
    }


def test_the_door_is_off_unless_asked_and_says_to_stay_on_loopback() -> None:
    door = ConsoleDoor()
    assert door.configure(argparse.Namespace(console_listen=None)) is None
    settings = door.configure(argparse.Namespace(console_listen="127.0.0.1:0"))
    assert settings is not None and door.listens(settings)[0].announce == "console_port"
    assert "127.0.0.1" in door.options[0].arguments["help"]
