"""`dockgate validate`, `simulate` and `import` given JSON nested past the depth bound: one line
naming the limit, never a traceback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dockgate_server.cli import main
from dockgate_server.policy.parse import MAX_JSON_DEPTH

NESTING = 100_000
DEEP = '{"Version": "2012-10-17", "Statement": ' + "[" * NESTING + "]" * NESTING + "}"


def _lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


def test_validate(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    policy = tmp_path / "deep.json"
    policy.write_text(DEEP, encoding="utf-8")
    code = main(["validate", str(policy)])
    captured = capsys.readouterr()
    assert code != 0
    (line,) = _lines(captured.out + captured.err)
    assert f"{MAX_JSON_DEPTH} levels" in line
    assert "Traceback" not in line


def test_simulate(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    corpus = tmp_path / "deep.jsonl"
    corpus.write_text('{"id": "deep", "identityPolicies": ' + DEEP + "}\n", encoding="utf-8")
    code = main(["simulate", str(corpus)])
    captured = capsys.readouterr()
    assert code != 0
    result, summary = _lines(captured.out)
    assert json.loads(result)["decision"] == "Error"
    assert f"{MAX_JSON_DEPTH} levels" in json.loads(result)["error"]
    assert summary == "0 passed, 1 failed"
    assert "Traceback" not in captured.err


def test_import(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bundle = tmp_path / "deep-bundle.json"
    bundle.write_text('{"accounts": ' + "[" * NESTING + "]" * NESTING + "}", encoding="utf-8")
    code = main(["import", str(bundle), "--store", str(tmp_path / "fleet.db")])
    captured = capsys.readouterr()
    assert code != 0
    (line,) = _lines(captured.err)
    assert line.startswith("dockgate: ")
    assert f"{MAX_JSON_DEPTH} levels" in line
    assert not (tmp_path / "fleet.db").exists() or "nothing stored" in line
