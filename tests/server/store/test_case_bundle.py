"""`check` on a case's imported bundle decides exactly as `simulate` decides the case itself."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dockgate_server.cli import main
from dockgate_server.engine.request import is_store_key
from dockgate_server.policy.parse import load_json
from dockgate_server.simulate import ERROR, run_case
from dockgate_server.store.case_bundle import case_to_bundle

CONFORMANCE = Path(__file__).parents[2] / "conformance"


def _decidable_cases() -> list[tuple[str, dict[str, object]]]:
    cases = []
    for corpus in sorted(CONFORMANCE.glob("*.jsonl")):
        for line in corpus.read_text(encoding="utf-8").splitlines():
            if line.strip():
                case = load_json(line)
                if case.get("expect") != ERROR:
                    cases.append((f"{corpus.stem}:{case['id']}", case))
    return cases


CASES = _decidable_cases()


def supplies_store_keys(case: dict[str, object]) -> bool:
    """Whether the case's own context gives a key that a store defines and a request against the
    store therefore ignores (`aws:PrincipalOrgID`, `aws:TokenIssueTime`, ...)."""
    request = case["request"]
    assert isinstance(request, dict)
    return any(is_store_key(key.lower()) for key in request.get("context") or {})


def test_few_cases_supply_store_keys() -> None:
    assert 0 < sum(supplies_store_keys(case) for _, case in CASES) <= 10


def test_every_corpus_contributes_cases() -> None:
    assert len(CASES) >= 80


@pytest.mark.parametrize(("case_id", "case"), CASES, ids=[c[0] for c in CASES])
def test_check_on_the_bundle_agrees_with_simulate(
    case_id: str, case: dict[str, object], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    if supplies_store_keys(case):
        pytest.skip("the case supplies a key the store defines: only `simulate` takes it as given")
    simulated = run_case(case)
    converted = case_to_bundle(case)
    bundle = tmp_path / "bundle.json"
    bundle.write_text(json.dumps(converted.bundle))
    store = str(tmp_path / "store.sqlite3")
    assert main(["import", str(bundle), "--store", store]) == 0
    arguments = [
        "check",
        "--store",
        store,
        "--principal",
        converted.principal,
        "--action",
        converted.action,
        "--resource",
        converted.resource,
        "--context-json",
        json.dumps(converted.context),
    ]
    if converted.session_policy is not None:
        session = tmp_path / "session.json"
        session.write_text(json.dumps(converted.session_policy))
        arguments += ["--session-policy", str(session)]
    capsys.readouterr()
    for scan in ([], ["--scan"]):
        assert main(arguments + scan) == 0
        checked = json.loads(capsys.readouterr().out)
        assert checked["decision"] == simulated.decision, (case_id, scan, converted.bundle)
