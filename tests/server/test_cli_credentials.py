"""The credential commands' output: one JSON line per result, ISO 8601 times, the token ID."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from dockgate import AdminClient, UnauthenticatedError
from dockgate_server.cli import main
from tests.server.service.conftest import TOKEN, RunningServer, start_server

PUSHER = "arn:aws:iam::111122223333:user/ci/pusher"
DEPLOY = "arn:aws:iam::111122223333:role/deploy"
ISO_8601 = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """A server seeded with the sample fleet (the README's pusher and deploy role)."""
    running = start_server(tmp_path_factory.mktemp("dockgate"))
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(autouse=True)
def admin_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKGATE_ADMIN_TOKEN", TOKEN)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, list[str], str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out.splitlines(), err


def assume(sample: RunningServer, capsys: pytest.CaptureFixture[str], name: str) -> str:
    code, lines, err = run(
        capsys,
        "assume-role",
        "--server",
        sample.admin,
        "--caller",
        PUSHER,
        "--role-arn",
        DEPLOY,
        "--session-name",
        name,
        "--duration",
        "900",
        "--tag",
        "team=a",
    )
    assert code == 0, err
    assert len(lines) == 1
    session = json.loads(lines[0])
    assert ISO_8601.fullmatch(session["issuedAt"]), session
    assert ISO_8601.fullmatch(session["expiresAt"]), session
    assert session["expiresAt"] > session["issuedAt"]
    arn: str = session["arn"]
    return arn


def test_a_session_is_one_json_line_with_iso_times(
    sample: RunningServer, capsys: pytest.CaptureFixture[str]
) -> None:
    assert assume(sample, capsys, "one-line").endswith("/deploy/one-line")


def test_list_sessions_prints_one_json_line_per_session(
    sample: RunningServer, capsys: pytest.CaptureFixture[str]
) -> None:
    arns = {assume(sample, capsys, "listed-1"), assume(sample, capsys, "listed-2")}
    code, lines, err = run(capsys, "list-sessions", "--server", sample.admin)
    assert code == 0, err
    sessions = [json.loads(line) for line in lines]
    assert arns <= {s["arn"] for s in sessions}
    for session in sessions:
        assert ISO_8601.fullmatch(session["issuedAt"]), session
        assert ISO_8601.fullmatch(session["expiresAt"]), session


def test_get_login_password_prints_the_bare_password_by_default(
    sample: RunningServer, capsys: pytest.CaptureFixture[str]
) -> None:
    code, lines, err = run(
        capsys, "get-login-password", "--server", sample.admin, "--principal", PUSHER
    )
    assert code == 0, err
    assert len(lines) == 1 and lines[0].startswith("dg1.")
    with AdminClient(sample.admin, TOKEN) as admin:
        assert admin.verify_login_password(lines[0]) == PUSHER


def test_get_login_password_json_shows_the_token_id_that_revoke_login_token_takes(
    sample: RunningServer, capsys: pytest.CaptureFixture[str]
) -> None:
    code, lines, err = run(
        capsys, "get-login-password", "--json", "--server", sample.admin, "--principal", PUSHER
    )
    assert code == 0, err
    assert len(lines) == 1
    login = json.loads(lines[0])
    assert set(login) == {"password", "tokenId", "principal", "expiresAt"}
    assert login["principal"] == PUSHER
    assert ISO_8601.fullmatch(login["expiresAt"])
    with AdminClient(sample.admin, TOKEN) as admin:
        assert admin.verify_login_password(login["password"]) == PUSHER
        code, lines, err = run(
            capsys, "revoke-login-token", login["tokenId"], "--server", sample.admin
        )
        assert code == 0, err
        assert json.loads(lines[0])["revision"] >= 1
        with pytest.raises(UnauthenticatedError):
            admin.verify_login_password(login["password"])


def test_rotate_login_key_is_one_json_line(
    sample: RunningServer, capsys: pytest.CaptureFixture[str]
) -> None:
    code, lines, err = run(capsys, "rotate-login-key", "--server", sample.admin)
    assert code == 0, err
    assert len(lines) == 1
    assert set(json.loads(lines[0])) == {"keyId", "revision"}


@pytest.mark.parametrize("blank", ["", "  "])
def test_a_blank_admin_token_variable_is_refused(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, blank: str
) -> None:
    monkeypatch.setenv("DOCKGATE_ADMIN_TOKEN", blank)
    code, lines, err = run(capsys, "rotate-login-key", "--server", "127.0.0.1:1")
    assert code == 2
    assert lines == []
    assert err == "dockgate: $DOCKGATE_ADMIN_TOKEN is set but empty: set it to the server's token\n"


def test_an_empty_admin_token_file_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DOCKGATE_ADMIN_TOKEN")
    (tmp_path / "admin-token").write_text("\n")
    code, _, err = run(
        capsys, "rotate-login-key", "--server", "127.0.0.1:1", "--data-dir", str(tmp_path)
    )
    assert code == 2
    assert err.startswith("dockgate: --data-dir: the admin token file `")
    assert err.endswith("` is empty\n")


def test_an_unreadable_policy_file_names_the_option(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "policy.json"
    code, _, err = run(
        capsys,
        "assume-role",
        "--server",
        "127.0.0.1:1",
        "--caller",
        PUSHER,
        "--role-arn",
        DEPLOY,
        "--session-name",
        "s",
        "--policy",
        str(missing),
    )
    assert code == 2
    assert err == f"dockgate: --policy `{missing}`: cannot read: No such file or directory\n"
