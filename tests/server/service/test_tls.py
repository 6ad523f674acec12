"""TLS and mTLS on both ports, with certificates made by the openssl command for the test."""

from __future__ import annotations

import http.client
import json
import shutil
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from dockgate import AdminClient, Client, Credentials, Outcome, UnavailableError
from tests.server.service.conftest import RunningServer, start_server

READER = "arn:aws:iam::111122223333:user/reader"
ACTION = "ecr:BatchGetImage"
REPOSITORY = "arn:aws:ecr:us-east-1:111122223333:repository/team-a/app"


def _openssl(*arguments: str, cwd: Path) -> None:
    subprocess.run(["openssl", *arguments], cwd=cwd, check=True, capture_output=True, timeout=60)


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("openssl") is None:
        pytest.fail("the openssl command is needed (Debian package `openssl`)")
    folder = tmp_path_factory.mktemp("pki")
    _openssl(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=dockgate test CA",
        cwd=folder,
    )
    (folder / "server.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    for name, extension in (("server", ["-extfile", "server.ext"]), ("client", [])):
        _openssl(
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            f"{name}.key",
            "-out",
            f"{name}.csr",
            "-subj",
            f"/CN={name}",
            cwd=folder,
        )
        _openssl(
            "x509",
            "-req",
            "-in",
            f"{name}.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            f"{name}.pem",
            "-days",
            "2",
            *extension,
            cwd=folder,
        )
    return folder


@pytest.fixture
def mtls_server(tmp_path: Path, certificates: Path) -> Iterator[RunningServer]:
    running = start_server(
        tmp_path,
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


def _credentials(folder: Path, with_client_certificate: bool) -> Credentials:
    return Credentials(
        root_certificates=(folder / "ca.pem").read_bytes(),
        private_key=(folder / "client.key").read_bytes() if with_client_certificate else None,
        certificate_chain=(folder / "client.pem").read_bytes() if with_client_certificate else None,
    )


def test_a_client_with_a_certificate_is_served(
    mtls_server: RunningServer, certificates: Path
) -> None:
    credentials = _credentials(certificates, with_client_certificate=True)
    with Client(mtls_server.decision, credentials=credentials) as client:
        assert client.authorize(READER, ACTION, REPOSITORY).outcome is Outcome.ALLOWED
    with AdminClient(mtls_server.admin, mtls_server.token, credentials=credentials) as admin:
        assert admin.revision() >= 1


def test_a_client_without_a_certificate_is_refused(
    mtls_server: RunningServer, certificates: Path
) -> None:
    with (
        Client(
            mtls_server.decision, credentials=_credentials(certificates, False), timeout=3
        ) as client,
        pytest.raises(UnavailableError),
    ):
        client.authorize(READER, ACTION, REPOSITORY)


def test_a_plaintext_client_is_refused(mtls_server: RunningServer) -> None:
    with Client(mtls_server.decision, timeout=3) as client, pytest.raises(UnavailableError):
        client.authorize(READER, ACTION, REPOSITORY)


def test_the_authzen_door_takes_the_same_mtls(tmp_path: Path, certificates: Path) -> None:
    """With the server's TLS options the AuthZEN door speaks HTTPS and, with a client CA, serves
    only clients with a certificate that CA signed: no bearer token needed off loopback."""
    running = start_server(
        tmp_path,
        "--tls-cert",
        str(certificates / "server.pem"),
        "--tls-key",
        str(certificates / "server.key"),
        "--tls-client-ca",
        str(certificates / "ca.pem"),
        "--authzen-listen",
        "127.0.0.1:0",
    )
    try:
        port = json.loads((running.data_dir / "ready.json").read_text())["authzen_port"]
        body = json.dumps(
            {
                "subject": {"type": "user", "id": READER},
                "action": {"name": ACTION},
                "resource": {"type": "repository", "id": REPOSITORY},
            }
        ).encode()

        def evaluate(context: ssl.SSLContext) -> dict[str, object]:
            connection = http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=10)
            try:
                connection.request(
                    "POST",
                    "/access/v1/evaluation",
                    body,
                    {"Content-Type": "application/json"},
                )
                answer: dict[str, object] = json.loads(connection.getresponse().read())
                return answer
            finally:
                connection.close()

        trusting = ssl.create_default_context(cafile=str(certificates / "ca.pem"))
        with pytest.raises((ssl.SSLError, ConnectionError)):
            evaluate(trusting)  # no client certificate: the handshake is refused
        trusting.load_cert_chain(certificates / "client.pem", certificates / "client.key")
        assert evaluate(trusting)["decision"] is True
    finally:
        running.stop()
