"""`dockgate import`, `export` and `check` against a local store."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from dockgate_server.cli import main
from dockgate_server.store import BUNDLE_FORMAT, bundle_to_fleet, fleet_to_bundle, open_store
from tests.server.store.fleet_bundles import (
    APP,
    MAIN,
    PARTNER,
    TOOLS,
    document,
    realistic_bundle,
    statement,
)

DOCKGATE = Path(sys.executable).with_name("dockgate")
TAGGER = f"arn:aws:iam::{MAIN}:user/tagger"
ALICE = f"arn:aws:iam::{MAIN}:user/alice"
PARTNER_CI = f"arn:aws:iam::{PARTNER}:role/partner-ci"


def _write(tmp_path: Path, bundle: object, name: str = "bundle.json") -> str:
    path = tmp_path / name
    path.write_text(json.dumps(bundle), encoding="utf-8")
    return str(path)


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def store(tmp_path: Path) -> str:
    return str(tmp_path / "store.sqlite3")


def _tagging_bundle() -> dict[str, Any]:
    """A user who may tag a repository when any of the tag keys is `team`."""
    may_tag = document(
        statement(
            "Allow",
            "ecr:TagResource",
            f"arn:aws:ecr:*:{MAIN}:repository/*",
            Condition={"ForAnyValue:StringEquals": {"aws:TagKeys": ["team"]}},
        )
    )
    return {
        "format": BUNDLE_FORMAT,
        "accounts": {
            MAIN: {
                "authorizationDetails": {
                    "UserDetailList": [
                        {
                            "UserName": "tagger",
                            "UserPolicyList": [{"PolicyName": "tag", "PolicyDocument": may_tag}],
                        }
                    ]
                },
                "repositories": [{"repositoryArn": APP}],
            }
        },
    }


# -- import --------------------------------------------------------------------------------------


def test_import_prints_the_revision_and_exits_0(
    tmp_path: Path, store: str, capsys: pytest.CaptureFixture[str]
) -> None:
    bundle = _write(tmp_path, realistic_bundle())
    code, out, err = _run(capsys, "import", bundle, "--store", store)
    assert (code, err) == (0, "")
    assert json.loads(out) == {
        "revision": 1,
        "accounts": 3,
        "users": 3,
        "roles": 3,
        "repositories": 4,
    }
    code, out, _ = _run(capsys, "import", bundle, "--store", store)
    assert code == 0
    assert json.loads(out)["revision"] == 2


def test_import_reads_standard_input(
    store: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO(json.dumps(realistic_bundle())))
    code, out, _ = _run(capsys, "import", "-", "--store", store)
    assert code == 0
    assert json.loads(out)["revision"] == 1


def test_import_uses_the_store_named_by_the_environment(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "from-env.sqlite3"
    monkeypatch.setenv("DOCKGATE_STORE", str(path))
    code, _, _ = _run(capsys, "import", _write(tmp_path, realistic_bundle()))
    assert code == 0
    with open_store(path) as opened:
        assert opened.revision == 1


def _spoiled_policy() -> dict[str, Any]:
    bundle = realistic_bundle()
    bundle["accounts"][PARTNER]["authorizationDetails"]["RoleDetailList"][0]["RolePolicyList"][0][
        "PolicyDocument"
    ] = document(statement("Allowed", "ecr:*"))
    return bundle


def _spoiled_shape() -> dict[str, Any]:
    bundle = realistic_bundle()
    bundle["accounts"][MAIN]["repositories"][0]["tags"] = {"env": "prod"}
    return bundle


@pytest.mark.parametrize(
    ("content", "fragments"),
    [
        (
            json.dumps(_spoiled_policy()),
            (PARTNER, "partner-ci", "pull-anything", "/Statement/0/Effect"),
        ),
        (json.dumps(_spoiled_shape()), (f"bundle at /accounts/{MAIN}/repositories/0/tags:",)),
        (json.dumps({"format": "dockgate-bundle/0"}), ("bundle at /format:",)),
        ("{not json", ("not JSON",)),
    ],
    ids=["invalid policy", "bad shape", "wrong format", "not JSON"],
)
def test_a_refused_import_exits_2_and_stores_nothing(
    tmp_path: Path,
    store: str,
    capsys: pytest.CaptureFixture[str],
    content: str,
    fragments: tuple[str, ...],
) -> None:
    earlier = {
        "format": BUNDLE_FORMAT,
        "accounts": {PARTNER: {"authorizationDetails": {"UserDetailList": [{"UserName": "kept"}]}}},
    }
    assert (
        _run(capsys, "import", _write(tmp_path, earlier, "earlier.json"), "--store", store)[0] == 0
    )
    with open_store(store) as opened:
        before = opened.load_fleet()
    bad = tmp_path / "bad.json"
    bad.write_text(content, encoding="utf-8")
    code, out, err = _run(capsys, "import", str(bad), "--store", store)
    assert (code, out) == (2, "")
    assert err.startswith("dockgate: import refused, nothing stored: ")
    for fragment in fragments:
        assert fragment in err
    with open_store(store) as opened:
        assert opened.revision == 1
        assert opened.load_fleet() == before


def test_import_replace_drops_what_the_bundle_omits_for_its_accounts(
    tmp_path: Path, store: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _run(capsys, "import", _write(tmp_path, realistic_bundle()), "--store", store)[0] == 0
    only_carol = {
        "format": BUNDLE_FORMAT,
        "accounts": {MAIN: {"authorizationDetails": {"UserDetailList": [{"UserName": "carol"}]}}},
    }
    bundle = _write(tmp_path, only_carol, "carol.json")
    assert _run(capsys, "import", bundle, "--store", store)[0] == 0
    with open_store(store) as opened:
        assert opened.load_user(MAIN, "alice") is not None
    code, out, _ = _run(capsys, "import", bundle, "--store", store, "--replace")
    assert code == 0
    assert json.loads(out)["revision"] == 3
    with open_store(store) as opened:
        assert [user.name for user in opened.load_fleet().users if user.account == MAIN] == [
            "carol"
        ]
        assert opened.load_repository(APP) is None
        assert opened.load_role(PARTNER, "partner-ci") is not None


def test_the_console_script_imports_and_refuses_with_exit_codes(tmp_path: Path, store: str) -> None:
    good = subprocess.run(
        [str(DOCKGATE), "import", _write(tmp_path, realistic_bundle()), "--store", store],
        capture_output=True,
        text=True,
        check=False,
    )
    assert good.returncode == 0, good.stderr
    assert json.loads(good.stdout)["revision"] == 1
    bad = subprocess.run(
        [
            str(DOCKGATE),
            "import",
            _write(tmp_path, _spoiled_policy(), "bad.json"),
            "--store",
            store,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert bad.returncode == 2
    assert bad.stdout == ""
    assert "import refused, nothing stored" in bad.stderr
    assert "/Statement/0/Effect" in bad.stderr


# -- export --------------------------------------------------------------------------------------


def test_export_prints_the_store_as_a_bundle_that_round_trips(
    tmp_path: Path, store: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _run(capsys, "import", _write(tmp_path, realistic_bundle()), "--store", store)[0] == 0
    code, printed, err = _run(capsys, "export", "--store", store)
    assert (code, err) == (0, "")
    exported = json.loads(printed)
    with open_store(store) as opened:
        assert exported == fleet_to_bundle(opened.load_fleet())
        fleet = opened.load_fleet()
    assert bundle_to_fleet(exported).users == fleet.users
    again = str(tmp_path / "again.sqlite3")
    exported_file = tmp_path / "exported.json"
    exported_file.write_text(printed, encoding="utf-8")
    assert _run(capsys, "import", str(exported_file), "--store", again)[0] == 0
    code, reprinted, _ = _run(capsys, "export", "--store", again)
    assert code == 0
    assert reprinted == printed


def test_export_of_an_empty_store_is_an_empty_bundle(
    store: str, capsys: pytest.CaptureFixture[str]
) -> None:
    open_store(store).close()
    code, printed, _ = _run(capsys, "export", "--store", store)
    assert code == 0
    assert json.loads(printed) == {"format": BUNDLE_FORMAT, "partition": "aws", "accounts": {}}


def test_export_keeps_the_partition_of_the_fleet(
    tmp_path: Path, store: str, capsys: pytest.CaptureFixture[str]
) -> None:
    china = {
        "format": BUNDLE_FORMAT,
        "partition": "aws-cn",
        "accounts": {MAIN: {"authorizationDetails": {"UserDetailList": [{"UserName": "li"}]}}},
    }
    assert _run(capsys, "import", _write(tmp_path, china), "--store", store)[0] == 0
    code, printed, _ = _run(capsys, "export", "--store", store)
    assert code == 0
    exported = tmp_path / "exported.json"
    exported.write_text(printed, encoding="utf-8")
    again = str(tmp_path / "again.sqlite3")
    assert _run(capsys, "import", str(exported), "--store", again)[0] == 0
    with open_store(again) as opened:
        user = opened.load_user(MAIN, "li")
        assert user is not None
        assert user.arn == f"arn:aws-cn:iam::{MAIN}:user/li"


# -- check ---------------------------------------------------------------------------------------


@pytest.fixture
def tagging(tmp_path: Path, store: str, capsys: pytest.CaptureFixture[str]) -> str:
    assert _run(capsys, "import", _write(tmp_path, _tagging_bundle()), "--store", store)[0] == 0
    return store


def _check(
    capsys: pytest.CaptureFixture[str], store: str, principal: str, *more: str
) -> dict[str, Any]:
    code, out, err = _run(
        capsys,
        "check",
        "--store",
        store,
        "--principal",
        principal,
        "--action",
        "ecr:TagResource",
        "--resource",
        APP,
        *more,
    )
    assert (code, err) == (0, "")
    answer: dict[str, Any] = json.loads(out)
    return answer


def test_check_prints_the_decision_and_the_revision_without_reasons(
    tagging: str, capsys: pytest.CaptureFixture[str]
) -> None:
    answer = _check(capsys, tagging, TAGGER, "--context", "aws:TagKeys=team")
    assert answer == {"decision": "Allowed", "revision": 1}


def test_check_explain_adds_the_reasons(tagging: str, capsys: pytest.CaptureFixture[str]) -> None:
    answer = _check(capsys, tagging, TAGGER, "--context", "aws:TagKeys=team", "--explain")
    assert answer["decision"] == "Allowed"
    assert answer["revision"] == 1
    assert answer["reasons"]
    assert answer["reasons"][0]["effect"] == "Allow"
    assert "tagger" in answer["reasons"][0]["policy"]


def test_check_answers_at_the_store_revision(
    tmp_path: Path, tagging: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _run(capsys, "import", _write(tmp_path, _tagging_bundle()), "--store", tagging)[0] == 0
    answer = _check(capsys, tagging, TAGGER, "--context", "aws:TagKeys=team")
    assert answer == {"decision": "Allowed", "revision": 2}


@pytest.mark.parametrize(
    ("values", "decision"),
    [
        (["env"], "ImplicitlyDenied"),
        (["team"], "Allowed"),
        (["env", "team"], "Allowed"),
        (["team", "env"], "Allowed"),
        (["env", "owner"], "ImplicitlyDenied"),
    ],
)
def test_repeating_a_context_key_gives_a_multivalued_key(
    tagging: str, capsys: pytest.CaptureFixture[str], values: list[str], decision: str
) -> None:
    context = [part for value in values for part in ("--context", f"aws:TagKeys={value}")]
    assert _check(capsys, tagging, TAGGER, *context)["decision"] == decision


def test_an_unknown_principal_is_implicitly_denied_with_a_reason_saying_so(
    tagging: str, capsys: pytest.CaptureFixture[str]
) -> None:
    ghost = f"arn:aws:iam::{MAIN}:user/ghost"
    assert _check(capsys, tagging, ghost)["decision"] == "ImplicitlyDenied"
    answer = _check(capsys, tagging, ghost, "--explain")
    assert answer["decision"] == "ImplicitlyDenied"
    assert any(
        "unknown" in reason["detail"] and ghost in reason["detail"] for reason in answer["reasons"]
    )


@pytest.mark.parametrize(
    "principal",
    [f"arn:aws:iam::{MAIN}", "arn:aws:iam:nope", "not-an-arn", f"arn:aws:iam::{MAIN}:user"],
)
def test_a_malformed_principal_exits_2(
    tagging: str, capsys: pytest.CaptureFixture[str], principal: str
) -> None:
    code, out, err = _run(
        capsys,
        "check",
        "--store",
        tagging,
        "--principal",
        principal,
        "--action",
        "ecr:TagResource",
        "--resource",
        APP,
    )
    assert (code, out) == (2, "")
    assert err.startswith("dockgate: ")
    assert principal in err


def test_a_context_value_without_equals_exits_2(
    tagging: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _run(
        capsys,
        "check",
        "--store",
        tagging,
        "--principal",
        TAGGER,
        "--action",
        "ecr:TagResource",
        "--resource",
        APP,
        "--context",
        "aws:TagKeys",
    )
    assert (code, out) == (2, "")
    assert "aws:TagKeys" in err


def test_check_on_the_realistic_fleet(
    tmp_path: Path, store: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _run(capsys, "import", _write(tmp_path, realistic_bundle()), "--store", store)[0] == 0
    in_org = ("--context", "aws:PrincipalOrgID=o-a1b2c3d4e5")

    def decide(principal: str, action: str, resource: str) -> str:
        code, out, _ = _run(
            capsys,
            "check",
            "--store",
            store,
            "--principal",
            principal,
            "--action",
            action,
            "--resource",
            resource,
            *in_org,
        )
        assert code == 0
        decision: str = json.loads(out)["decision"]
        return decision

    # inline policy (URL-encoded in the bundle) within the boundary
    assert decide(ALICE, "ecr:PutImage", APP) == "Allowed"
    assert decide(ALICE, "ecr:PutImage", TOOLS) == "ImplicitlyDenied"
    # the OU's SCP denies deletes whatever the identity policy says
    deploy = f"arn:aws:sts::{MAIN}:assumed-role/Deploy/session"
    assert decide(deploy, "ecr:DeleteRepository", TOOLS) == "ExplicitlyDenied"
    # cross account: the repository policy (a policyText string in the bundle) lets PARTNER pull
    assert decide(PARTNER_CI, "ecr:BatchGetImage", APP) == "Allowed"
    assert decide(PARTNER_CI, "ecr:BatchGetImage", TOOLS) == "ImplicitlyDenied"
    # bob's ARN carries his path
    assert decide(f"arn:aws:iam::{MAIN}:user/ci/bob", "ecr:BatchGetImage", TOOLS) == "Allowed"


def test_aws_principal_org_id_comes_from_the_stored_organization(
    tmp_path: Path, store: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _run(capsys, "import", _write(tmp_path, realistic_bundle()), "--store", store)[0] == 0
    code, out, _ = _run(
        capsys,
        "check",
        "--store",
        store,
        "--principal",
        ALICE,
        "--action",
        "ecr:PutImage",
        "--resource",
        APP,
        "--explain",
    )
    assert code == 0
    assert json.loads(out)["decision"] == "Allowed", out
