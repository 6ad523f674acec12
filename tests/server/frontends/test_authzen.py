"""The AuthZEN door on a real socket: the specification's examples (with ECR ids), the search APIs
against the evaluation API on the same fleet, paging, the bearer token, bad JSON and staleness."""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import pytest

from dockgate_server.analysis import REPOSITORY_ACTIONS, Finding, what_can, who_can
from dockgate_server.engine.decision import Decision
from dockgate_server.engine.snapshot import Snapshot
from dockgate_server.frontends.authzen import AuthzenDoor, authzen_routes
from dockgate_server.frontends.door import Runtime, Unavailable
from dockgate_server.frontends.http import HttpServer
from tests.server.analysis.sample import (
    ALICE,
    APP,
    BASE,
    BOB,
    BUILD,
    CAROL,
    CI,
    LOCKED,
    NOW,
    PARTNER,
    ROOT_A,
    ROOT_B,
    sample_snapshot,
)

PRINCIPALS = (ALICE, BOB, CAROL, CI, BUILD, PARTNER, ROOT_A, ROOT_B)
REPOSITORIES = (APP, LOCKED, BASE)
ACTIONS = ("ecr:PutImage", "ecr:BatchGetImage", "ecr:DeleteRepository", "ecr:ListImages")
TOKEN = "s3cret-token"
OFFICE = {"aws:SourceIp": "10.1.2.3"}


@dataclass
class FakeRuntime:
    """The parts of a `Runtime` the AuthZEN door uses, over the analysis sample fleet at `NOW`,
    with a switch that makes it stale (`Unavailable`)."""

    snapshot: Snapshot = field(default_factory=sample_snapshot)
    stale: bool = False

    def _fresh(self) -> Snapshot:
        if self.stale:
            raise Unavailable("the policy is older than --max-staleness allows")
        return self.snapshot

    def decide(
        self, principal: str, action: str, resource: str, context: Mapping[str, Any]
    ) -> Decision:
        return self._fresh().authorize(principal, action, resource, context, now=NOW)

    def who_can(
        self, action: str, repository: str, *, include_denied: bool = False
    ) -> tuple[int, list[Finding]]:
        snapshot = self._fresh()
        return snapshot.revision, who_can(snapshot, action, repository, now=NOW)

    def what_can(
        self, principal: str, repository: str | None = None, *, include_denied: bool = False
    ) -> tuple[int, list[Finding]]:
        snapshot = self._fresh()
        return snapshot.revision, what_can(snapshot, principal, repository, now=NOW)


@dataclass(frozen=True)
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Api:
    port: int
    runtime: FakeRuntime
    token: str | None

    async def call(
        self,
        method: str,
        path: str,
        body: object = None,
        *,
        raw: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        token: str | None = "default",
    ) -> Reply:
        sent = {"Content-Type": "application/json", **(headers or {})}
        bearer = self.token if token == "default" else token
        if bearer is not None:
            sent["Authorization"] = f"Bearer {bearer}"
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)

        def send() -> Reply:
            connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=20)
            try:
                connection.request(method, path, body=data, headers=sent)
                response = connection.getresponse()
                found = {k.lower(): v for k, v in response.getheaders()}
                return Reply(response.status, found, response.read())
            finally:
                connection.close()

        return await asyncio.to_thread(send)

    async def post(self, path: str, body: object, **options: Any) -> Reply:
        return await self.call("POST", f"/access/v1/{path}", body, **options)

    async def decision(self, principal: str, action: str, resource: str, context: object) -> bool:
        reply = await self.post("evaluation", question(principal, action, resource, context))
        assert reply.status == 200, reply.body
        decided: bool = reply.json()["decision"]
        return decided

    async def search(self, kind: str, body: dict[str, Any], limit: int = 0) -> list[Any]:
        """Every result, page after page."""
        results: list[Any] = []
        token = ""
        while True:
            page = {"token": token, **({"limit": limit} if limit else {})}
            reply = await self.post(f"search/{kind}", {**body, "page": page})
            assert reply.status == 200, reply.body
            answer = reply.json()
            results += answer["results"]
            assert answer["page"]["count"] == len(answer["results"])
            token = answer["page"]["next_token"]
            if not token:
                return results


Scenario = Callable[[Api], Awaitable[None]]


def serve(scenario: Scenario, *, token: str | None = TOKEN) -> FakeRuntime:
    runtime = FakeRuntime()

    async def run() -> None:
        routes = authzen_routes(cast(Runtime, runtime), token=token, base=None)
        async with HttpServer(routes, "127.0.0.1", 0, name="authzen") as server:
            await asyncio.wait_for(scenario(Api(server.port, runtime, token)), 60)

    asyncio.run(run())
    return runtime


def question(principal: str, action: str, resource: str, context: object = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "subject": {"type": "principal", "id": principal},
        "action": {"name": action},
        "resource": {"type": "repository", "id": resource},
    }
    if context is not None:
        body["context"] = context
    return body


# -- the specification's examples, with ECR ids ------------------------------------------------


def test_the_access_evaluation_example() -> None:
    async def scenario(api: Api) -> None:
        reply = await api.post(
            "evaluation",
            {
                "subject": {"type": "user", "id": ALICE},
                "resource": {"type": "repository", "id": APP},
                "action": {"name": "ecr:PutImage"},
                "context": {"time": "1985-10-26T01:22-07:00"},
            },
            headers={"X-Request-ID": "bfe9eb29-ab87-4ca3-be83-a1d5d8305716"},
        )
        assert reply.status == 200
        assert reply.headers["content-type"] == "application/json"
        assert reply.headers["x-request-id"] == "bfe9eb29-ab87-4ca3-be83-a1d5d8305716"
        answer = reply.json()
        assert answer["decision"] is True
        assert answer["context"]["outcome"] == "Allowed"
        assert answer["context"]["revision"] == 4
        assert answer["context"]["reasons"][0]["phase"] == "IdentityPolicy"

    serve(scenario)


def test_the_access_evaluations_example() -> None:
    """Defaults for subject, context and action at the top level; the third item overrides
    the action."""

    async def scenario(api: Api) -> None:
        reply = await api.post(
            "evaluations",
            {
                "subject": {"type": "user", "id": BOB},
                "context": {"time": "2024-05-31T15:22-07:00"},
                "action": {"name": "ecr:BatchGetImage"},
                "evaluations": [
                    {"resource": {"type": "repository", "id": APP}},
                    {"resource": {"type": "repository", "id": "arn:aws:ecr:us-east-1:1:x"}},
                    {
                        "action": {"name": "ecr:DeleteRepository"},
                        "resource": {"type": "repository", "id": APP},
                    },
                ],
            },
        )
        assert reply.status == 200
        evaluations = reply.json()["evaluations"]
        assert [set(item) <= {"decision", "context"} for item in evaluations] == [True] * 3
        singles = [
            await api.decision(BOB, "ecr:BatchGetImage", APP, {"time": "2024-05-31T15:22-07:00"}),
            await api.decision(BOB, "ecr:BatchGetImage", "arn:aws:ecr:us-east-1:1:x", None),
            await api.decision(BOB, "ecr:DeleteRepository", APP, None),
        ]
        assert [item["decision"] for item in evaluations] == singles

    serve(scenario)


@pytest.mark.parametrize(
    ("semantic", "expected"),
    [
        ("execute_all", [True, False, True]),
        ("deny_on_first_deny", [True, False]),
        ("permit_on_first_permit", [True]),
    ],
)
def test_the_evaluations_semantics(semantic: str, expected: list[bool]) -> None:
    async def scenario(api: Api) -> None:
        body = {
            "subject": {"type": "user", "id": ALICE},
            "resource": {"type": "repository", "id": APP},
            "options": {"evaluations_semantic": semantic},
            "evaluations": [
                {"action": {"name": "ecr:PutImage"}},
                {"action": {"name": "ecr:DeleteRepository"}},
                {"action": {"name": "ecr:BatchGetImage"}},
            ],
        }
        reply = await api.post("evaluations", body)
        assert [item["decision"] for item in reply.json()["evaluations"]] == expected

    serve(scenario)


def test_a_malformed_evaluation_item_is_false_with_its_error() -> None:
    async def scenario(api: Api) -> None:
        body = {
            "subject": {"type": "user", "id": ALICE},
            "resource": {"type": "repository", "id": APP},
            "evaluations": [
                {"action": {"name": "PutImage"}},
                {"action": {"name": "ecr:PutImage"}},
                {},
            ],
        }
        evaluations = (await api.post("evaluations", body)).json()["evaluations"]
        assert [item["decision"] for item in evaluations] == [False, True, False]
        assert evaluations[0]["context"]["error"]["status"] == 400
        assert "service:Action" in evaluations[0]["context"]["error"]["message"]
        assert evaluations[2]["context"]["error"]["message"] == (
            "`evaluations[2].action` must be an object"
        )

    serve(scenario)


def test_evaluations_without_items_is_one_evaluation() -> None:
    async def scenario(api: Api) -> None:
        reply = await api.post("evaluations", question(ALICE, "ecr:PutImage", APP))
        assert reply.json()["decision"] is True

    serve(scenario)


def test_the_metadata_document_names_every_endpoint() -> None:
    async def scenario(api: Api) -> None:
        reply = await api.call("GET", "/.well-known/authzen-configuration")
        assert reply.status == 200
        base = f"http://127.0.0.1:{api.port}"
        assert reply.json() == {
            "policy_decision_point": base,
            "access_evaluation_endpoint": f"{base}/access/v1/evaluation",
            "access_evaluations_endpoint": f"{base}/access/v1/evaluations",
            "search_subject_endpoint": f"{base}/access/v1/search/subject",
            "search_resource_endpoint": f"{base}/access/v1/search/resource",
            "search_action_endpoint": f"{base}/access/v1/search/action",
        }

    serve(scenario)


def test_the_search_examples_have_the_specified_shape() -> None:
    async def scenario(api: Api) -> None:
        subjects = await api.post(
            "search/subject",
            {
                "subject": {"type": "user"},
                "action": {"name": "ecr:PutImage"},
                "resource": {"type": "repository", "id": APP},
            },
        )
        assert subjects.json()["results"] == [{"type": "user", "id": ALICE}]
        assert subjects.json()["page"]["next_token"] == ""
        resources = await api.post(
            "search/resource",
            {
                "subject": {"type": "user", "id": ALICE},
                "action": {"name": "ecr:PutImage"},
                "resource": {"type": "repository"},
            },
        )
        assert {"type": "repository", "id": APP} in resources.json()["results"]
        actions = await api.post(
            "search/action",
            {
                "subject": {"type": "user", "id": ALICE},
                "resource": {"type": "repository", "id": APP},
                "context": {"time": "2024-10-26T01:22-07:00"},
            },
        )
        assert {"name": "ecr:PutImage"} in actions.json()["results"]

    serve(scenario)


# -- the search APIs against the evaluation API, on the same fleet -----------------------------


@pytest.mark.parametrize("context", [None, OFFICE], ids=["no context", "office address"])
def test_subject_search_finds_exactly_the_subjects_evaluated_true(context: object) -> None:
    async def scenario(api: Api) -> None:
        for action in ACTIONS:
            for repository in REPOSITORIES:
                body = question(ALICE, action, repository, context)
                body["subject"] = {"type": "principal"}
                found = {result["id"] for result in await api.search("subject", body)}
                for principal in PRINCIPALS:
                    allowed = await api.decision(principal, action, repository, context)
                    assert (principal in found) == allowed, (principal, action, repository)

    serve(scenario)


def test_a_conditional_subject_is_found_only_in_a_context_that_allows_it() -> None:
    async def scenario(api: Api) -> None:
        body = question(ALICE, "ecr:PutImage", APP)
        body["subject"] = {"type": "user"}
        assert BOB not in {r["id"] for r in await api.search("subject", body)}
        body["context"] = OFFICE
        assert {"type": "user", "id": BOB} in await api.search("subject", body)

    serve(scenario)


def test_resource_search_finds_exactly_the_repositories_evaluated_true() -> None:
    async def scenario(api: Api) -> None:
        for principal in PRINCIPALS:
            for action in ACTIONS:
                body = question(principal, action, APP, OFFICE)
                body["resource"] = {"type": "repository"}
                found = {result["id"] for result in await api.search("resource", body)}
                for repository in REPOSITORIES:
                    allowed = await api.decision(principal, action, repository, OFFICE)
                    assert (repository in found) == allowed, (principal, action, repository)

    serve(scenario)


def test_action_search_finds_exactly_the_actions_evaluated_true() -> None:
    async def scenario(api: Api) -> None:
        for principal in (ALICE, BOB, BUILD, PARTNER, ROOT_A):
            for repository in REPOSITORIES:
                body = question(principal, "ecr:PutImage", repository)
                del body["action"]
                found = {result["name"] for result in await api.search("action", body)}
                for action in REPOSITORY_ACTIONS:
                    allowed = await api.decision(principal, action, repository, None)
                    assert (action in found) == allowed, (principal, action, repository)

    serve(scenario)


def test_search_pages_through_one_answer() -> None:
    async def scenario(api: Api) -> None:
        body = question(ROOT_A, "ecr:PutImage", APP)
        del body["action"]
        whole = await api.search("action", body)
        assert len(whole) > 3
        assert await api.search("action", body, limit=2) == whole
        reply = await api.post("search/action", {**body, "page": {"token": "garbage"}})
        assert reply.status == 400 and b"page.token" in reply.body

    serve(scenario)


# -- refusals ----------------------------------------------------------------------------------


def test_bad_json_is_400_with_a_reason() -> None:
    async def scenario(api: Api) -> None:
        reply = await api.post("evaluation", None, raw=b'{"subject": ')
        assert (reply.status, reply.body) == (400, b"the body is not valid JSON\n")
        reply = await api.post("evaluation", [1, 2])
        assert (reply.status, reply.body) == (400, b"the body must be a JSON object\n")
        body = question(ALICE, "ecr:PutImage", APP)
        body["subject"]["type"] = "role"
        reply = await api.post("evaluation", body)
        assert reply.status == 400
        assert reply.body.decode() == f"`subject.type` `role`: `{ALICE}` is a `user`\n"
        reply = await api.post("evaluation", question(ALICE, "ecr:PutImage", "nope"))
        assert reply.status == 400

    serve(scenario)


def test_a_wrong_or_missing_bearer_token_is_401() -> None:
    async def scenario(api: Api) -> None:
        body = question(ALICE, "ecr:PutImage", APP)
        for token in (None, "wrong", TOKEN + "x"):
            reply = await api.post("evaluation", body, token=token)
            assert reply.status == 401
            assert reply.headers["www-authenticate"].startswith("Bearer")
        reply = await api.call("GET", "/.well-known/authzen-configuration", token=None)
        assert reply.status == 401
        assert (await api.post("evaluation", body)).status == 200

    serve(scenario)


def test_a_stale_runtime_answers_503_never_a_decision() -> None:
    async def scenario(api: Api) -> None:
        api.runtime.stale = True
        body = question(ALICE, "ecr:PutImage", APP)
        assert (await api.post("evaluation", body)).status == 503
        many = {**body, "evaluations": [{}, {}]}
        assert (await api.post("evaluations", many)).status == 503
        body["subject"] = {"type": "principal"}
        assert (await api.post("search/subject", body)).status == 503

    serve(scenario)


# -- the door's options ------------------------------------------------------------------------


def options(
    listen: str | None, token_file: str | None = None, client_ca: str | None = None
) -> argparse.Namespace:
    return argparse.Namespace(
        authzen_listen=listen, authzen_token_file=token_file, tls_client_ca=client_ca
    )


def test_the_door_is_off_by_default_and_needs_a_token_off_loopback(tmp_path: Path) -> None:
    door = AuthzenDoor()
    assert door.configure(options(None)) is None
    assert door.configure(options("127.0.0.1:0")) is not None
    with pytest.raises(ValueError, match="needs --authzen-token-file or mTLS"):
        door.configure(options("0.0.0.0:8181"))
    assert door.configure(options("0.0.0.0:8181", client_ca="ca.pem")) is not None
    token = tmp_path / "token"
    token.write_text(f"{TOKEN}\n")
    settings = door.configure(options("0.0.0.0:8181", str(token)))
    assert settings is not None and settings.token == TOKEN
    with pytest.raises(ValueError, match=r"^--authzen-token-file `.*`: cannot read"):
        door.configure(options("127.0.0.1:0", str(tmp_path / "missing")))
    with pytest.raises(ValueError, match="goes with --authzen-listen"):
        door.configure(options(None, str(token)))
