"""Every committed corpus passes through `dockgate simulate`, case by case."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dockgate_server.cli import main
from dockgate_server.policy.parse import load_json
from dockgate_server.simulate import run_case

CONFORMANCE = Path(__file__).parent / "conformance"
CORPORA = sorted(CONFORMANCE.glob("*.jsonl"))


def _cases() -> list[tuple[str, str]]:
    cases = []
    for corpus in CORPORA:
        for line in corpus.read_text(encoding="utf-8").splitlines():
            if line.strip():
                cases.append((f"{corpus.stem}:{json.loads(line)['id']}", line))
    return cases


def test_the_public_corpora_are_committed() -> None:
    names = {corpus.name for corpus in CORPORA}
    assert {"ecr-public.jsonl", "invalid-public.jsonl"} <= names


@pytest.mark.parametrize(("case_id", "line"), _cases(), ids=[c[0] for c in _cases()])
def test_case(case_id: str, line: str) -> None:
    result = run_case(load_json(line))
    assert result.ok, json.dumps(result.to_json(), indent=2)


@pytest.mark.parametrize("corpus", CORPORA, ids=[c.name for c in CORPORA])
def test_simulate_command_passes_every_corpus(
    corpus: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["simulate", str(corpus)])
    lines = capsys.readouterr().out.splitlines()
    cases = [json.loads(line) for line in lines[:-1]]
    assert code == 0
    assert lines[-1] == f"{len(cases)} passed, 0 failed"
    assert all(case["ok"] for case in cases)
