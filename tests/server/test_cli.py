"""`dockgate validate` and `dockgate simulate`: findings with pointers, results, exit codes."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

from dockgate_server.cli import main

OWNER = "111122223333"
USER = f"arn:aws:iam::{OWNER}:user/alice"
REPO = f"arn:aws:ecr:us-east-1:{OWNER}:repository/team-a/app"

INVALID = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Permit", "Action": "ecr:BatchGetImage", "Resource": "*"},
        {
            "Sid": "Two",
            "Effect": "Allow",
            "Action": "ecr:*",
            "Resource": "*",
            "Condition": {
                "StringEqualz": {"aws:username": "alice"},
                "stringequals": {"aws:username": "bob"},
            },
        },
    ],
}
WARNINGS_ONLY = {"Statement": {"Effect": "Allow", "Action": "ecr:*", "Resource": "*"}}


def write(tmp_path: Path, name: str, document: object) -> str:
    path = tmp_path / name
    path.write_text(json.dumps(document) if not isinstance(document, str) else document)
    return str(path)


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str]]:
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out.splitlines()


# -- validate ------------------------------------------------------------------------------------


def test_validate_lists_every_finding_with_its_pointer_and_fails(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, lines = run(["validate", write(tmp_path, "ci-push.json", INVALID)], capsys)

    assert code == 1
    assert lines[0].startswith("error: policy `ci-push.json` statement 0 at /Statement/0/Effect: ")
    assert "`Permit`" in lines[0]
    assert lines[1].startswith(
        "error: policy `ci-push.json` statement 1 at /Statement/1/Condition/StringEqualz: "
    )
    assert "`StringEqualz`" in lines[1]
    assert lines[2].startswith(
        "warning: policy `ci-push.json` statement 1 at /Statement/1/Condition/stringequals: "
    )
    assert lines[3:] == ["2 errors, 1 warning"]


def test_validate_with_warnings_only_succeeds(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, lines = run(["validate", write(tmp_path, "old.json", WARNINGS_ONLY)], capsys)

    assert code == 0
    assert len(lines) == 2
    assert lines[0].startswith("warning: policy `old.json`: ")
    assert "Version" in lines[0]
    assert lines[1] == "0 errors, 1 warning"


def test_validate_a_clean_policy(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    document = {**WARNINGS_ONLY, "Version": "2012-10-17"}
    code, lines = run(["validate", write(tmp_path, "clean.json", document)], capsys)

    assert code == 0
    assert lines == ["0 errors, 0 warnings"]


def test_validate_json_prints_one_object_per_finding(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, lines = run(["validate", "--json", write(tmp_path, "ci-push.json", INVALID)], capsys)

    assert code == 1
    findings = [json.loads(line) for line in lines]  # no summary line among them
    assert [(f["severity"], f["pointer"]) for f in findings] == [
        ("error", "/Statement/0/Effect"),
        ("error", "/Statement/1/Condition/StringEqualz"),
        ("warning", "/Statement/1/Condition/stringequals"),
    ]
    assert all(f["policy"] == "ci-push.json" for f in findings)
    assert all(set(f) == {"severity", "policy", "pointer", "message"} for f in findings)


def test_validate_json_with_warnings_only_succeeds(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, lines = run(["validate", "--json", write(tmp_path, "old.json", WARNINGS_ONLY)], capsys)

    assert code == 0
    assert [json.loads(line)["severity"] for line in lines] == ["warning"]


@pytest.mark.parametrize("text", ['{"Statement": [', "", "{'Version': 1}", "[1, 2"])
def test_validate_rejects_invalid_json(
    text: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, lines = run(["validate", write(tmp_path, "broken.json", text)], capsys)

    assert code == 1
    assert len(lines) == 1
    assert lines[0].startswith("error: policy `broken.json`: invalid JSON: ")


def test_validate_reports_duplicate_keys_with_their_pointer(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = '{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Effect": "Deny", '
    text += '"Action": "ecr:*", "Resource": "*"}]}'
    code, lines = run(["validate", write(tmp_path, "dup.json", text)], capsys)

    assert code == 1
    assert any("at /Statement/0/Effect" in line and "duplicate" in line for line in lines)


def test_validate_judges_the_policy_by_its_kind(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repository = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "Pull from CI",  # ECR accepts spaces in a repository policy's Sid
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{OWNER}:role/ci"},
                "Action": "ecr:BatchGetImage",
            }
        ],
    }
    path = write(tmp_path, "repo.json", repository)

    code, lines = run(["validate", "--kind", "repository", path], capsys)
    assert code == 0
    assert lines == ["0 errors, 0 warnings"]

    code, lines = run(["validate", "--kind", "identity", path], capsys)
    assert code == 1
    pointers = [line.split(" at ")[1].split(":")[0] for line in lines[:-1]]
    assert "/Statement/0/Sid" in pointers
    assert "/Statement/0/Principal" in pointers
    assert "/Statement/0" in pointers  # missing Resource


def test_validate_reads_standard_input(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(json.dumps(INVALID)))

    code, lines = run(["validate", "-"], capsys)

    assert code == 1
    assert lines[0].startswith("error: policy `-` statement 0 at /Statement/0/Effect: ")
    assert lines[-1] == "2 errors, 1 warning"


def test_validate_refuses_an_unknown_kind(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["validate", "--kind", "bucket", write(tmp_path, "p.json", WARNINGS_ONLY)])

    assert exit_.value.code == 2
    assert "--kind" in capsys.readouterr().err


# -- simulate from standard input ---------------------------------------------------------------


def case(case_id: str, expect: str | None, **fields: Any) -> str:
    body: dict[str, Any] = {
        "id": case_id,
        "request": {"principal": USER, "action": "ecr:BatchGetImage", "resource": REPO},
        "identityPolicies": [
            {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": "ecr:*", "Resource": "*"}],
            }
        ],
        **fields,
    }
    if expect is not None:
        body["expect"] = expect
    return json.dumps(body)


def simulate(
    lines: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> tuple[int, list[dict[str, Any]], str]:
    monkeypatch.setattr("sys.stdin", io.StringIO("\n".join(lines) + "\n"))
    code, out = run(["simulate", "-"], capsys)
    return code, [json.loads(line) for line in out[:-1]], out[-1]


def test_simulate_reads_standard_input_and_passes(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = [case("allowed", "Allowed"), "", "   ", case("question", None)]

    code, results, summary = simulate(lines, monkeypatch, capsys)

    assert code == 0
    assert summary == "2 passed, 0 failed"
    assert [r["id"] for r in results] == ["allowed", "question"]
    assert all(r["ok"] and r["decision"] == "Allowed" for r in results)
    assert results[0]["matched"][0]["phase"] == "IdentityPolicy"
    assert results[1]["expect"] is None


def test_simulate_fails_when_a_case_decides_otherwise(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = [case("allowed", "Allowed"), case("wrong", "ExplicitlyDenied")]

    code, results, summary = simulate(lines, monkeypatch, capsys)

    assert code == 1
    assert summary == "1 passed, 1 failed"
    assert results[1] == {**results[1], "id": "wrong", "decision": "Allowed", "ok": False}


@pytest.mark.parametrize(
    "line",
    [
        "{not json",
        case("bad-policy", "Allowed", sessionPolicy={"Statement": [{"Effect": "Maybe"}]}),
        case("bad-request", None, request={"principal": "alice", "action": "x", "resource": "*"}),
        case("unknown-field", "Allowed", extra=1),
    ],
)
def test_simulate_fails_when_a_case_is_an_error(
    line: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, results, summary = simulate([case("fine", "Allowed"), line], monkeypatch, capsys)

    assert code == 1
    assert summary == "1 passed, 1 failed"
    assert results[1]["decision"] == "Error"
    assert results[1]["ok"] is False
    assert results[1]["error"]


def test_simulate_passes_a_case_that_expects_an_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    line = case("rejected", "Error", sessionPolicy={"Statement": [{"Effect": "Maybe"}]})

    code, results, summary = simulate([line], monkeypatch, capsys)

    assert code == 0
    assert summary == "1 passed, 0 failed"
    assert "/Statement/0" in results[0]["error"]


def test_simulate_counts_every_case(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = [case(f"c{i}", "Allowed" if i % 3 else "ImplicitlyDenied") for i in range(7)]

    code, results, summary = simulate(lines, monkeypatch, capsys)

    assert code == 1
    assert len(results) == 7
    assert summary == "4 passed, 3 failed"


def test_simulate_of_nothing_passes(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(""))

    code, lines = run(["simulate", "-"], capsys)

    assert code == 0
    assert lines == ["0 passed, 0 failed"]
