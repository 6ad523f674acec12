"""`dockgate who-can`, `what-can`, `preview` against a store: JSON lines, exit codes, refusals."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from dockgate_server.cli import main
from dockgate_server.store.port import open_store
from tests.server.analysis.sample import (
    ALICE,
    APP,
    BASE,
    BOB,
    LOCKED,
    ROOT_A,
    allow,
    document,
    sample_fleet,
)
from tests.server.service.conftest import RunningServer, start_server


@pytest.fixture
def store(tmp_path: Path) -> str:
    path = tmp_path / "store.sqlite3"
    with open_store(path) as opened:
        opened.import_fleet(sample_fleet())
    return str(path)


def run(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> tuple[int, list[dict[str, object]], str]:
    code = main(argv)
    captured = capsys.readouterr()
    return code, [json.loads(line) for line in captured.out.splitlines()], captured.err


def write(tmp_path: Path, name: str, content: object) -> str:
    path = tmp_path / name
    path.write_text(json.dumps(content))
    return str(path)


def test_who_can_prints_one_json_line_per_principal(
    store: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, lines, err = run(
        ["who-can", "--store", store, "--action", "ecr:PutImage", "--repository", "team-a/app"],
        capsys,
    )
    assert (code, err) == (0, "")
    assert [(line["principal"], line["access"]) for line in lines] == [
        (ROOT_A, "Allowed"),
        (ALICE, "Allowed"),
        (BOB, "Conditional"),
    ]
    assert all(line["repository"] == APP and line["revision"] == 1 for line in lines)


def test_who_can_include_denied_shows_the_denying_statement(
    store: str, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["who-can", "--store", store, "--action", "ecr:PutImage", "--repository", LOCKED]
    code, lines, _ = run([*argv, "--include-denied"], capsys)
    assert code == 0
    alice = next(line for line in lines if line["principal"] == ALICE)
    assert alice["access"] == "ExplicitlyDenied"
    assert alice["reasons"][0]["sid"] == "Locked"  # type: ignore[index]


def test_what_can_on_one_repository(store: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, lines, _ = run(
        ["what-can", "--store", store, "--principal", BOB, "--repository", APP], capsys
    )
    assert code == 0
    assert [(line["action"], line["access"]) for line in lines] == [("ecr:PutImage", "Conditional")]
    assert lines[0]["conditions"][0]["sid"] == "Office"  # type: ignore[index]


def test_preview_fails_on_new_access_only_when_asked(
    store: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    policy = write(
        tmp_path,
        "open.json",
        document({"Effect": "Allow", "Principal": "*", "Action": "ecr:BatchGetImage"}),
    )
    argv = ["preview", "--store", store, "--policy", policy, "--kind", "repository"]
    argv += ["--attach-to", "team-a/locked"]
    code, lines, _ = run(argv, capsys)
    assert code == 0
    assert any(line["principal"] == BOB and line["newAccess"] for line in lines)
    code, again, _ = run([*argv, "--fail-on-new-access"], capsys)
    assert (code, again) == (1, lines)


def test_preview_of_a_change_that_only_takes_access_away_passes(
    store: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    deny = write(
        tmp_path, "deny.json", document({"Effect": "Deny", "Action": "ecr:*", "Resource": "*"})
    )
    argv = ["preview", "--store", store, "--policy", deny, "--kind", "scp"]
    code, lines, _ = run([*argv, "--attach-to", "ou-unit", "--fail-on-new-access"], capsys)
    assert code == 0
    assert lines and not any(line["newAccess"] for line in lines)


PUSH_APP = document(allow("ecr:PutImage", APP))


def test_preview_of_a_bundle(
    store: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bundle = {
        "format": "dockgate-bundle/1",
        "accounts": {
            "111122223333": {
                "authorizationDetails": {
                    "UserDetailList": [
                        {
                            "UserName": "dave",
                            "Path": "/",
                            "UserPolicyList": [
                                {
                                    "PolicyName": "push",
                                    "PolicyDocument": document(allow("ecr:PutImage", APP)),
                                }
                            ],
                        }
                    ]
                }
            }
        },
    }
    code, lines, _ = run(
        ["preview", "--store", store, "--bundle", write(tmp_path, "b.json", bundle)], capsys
    )
    assert code == 0
    # the new user can also pull what a grant to `*` opens to its account
    dave = "arn:aws:iam::111122223333:user/dave"
    assert [(line["principal"], line["repository"], line["action"]) for line in lines] == [
        (dave, BASE, "ecr:BatchGetImage"),
        (dave, APP, "ecr:PutImage"),
    ]
    assert all(line["newAccess"] for line in lines)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["who-can", "--action", "ecr:PutImage", "--repository", "app"],
            "dockgate: --repository `app`: no repository of the store has this name\n",
        ),
        (
            ["who-can", "--action", "PutImage", "--repository", APP],
            "dockgate: invalid request: action `PutImage` must be `service:Action` (letters and "
            "digits)\n",
        ),
        (
            ["what-can", "--principal", "nobody"],
            "dockgate: invalid request: principal `nobody` is neither an ARN nor a service "
            "principal name\n",
        ),
        (
            ["preview", "--policy", "p.json"],
            "dockgate: --policy needs --kind and --attach-to\n",
        ),
        (
            ["preview", "--policy", "missing.json", "--kind", "identity", "--attach-to", ALICE],
            "dockgate: --policy `missing.json`: cannot read: No such file or directory\n",
        ),
    ],
)
def test_mistakes_are_one_line_and_exit_2(
    store: str, argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, lines, err = run([*argv, "--store", store], capsys)
    assert (code, lines, err) == (2, [], message)


def test_an_invalid_policy_names_the_file(
    store: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = write(
        tmp_path, "bad.json", {"Statement": [{"Effect": "Permit", "Action": "*", "Resource": "*"}]}
    )
    argv = [
        "preview",
        "--store",
        store,
        "--policy",
        bad,
        "--kind",
        "identity",
        "--attach-to",
        ALICE,
    ]
    code, _, err = run(argv, capsys)
    assert code == 2
    assert err.startswith(f"dockgate: --policy `{bad}`: ")
    assert "\n" not in err.rstrip("\n")


def test_a_missing_store_is_refused_and_not_created(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "nothing.sqlite3"
    argv = ["who-can", "--store", str(missing), "--action", "ecr:PutImage", "--repository", APP]
    code, lines, err = run(argv, capsys)
    assert (code, lines) == (2, [])
    assert err.startswith(f"dockgate: store `{missing}` does not exist")
    assert not missing.exists()
    assert list(tmp_path.iterdir()) == []


# -- the same questions of a running server (`--server`) ----------------------------------------

EXAMPLES = Path(__file__).parents[2] / "examples" / "bundle.json"
PUSHER = "arn:aws:iam::111122223333:user/ci/pusher"
PARTNER_CI = "arn:aws:iam::444455556666:role/partner-ci"
READER = "arn:aws:iam::111122223333:user/reader"
TEAM_B = "arn:aws:ecr:us-east-1:111122223333:repository/team-b/*"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """A server on the sample fleet (examples/bundle.json); its store is read by `--store` too."""
    running = start_server(tmp_path_factory.mktemp("analysis"))
    try:
        yield running
    finally:
        running.stop()


def both(
    argv: list[str], served: RunningServer, capsys: pytest.CaptureFixture[str]
) -> tuple[tuple[int, str, str], tuple[int, str, str]]:
    """(exit code, standard output, standard error) with `--store`, then with `--server`."""
    answers = []
    store = str(served.data_dir / "store.sqlite3")
    for where in (["--store", store], ["--server", served.decision]):
        code = main([*argv, *where])
        captured = capsys.readouterr()
        answers.append((code, captured.out, captured.err))
    return answers[0], answers[1]


@pytest.mark.parametrize(
    "argv",
    [
        ["who-can", "--action", "ecr:PutImage", "--repository", "team-a/app"],
        ["who-can", "--action", "ecr:BatchGetImage", "--repository", "team-a/app"],
        ["who-can", "--action", "ecr:GetAuthorizationToken", "--repository", "*"],
        ["who-can", "--action", "ecr:PutImage", "--repository", "team-a/app", "--include-denied"],
        ["what-can", "--principal", PARTNER_CI],
        ["what-can", "--principal", PUSHER, "--repository", "team-a/app", "--include-denied"],
        ["what-can", "--principal", READER],
    ],
)
def test_a_server_prints_the_lines_the_store_does(
    argv: list[str], served: RunningServer, capsys: pytest.CaptureFixture[str]
) -> None:
    local, remote = both(argv, served, capsys)
    assert local[0] == 0 and local[1] and local[2] == ""
    assert remote == local


def test_a_preview_of_a_server_prints_the_lines_the_store_does(
    served: RunningServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    office = {"IpAddress": {"aws:SourceIp": "203.0.113.0/24"}}
    policy = write(tmp_path, "push.json", document(allow("ecr:PutImage", TEAM_B, Condition=office)))
    argv = ["preview", "--policy", policy, "--kind", "identity", "--attach-to", PUSHER]
    local, remote = both([*argv, "--fail-on-new-access"], served, capsys)
    assert local[0] == 1 and '"newAccess": true' in local[1]
    assert remote == local
    bundle = json.loads(EXAMPLES.read_text())
    app = bundle["accounts"]["111122223333"]["repositories"][0]
    del app["policyText"]  # the partner's pull grant goes: access taken away, none new
    local, remote = both(["preview", "--bundle", write(tmp_path, "b.json", bundle)], served, capsys)
    assert local[0] == 0 and '"before": "Allowed"' in local[1]
    assert remote == local


@pytest.mark.parametrize(
    "argv",
    [
        ["who-can", "--action", "ecr:PutImage", "--repository", "no/such"],
        ["who-can", "--action", "PutImage", "--repository", "team-a/app"],
        ["what-can", "--principal", "nobody"],
        ["what-can", "--principal", READER, "--repository", "*"],
        ["preview", "--policy", "POLICY", "--kind", "repository", "--attach-to", "no/such"],
        ["preview", "--policy", "POLICY", "--kind", "identity", "--attach-to", READER + "x"],
        ["preview", "--policy", "BAD", "--kind", "identity", "--attach-to", READER],
    ],
)
def test_a_server_refuses_as_the_store_does(
    argv: list[str], served: RunningServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    files = {
        "POLICY": write(tmp_path, "p.json", document(allow("ecr:*"))),
        "BAD": write(tmp_path, "bad.json", {"Statement": [{"Effect": "Permit"}]}),
    }
    local, remote = both([files.get(a, a) for a in argv], served, capsys)
    assert local[0] == 2 and local[1] == "" and local[2].startswith("dockgate: ")
    assert local[2].count("\n") == 1
    assert remote == local


def test_an_unreachable_server_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["who-can", "--server", "127.0.0.1:1", "--action", "ecr:PutImage", "--repository", APP]
    code, lines, err = run(argv, capsys)
    assert (code, lines) == (2, [])
    assert err.startswith("dockgate: UNAVAILABLE: ") and err.count("\n") == 1
