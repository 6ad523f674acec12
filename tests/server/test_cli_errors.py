"""A user's mistake is one `dockgate: ...` line naming the option or file, exit 2, no traceback,
and nothing created: bad `HOST:PORT` options, missing files and stores, unusable data folders."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from dockgate_server.cli import _build_parser, main
from tests.server.service.conftest import start_server

PRINCIPAL = "arn:aws:iam::111122223333:user/alice"
CHECK = ["--principal", PRINCIPAL, "--action", "ecr:BatchGetImage", "--resource", "*"]


@pytest.fixture(autouse=True)
def private_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Default paths (the data folder, the store) point into the test's folder, and the store
    and admin token come from no variable."""
    home = tmp_path / "home"
    monkeypatch.setenv("XDG_DATA_HOME", str(home / "share"))
    monkeypatch.delenv("DOCKGATE_STORE", raising=False)
    monkeypatch.delenv("DOCKGATE_ADMIN_TOKEN", raising=False)
    yield home
    assert not home.exists(), "a command created its default data folder"


def one_error_line(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    code = main(argv)
    out, err = capsys.readouterr()
    assert code == 2, (out, err)
    assert out == ""
    assert err.startswith("dockgate: ") and err.endswith("\n") and err.count("\n") == 1, err
    assert "Traceback" not in err
    return err.removeprefix("dockgate: ").rstrip("\n")


def dockgate(*argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dockgate_server.cli", *argv],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
        check=False,
    )


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# -- HOST:PORT options --------------------------------------------------------------------------

BAD_ADDRESSES = ["localhost", "127.0.0.1:abc", ":99999", "localhost:70000", "http://localhost:1"]


def _client_commands(tmp_path: Path, address: str) -> list[tuple[list[str], str]]:
    cases = tmp_path / "cases.jsonl"
    cases.write_text("")
    bundle = tmp_path / "bundle.json"
    bundle.write_text('{"format": "dockgate-bundle/1", "accounts": {}}')
    return [
        (["check", "--server", address, *CHECK], "--server"),
        (["simulate", str(cases), "--server", address], "--server"),
        (["import", str(bundle), "--server", address], "--server"),
        (["export", "--server", address], "--server"),
        (["get-login-password", "--principal", PRINCIPAL, "--server", address], "--server"),
        (["list-sessions", "--server", address], "--server"),
        (["rotate-login-key", "--server", address], "--server"),
        (["bench", "--server", address], "--server"),
        (["bench", "--server", "127.0.0.1:1", "--admin", address], "--admin"),
    ]


@pytest.mark.parametrize("address", BAD_ADDRESSES)
def test_a_bad_server_address_is_refused_naming_the_option(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], address: str
) -> None:
    for argv, option in _client_commands(tmp_path, address):
        message = one_error_line(capsys, argv)
        assert message.startswith(f"{option} `{address}`: "), (argv, message)


def test_port_0_is_refused_for_a_server_to_connect_to(capsys: pytest.CaptureFixture[str]) -> None:
    message = one_error_line(capsys, ["check", "--server", "127.0.0.1:0", *CHECK])
    assert message == "--server `127.0.0.1:0`: the port must be 1 to 65535"


@pytest.mark.parametrize(
    "option", ["--listen", "--admin-listen", "--metrics-listen", "--http-auth-listen"]
)
@pytest.mark.parametrize("address", BAD_ADDRESSES)
def test_a_bad_listen_address_is_refused_before_anything_is_created(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], option: str, address: str
) -> None:
    data = tmp_path / "data"
    message = one_error_line(capsys, ["serve", "--data-dir", str(data), "--envoy", option, address])
    assert message.startswith(f"{option} `{address}`: ")
    assert not data.exists()


def test_bad_registry_options_are_refused_before_anything_is_created(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data"
    message = one_error_line(
        capsys, ["serve", "--data-dir", str(data), "--envoy", "--trusted-proxy", "not-a-network"]
    )
    assert "not-a-network" in message
    assert not data.exists()


# -- read-only commands and the store -----------------------------------------------------------


@pytest.mark.parametrize("argv", [["check", *CHECK], ["export"]], ids=["check", "export"])
@pytest.mark.parametrize("given", ["--store", "DOCKGATE_STORE", "default"])
def test_a_read_only_command_never_creates_a_store(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    argv: list[str],
    given: str,
) -> None:
    store = tmp_path / "home" / "share" / "dockgate" / "store.sqlite3"  # the default one
    if given == "--store":
        store = tmp_path / "typo" / "store.sqlite3"
        argv = [*argv, "--store", str(store)]
    elif given == "DOCKGATE_STORE":
        store = tmp_path / "elsewhere" / "store.sqlite3"
        monkeypatch.setenv("DOCKGATE_STORE", str(store))
    message = one_error_line(capsys, argv)
    assert message == (
        f"store `{store}` does not exist (create one with "
        f"`dockgate import BUNDLE --store {store}` or `dockgate serve`)"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_simulate_reads_no_store_and_creates_none(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCKGATE_STORE", str(tmp_path / "store" / "store.sqlite3"))
    cases = tmp_path / "cases.jsonl"
    cases.write_text(
        json.dumps(
            {
                "id": "no-policy",
                "request": {"principal": PRINCIPAL, "action": "ecr:BatchGetImage", "resource": "*"},
                "expect": "ImplicitlyDenied",
            }
        )
        + "\n"
    )
    assert main(["simulate", str(cases)]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "1 passed, 0 failed"
    assert [p.name for p in tmp_path.iterdir()] == ["cases.jsonl"]


def test_a_store_that_is_not_a_store_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    junk = tmp_path / "junk.sqlite3"
    junk.write_bytes(b"not a database at all, but long enough for SQLite to look" * 30)
    message = one_error_line(capsys, ["export", "--store", str(junk)])
    assert message == f"store `{junk}`: cannot open: file is not a database"


def test_import_into_a_store_below_a_file_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "file").write_text("")
    bundle = tmp_path / "bundle.json"
    bundle.write_text('{"format": "dockgate-bundle/1", "accounts": {}}')
    store = tmp_path / "file" / "store.sqlite3"
    message = one_error_line(capsys, ["import", str(bundle), "--store", str(store)])
    assert message.startswith(f"import refused, nothing stored: store `{store}`: cannot open: ")


# -- input files --------------------------------------------------------------------------------


def test_a_missing_input_file_is_one_line_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "missing.json"
    store = tmp_path / "store.sqlite3"
    for argv, what in [
        (["validate", str(missing)], "FILE"),
        (["simulate", str(missing)], "FILE"),
        (["import", str(missing), "--store", str(store)], "BUNDLE"),
        (["check", *CHECK, "--session-policy", str(missing)], "--session-policy"),
        (["check", *CHECK, "--session-policy", str(tmp_path)], "--session-policy"),
    ]:
        message = one_error_line(capsys, argv)
        assert message.startswith(f"{what} `{argv[-1] if what != 'BUNDLE' else missing}`: "), (
            message
        )
        assert ": cannot read: " in message
    assert not store.exists()


def test_a_bundle_without_format_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bundle = tmp_path / "bundle.json"
    bundle.write_text('{"accounts": {}}')
    message = one_error_line(capsys, ["import", str(bundle), "--store", str(tmp_path / "s")])
    assert message == (
        "import refused, nothing stored: bundle at /: missing `format` "
        "(expected `dockgate-bundle/1`)"
    )


def test_context_json_that_is_not_json_names_the_option(
    capsys: pytest.CaptureFixture[str],
) -> None:
    message = one_error_line(capsys, ["check", *CHECK, "--context-json", "{nope"])
    assert message.startswith("--context-json: not JSON: ")


def test_client_tls_files_that_cannot_be_read_name_the_option(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCKGATE_ADMIN_TOKEN", "token")
    missing = tmp_path / "ca.pem"
    for argv in (
        ["rotate-login-key", "--server", "127.0.0.1:1", "--tls-ca", str(missing)],
        ["check", "--server", "127.0.0.1:1", *CHECK, "--tls-ca", str(missing)],
        ["export", "--server", "127.0.0.1:1", "--tls-ca", str(missing)],
    ):
        message = one_error_line(capsys, argv)
        assert message == f"--tls-ca `{missing}`: cannot read: No such file or directory"
    message = one_error_line(
        capsys, ["list-sessions", "--server", "127.0.0.1:1", "--tls-cert", str(missing)]
    )
    assert message == "--tls-cert and --tls-key go together"


# -- serve: the data folder and the admin token -------------------------------------------------


def test_serve_with_a_data_dir_that_is_a_file_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data"
    data.write_text("a file")
    message = one_error_line(capsys, ["serve", "--data-dir", str(data)])
    assert message == f"--data-dir `{data}`: Not a directory"


def test_serve_with_a_tls_file_that_cannot_be_read_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data"
    missing = tmp_path / "cert.pem"
    message = one_error_line(
        capsys,
        ["serve", "--data-dir", str(data), "--tls-cert", str(missing), "--tls-key", str(missing)],
    )
    assert message == f"--tls-cert `{missing}`: cannot read: No such file or directory"
    assert not data.exists()


def _serve_on_free_ports(*argv: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    ports = ["--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0", "--metrics-listen", ""]
    return dockgate("serve", *ports, "--log-level", "error", *argv, env=env)


@pytest.mark.parametrize("content", ["", "\n", "  \n"])
def test_serve_refuses_an_empty_admin_token_file(
    tmp_path: Path, private_home: Path, content: str
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "admin-token").write_text(content)
    environment = {k: v for k, v in os.environ.items() if k != "DOCKGATE_ADMIN_TOKEN"}
    finished = subprocess.run(
        [
            sys.executable,
            "-m",
            "dockgate_server.cli",
            "serve",
            "--data-dir",
            str(data),
            "--listen",
            "127.0.0.1:0",
            "--admin-listen",
            "127.0.0.1:0",
            "--metrics-listen",
            "",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env=environment,
        check=False,
    )
    assert finished.returncode == 2
    assert finished.stderr == (
        f"dockgate: admin token file `{data / 'admin-token'}` is empty: delete it to have a new "
        "token made, or write a token in it\n"
    )


def test_serve_refuses_a_blank_admin_token_variable(tmp_path: Path) -> None:
    finished = _serve_on_free_ports(
        "--data-dir", str(tmp_path / "data"), env={"DOCKGATE_ADMIN_TOKEN": " "}
    )
    assert finished.returncode == 2
    assert finished.stderr.startswith("dockgate: $DOCKGATE_ADMIN_TOKEN is set but empty: ")
    assert finished.stderr.count("\n") == 1


def test_serve_tightens_its_own_default_data_folder(tmp_path: Path, private_home: Path) -> None:
    """The default folder is Dockgate's: one an older version made 0755 becomes 0700 (seen here
    through a start that stops at its empty admin token, before anything listens)."""
    default = private_home / "share" / "dockgate"
    default.mkdir(parents=True)
    default.chmod(0o755)
    (default / "admin-token").write_text("")
    finished = _serve_on_free_ports(env={"XDG_DATA_HOME": str(private_home / "share")})
    assert finished.returncode == 2, finished.stderr
    assert "admin token file" in finished.stderr
    assert mode(default) == 0o700
    assert [p.name for p in default.iterdir()] == ["admin-token"]  # refused before the store
    # a folder the user named keeps its mode (the files in it are 0600 all the same)
    named = tmp_path / "named"
    named.mkdir()
    named.chmod(0o755)
    (named / "admin-token").write_text("")
    finished = _serve_on_free_ports("--data-dir", str(named), env={})
    assert finished.returncode == 2, finished.stderr
    assert mode(named) == 0o755
    shutil.rmtree(private_home)  # the autouse fixture checks that no command made it


def test_a_running_server_keeps_its_files_private(tmp_path: Path) -> None:
    (tmp_path / "log").mkdir()
    data = tmp_path / "new" / "data"
    running = start_server(
        tmp_path / "log", "--data-dir", str(data), env={"DOCKGATE_ADMIN_TOKEN": None}
    )
    try:
        store = data / "store.sqlite3"
        assert mode(tmp_path / "new") == 0o700
        assert mode(data) == 0o700
        assert mode(data / "admin-token") == 0o600
        assert (data / "admin-token").read_text().strip()
        for name in (store, Path(f"{store}-wal"), Path(f"{store}-shm")):
            assert mode(name) == 0o600, name
    finally:
        assert running.stop() == 0


# -- help ---------------------------------------------------------------------------------------


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def test_every_option_has_help_text() -> None:
    parser = _build_parser()
    commands = _subcommands(parser)
    assert {"serve", "check", "bench", "get-login-password"} <= set(commands)
    missing = [
        f"{name} {action.option_strings or action.dest}"
        for name, command in commands.items()
        for action in command._actions
        if not action.help and not isinstance(action, argparse._HelpAction)
    ]
    assert missing == []


@pytest.mark.parametrize(
    "command",
    [
        "check",
        "simulate",
        "import",
        "export",
        "bench",
        "assume-role",
        "get-federation-token",
        "list-sessions",
        "revoke-session",
        "get-login-password",
        "revoke-login-token",
        "rotate-login-key",
    ],
)
def test_every_client_command_takes_the_tls_options(command: str) -> None:
    options = {
        option
        for action in _subcommands(_build_parser())[command]._actions
        for option in action.option_strings
    }
    assert {"--server", "--tls-ca", "--tls-cert", "--tls-key", "--tls-server-name"} <= options
