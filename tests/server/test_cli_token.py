"""`dockgate token-key …` and `dockgate token-config`: keys made in the store, the bundle and the
registry configuration printed, nothing created by a read-only command, no private key shown."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from cryptography import x509

from dockgate_server.cli import main
from dockgate_server.registry.token.keys import load_keyring
from dockgate_server.store.model import Repository
from dockgate_server.store.port import open_store

REPOSITORY = "arn:aws:ecr:us-east-1:111122223333:repository/team-a/app"


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """An existing store without token keys; $DOCKGATE_STORE points elsewhere (unused)."""
    monkeypatch.setenv("DOCKGATE_STORE", str(tmp_path / "not-this-one.sqlite3"))
    path = tmp_path / "store.sqlite3"
    with open_store(path) as opened:
        opened.put_repository(Repository(REPOSITORY))
    return str(path)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_rotate_makes_a_key_in_the_store_and_says_which(
    store: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "token-key", "rotate", "--store", store)
    assert code == 0 and err == ""
    shown = json.loads(out)
    with open_store(store) as opened:
        (key,) = opened.token_keys()
    assert shown["keyId"] == key.key_id and shown["algorithm"] == "ES256"
    assert shown["trusted"] == [key.key_id] and shown["revision"] == 2
    assert "PRIVATE" not in out and key.private_key not in out


def test_a_second_rotation_keeps_the_first_certificate_in_the_bundle(
    store: str, capsys: pytest.CaptureFixture[str]
) -> None:
    run(capsys, "token-key", "rotate", "--store", store)
    code, out, _ = run(capsys, "token-key", "rotate", "--store", store, "--algorithm", "RS256")
    assert code == 0
    first, second = (k.key_id for k in open_store(store).token_keys())
    assert json.loads(out)["trusted"] == [second, first]
    code, bundle, _ = run(capsys, "token-key", "certificates", "--store", store)
    assert code == 0 and "PRIVATE" not in bundle
    certificates = x509.load_pem_x509_certificates(bundle.encode())
    names = [
        c.subject.get_attributes_for_oid(x509.oid.NameOID.COMMON_NAME)[0].value
        for c in certificates
    ]
    assert names == [second, first]


def test_a_grace_of_zero_forgets_the_previous_key(
    store: str, capsys: pytest.CaptureFixture[str]
) -> None:
    run(capsys, "token-key", "rotate", "--store", store)
    code, out, _ = run(capsys, "token-key", "rotate", "--store", store, "--grace", "0")
    assert code == 0 and len(json.loads(out)["trusted"]) == 1


def test_the_jwks_document_lists_the_keys(store: str, capsys: pytest.CaptureFixture[str]) -> None:
    run(capsys, "token-key", "rotate", "--store", store)
    code, out, _ = run(capsys, "token-key", "jwks", "--store", store)
    keys = json.loads(out)["keys"]
    assert code == 0 and [k["kty"] for k in keys] == ["EC"] and "d" not in keys[0]


def test_token_config_prints_the_registry_section_and_writes_the_bundle_when_asked(
    store: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run(capsys, "token-key", "rotate", "--store", store)
    bundle = tmp_path / "certs" / "dockgate.pem"
    bundle.parent.mkdir()
    argv = [
        "token-config",
        "--store",
        store,
        "--realm",
        "https://auth.example.com/token",
        "--service",
        "dockgate-registry",
        "--certificate-path",
        str(bundle),
    ]
    code, out, _ = run(capsys, *argv)
    assert code == 0 and not bundle.exists()
    assert out == (
        "auth:\n"
        "  token:\n"
        '    realm: "https://auth.example.com/token"\n'
        '    service: "dockgate-registry"\n'
        '    issuer: "dockgate"\n'
        f'    rootcertbundle: "{bundle}"\n'
    )
    code, again, _ = run(capsys, *argv, "--write", "--issuer", "corp")
    assert code == 0 and 'issuer: "corp"' in again
    assert stat.S_IMODE(bundle.stat().st_mode) == 0o644  # certificates are public
    with open_store(store) as opened:
        expected = load_keyring(opened.token_keys(), 0).certificates()
    assert bundle.read_text() == expected
    assert [p.name for p in bundle.parent.iterdir()] == ["dockgate.pem"]


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--realm", "auth.example.com/token", "--realm `auth.example.com/token`: expected an http"),
        ("--service", 'a"b', '--service `a"b`: expected a non-empty value'),
    ],
)
def test_token_config_refuses_what_would_break_the_yaml(
    store: str, option: str, value: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    options = {"--realm": "http://127.0.0.1:5001/token", "--service": "registry"} | {option: value}
    argv = ["token-config", "--store", store, *[x for pair in options.items() for x in pair]]
    code, out, err = run(capsys, *argv)
    assert code == 2 and out == ""
    assert err.startswith(f"dockgate: {message}") and err.count("\n") == 1


def test_a_bundle_that_cannot_be_written_is_one_line_naming_the_option(
    store: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run(capsys, "token-key", "rotate", "--store", store)
    missing = tmp_path / "no-such-folder" / "certs.pem"
    code, out, err = run(
        capsys,
        "token-config",
        "--store",
        store,
        "--realm",
        "http://127.0.0.1:5001/token",
        "--service",
        "registry",
        "--certificate-path",
        str(missing),
        "--write",
    )
    assert code == 2 and out == ""
    assert err.startswith(f"dockgate: --certificate-path `{missing}`: cannot write: ")
    assert err.count("\n") == 1


@pytest.mark.parametrize(
    "argv",
    [
        ["token-key", "certificates"],
        ["token-key", "jwks"],
        ["token-config", "--realm", "http://x/token", "--service", "s"],
    ],
)
def test_without_a_key_nothing_is_printed_but_the_way_out(
    argv: list[str], store: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, *argv, "--store", store)
    assert code == 2 and out == ""
    assert err == (
        f"dockgate: store `{store}` has no token-signing key: make one with "
        "`dockgate token-key rotate`\n"
    )


@pytest.mark.parametrize(
    "argv",
    [
        ["token-key", "rotate"],
        ["token-key", "certificates"],
        ["token-key", "jwks"],
        ["token-config", "--realm", "http://x/token", "--service", "s", "--write"],
        ["token-config", "--realm", "http://x/token", "--service", "s"],
    ],
)
def test_no_command_creates_a_store(
    argv: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "missing" / "store.sqlite3"
    code, _, err = run(capsys, *argv, "--store", str(missing))
    assert code == 2 and err.startswith(f"dockgate: store `{missing}` does not exist")
    assert not missing.parent.exists()


def test_the_store_named_by_the_environment_is_used(
    store: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DOCKGATE_STORE", store)
    assert run(capsys, "token-key", "rotate")[0] == 0
    assert len(open_store(store).token_keys()) == 1


def test_a_negative_grace_is_refused(store: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "token-key", "rotate", "--store", store, "--grace", "-1")
    assert code == 2 and err.startswith("dockgate: --grace `-1.0`")
    assert open_store(store).token_keys() == []


def test_token_config_takes_the_servers_token_options(
    store: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """The options `dockgate serve` runs the token door with give the same section."""
    run(capsys, "token-key", "rotate", "--store", store)
    argv = ["token-config", "--store", store, "--token-service", "dockgate-registry"]
    code, out, err = run(
        capsys, *argv, "--token-listen", "127.0.0.1:5001", "--token-issuer", "corp"
    )
    assert code == 0 and err == ""
    assert out.splitlines()[2:5] == [
        '    realm: "http://127.0.0.1:5001/token"',
        '    service: "dockgate-registry"',
        '    issuer: "corp"',
    ]
    code, out, _ = run(capsys, *argv, "--token-listen", "[::1]:5001")
    assert code == 0 and '    realm: "http://[::1]:5001/token"\n' in out


@pytest.mark.parametrize(
    ("listen", "message"),
    [
        (
            "0.0.0.0:5001",
            "--token-listen `0.0.0.0:5001`: clients cannot reach a wildcard address: give the "
            "realm they reach with --realm",
        ),
        ("[::]:5001", "--token-listen `[::]:5001`: clients cannot reach a wildcard address"),
        ("127.0.0.1:0", "--token-listen `127.0.0.1:0`: the port must be 1 to 65535"),
        ("http://127.0.0.1:5001", "--token-listen `http://127.0.0.1:5001`: expected HOST:PORT"),
    ],
)
def test_a_token_listen_that_is_no_realm_is_refused(
    store: str, listen: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    run(capsys, "token-key", "rotate", "--store", store)
    argv = ["token-config", "--store", store, "--token-service", "s", "--token-listen", listen]
    code, out, err = run(capsys, *argv)
    assert code == 2 and out == ""
    assert err.startswith(f"dockgate: {message}") and err.count("\n") == 1


def test_token_config_needs_a_realm_or_the_token_listen_address(
    store: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["token-config", "--store", store, "--service", "s"])
    assert exited.value.code == 2
    assert "one of the arguments --realm --token-listen is required" in capsys.readouterr().err
