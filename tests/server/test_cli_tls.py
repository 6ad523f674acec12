"""Client commands over TLS and mTLS: `--tls-ca`, `--tls-cert`/`--tls-key`, `--tls-server-name`."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from dockgate_server.cli import main
from tests.server.service.conftest import TOKEN, RunningServer, start_server
from tests.server.service.test_tls import certificates  # noqa: F401 - a fixture

READER = "arn:aws:iam::111122223333:user/reader"
REPOSITORY = "arn:aws:ecr:us-east-1:111122223333:repository/team-a/app"


@pytest.fixture(scope="module")
def mtls_server(
    tmp_path_factory: pytest.TempPathFactory,
    certificates: Path,  # noqa: F811 - the fixture imported above
) -> Iterator[RunningServer]:
    running = start_server(
        tmp_path_factory.mktemp("dockgate"),
        "--tls-cert",
        str(certificates / "server.pem"),
        "--tls-key",
        str(certificates / "server.key"),
        "--tls-client-ca",
        str(certificates / "ca.pem"),
    )
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(autouse=True)
def admin_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKGATE_ADMIN_TOKEN", TOKEN)


def tls(folder: Path, *, client: bool = True) -> list[str]:
    options = ["--tls-ca", str(folder / "ca.pem")]
    if client:
        options += [
            "--tls-cert",
            str(folder / "client.pem"),
            "--tls-key",
            str(folder / "client.key"),
        ]
    return options


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_a_credential_command_with_a_client_certificate_is_served(
    mtls_server: RunningServer,
    certificates: Path,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, err = run(
        capsys, "rotate-login-key", "--server", mtls_server.admin, *tls(certificates)
    )
    assert code == 0, err
    assert set(json.loads(out)) == {"keyId", "revision"}


@pytest.mark.parametrize(
    "options",
    [
        pytest.param([], id="plaintext"),
        pytest.param(["ca-only"], id="without-a-client-certificate"),
        pytest.param(["other-name"], id="a-name-the-certificate-does-not-carry"),
    ],
)
def test_a_credential_command_the_server_cannot_trust_is_refused(
    mtls_server: RunningServer,
    certificates: Path,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
    options: list[str],
) -> None:
    given = {
        (): [],
        ("ca-only",): tls(certificates, client=False),
        ("other-name",): [*tls(certificates), "--tls-server-name", "other.example"],
    }[tuple(options)]
    code, out, err = run(capsys, "list-sessions", "--server", mtls_server.admin, *given)
    assert code == 1
    assert out == ""
    assert err.startswith("dockgate: UNAVAILABLE: ")


def test_the_server_name_the_certificate_carries_may_differ_from_the_address(
    mtls_server: RunningServer,
    certificates: Path,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    # the address is 127.0.0.1; the certificate also names localhost
    code, _, err = run(
        capsys,
        "list-sessions",
        "--server",
        mtls_server.admin,
        *tls(certificates),
        "--tls-server-name",
        "localhost",
    )
    assert code == 0, err


def test_check_and_simulate_over_mtls(
    mtls_server: RunningServer,
    certificates: Path,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    question = ["--principal", READER, "--action", "ecr:BatchGetImage", "--resource", REPOSITORY]
    code, out, err = run(
        capsys, "check", "--server", mtls_server.decision, *question, *tls(certificates)
    )
    assert code == 0, err
    assert json.loads(out)["decision"] in ("Allowed", "ImplicitlyDenied", "ExplicitlyDenied")
    cases = tmp_path / "cases.jsonl"
    cases.write_text(
        json.dumps(
            {
                "id": "nothing-allows",
                "request": {"principal": READER, "action": "ecr:PutImage", "resource": "*"},
                "expect": "ImplicitlyDenied",
            }
        )
        + "\n"
    )
    code, out, err = run(
        capsys, "simulate", str(cases), "--server", mtls_server.decision, *tls(certificates)
    )
    assert code == 0, err
    assert out.splitlines()[-1] == "1 passed, 0 failed"


def test_export_and_import_over_mtls(
    mtls_server: RunningServer,
    certificates: Path,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    code, out, err = run(capsys, "export", "--server", mtls_server.admin, *tls(certificates))
    assert code == 0, err
    bundle = tmp_path / "bundle.json"
    bundle.write_text(out)
    code, out, err = run(
        capsys, "import", str(bundle), "--server", mtls_server.admin, *tls(certificates)
    )
    assert code == 0, err
    assert json.loads(out)["revision"] >= 1
    code, _, err = run(
        capsys, "export", "--server", mtls_server.admin, *tls(certificates, client=False)
    )
    assert code == 2
    assert "UNAVAILABLE" in err
