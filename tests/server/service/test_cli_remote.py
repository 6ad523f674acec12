"""`check`, `simulate`, `import` and `export` with `--server`: the same answers, remotely."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dockgate_server.cli import main
from tests.server.service.conftest import RunningServer

ROOT = Path(__file__).parents[3]
READER = "arn:aws:iam::111122223333:user/reader"
REPOSITORY = "arn:aws:ecr:us-east-1:111122223333:repository/team-a/app"


def test_check_against_a_server(
    shared_server: RunningServer, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        [
            "check",
            "--server",
            shared_server.decision,
            "--principal",
            READER,
            "--action",
            "ecr:BatchGetImage",
            "--resource",
            REPOSITORY,
            "--context",
            "aws:SourceIp=203.0.113.7",
            "--explain",
        ]
    )
    answer = json.loads(capsys.readouterr().out)
    assert code == 0
    assert answer["decision"] == "Allowed"
    assert answer["revision"] >= 1
    assert any(reason.get("sid") == "Read" for reason in answer["reasons"])


def test_a_malformed_request_exits_2(
    shared_server: RunningServer, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        [
            "check",
            "--server",
            shared_server.decision,
            "--principal",
            "nobody",
            "--action",
            "ecr:BatchGetImage",
            "--resource",
            "*",
        ]
    )
    assert code == 2
    assert "INVALID_ARGUMENT" in capsys.readouterr().err


def test_simulate_against_a_server(
    shared_server: RunningServer, capsys: pytest.CaptureFixture[str]
) -> None:
    corpus = ROOT / "tests" / "conformance" / "invalid-public.jsonl"
    code = main(["simulate", "--server", shared_server.decision, str(corpus)])
    lines = capsys.readouterr().out.splitlines()
    assert code == 0
    assert lines[-1] == f"{len(lines) - 1} passed, 0 failed"
    assert all(json.loads(line)["decision"] == "Error" for line in lines[:-1])


def test_import_and_export_need_the_token(
    shared_server: RunningServer,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    bundle = ROOT / "examples" / "bundle.json"
    monkeypatch.delenv("DOCKGATE_ADMIN_TOKEN", raising=False)
    assert main(["import", "--server", shared_server.admin, str(bundle)]) == 2
    assert "DOCKGATE_ADMIN_TOKEN" in capsys.readouterr().err
    monkeypatch.setenv("DOCKGATE_ADMIN_TOKEN", "wrong")
    assert main(["export", "--server", shared_server.admin]) == 2
    assert "UNAUTHENTICATED" in capsys.readouterr().err
    monkeypatch.setenv("DOCKGATE_ADMIN_TOKEN", shared_server.token)
    assert main(["import", "--server", shared_server.admin, str(bundle)]) == 0
    revision = json.loads(capsys.readouterr().out)["revision"]
    assert main(["export", "--server", shared_server.admin]) == 0
    exported = json.loads(capsys.readouterr().out)
    assert revision >= 2
    users = exported["accounts"]["111122223333"]["authorizationDetails"]["UserDetailList"]
    assert {user["UserName"] for user in users} >= {"reader", "pusher"}
