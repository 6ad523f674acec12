"""Debian's docker-registry with `auth: token` trusts the tokens Dockgate mints: the bundle of
`dockgate token-key certificates`, the YAML of `dockgate token-config`, tokens from `issue_token`
deciding with the real engine. The granted repository opens, another does not; a forged, expired
or foreign token is refused; a key in its grace period and a bare `kid` (no `x5c`) both work."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import http.client
import io
import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from dockgate_server.cli import main
from dockgate_server.credentials.login import Login
from dockgate_server.registry.context import ClientFacts
from dockgate_server.registry.token.grants import Access
from dockgate_server.registry.token.issue import TokenConfig, TokenRequest, issue_token
from dockgate_server.registry.token.jwt import access_claims, sign_jwt
from dockgate_server.registry.token.keys import Keyring, LoadedKey, load_keyring, new_token_key
from dockgate_server.store.port import open_store
from tests.e2e.peers import REGISTRY_BIN, free_port, is_available
from tests.server.registry.token.fleet import ALICE, CAROL, REGISTRY, REPOSITORIES, Decisions, arn
from tests.server.registry.token.fleet import fleet as small_fleet

pytestmark = pytest.mark.skipif(not is_available(REGISTRY_BIN), reason="needs docker-registry")

SERVICE = "dockgate-registry"
CONFIG = TokenConfig(service=SERVICE, issuer="dockgate", registry=REGISTRY)
STARTUP_SECONDS = 20.0
INSUFFICIENT = 'error="insufficient_scope"'
INVALID = 'error="invalid_token"'


@dataclass(frozen=True)
class Running:
    port: int
    store: str
    log: Path

    def call(
        self, method: str, path: str, token: str | None, body: bytes = b"", **headers: str
    ) -> tuple[int, dict[str, str], bytes]:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            sent = {key.replace("_", "-"): value for key, value in headers.items()}
            if token is not None:
                sent["Authorization"] = f"Bearer {token}"
            connection.request(method, path, body=body or None, headers=sent)
            response = connection.getresponse()
            return response.status, dict(response.getheaders()), response.read()
        finally:
            connection.close()

    def keyring(self) -> Keyring:
        with open_store(self.store, create=False) as store:
            return load_keyring(store.token_keys(), time.time())


def dockgate(*argv: str) -> str:
    """What `dockgate ARGV` prints, run in this process; it must exit 0."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(list(argv)) == 0
    return out.getvalue()


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    """The fleet in a store with two keys (ES256 retired, in its grace period; RS256 current)
    and docker-registry configured by `token-config`, trusting `token-key certificates`."""
    workdir = tmp_path_factory.mktemp("token-registry")
    store = str(workdir / "store.sqlite3")
    with open_store(store) as opened:
        opened.import_fleet(small_fleet())
    dockgate("token-key", "rotate", "--store", store, "--algorithm", "ES256")
    dockgate("token-key", "rotate", "--store", store, "--algorithm", "RS256")
    bundle = workdir / "certs.pem"
    bundle.write_text(dockgate("token-key", "certificates", "--store", store))
    auth = dockgate(
        "token-config",
        "--store",
        store,
        "--realm",
        "http://127.0.0.1:9/token",
        "--service",
        SERVICE,
        "--certificate-path",
        str(bundle),
    )
    port = free_port()
    config = workdir / "registry.yml"
    config.write_text(
        "version: 0.1\n"
        "log:\n  level: info\n  accesslog:\n    disabled: true\n"
        f"storage:\n  filesystem:\n    rootdirectory: {workdir / 'storage'}\n"
        f"http:\n  addr: 127.0.0.1:{port}\n  secret: dockgate-tests-only\n{auth}"
    )
    running = Running(port, store, workdir / "registry.log")
    with running.log.open("wb") as log:
        # every REGISTRY_* variable is configuration to it: start it with a clean environment
        process = subprocess.Popen(
            [REGISTRY_BIN, "serve", str(config)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={"PATH": "/usr/bin:/bin", "HOME": str(workdir)},
            cwd=workdir,
            start_new_session=True,
        )
    try:
        _wait_until_ready(process, running)
        yield running
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def _wait_until_ready(process: subprocess.Popen[bytes], running: Running) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"docker-registry exited:\n{running.log.read_text()}")
        with contextlib.suppress(OSError, http.client.HTTPException):
            if running.call("GET", "/v2/", None)[0] == 401:  # it asks for a token: ready
                return
        time.sleep(0.05)
    raise RuntimeError(f"docker-registry not ready:\n{running.log.read_text()}")


def token_for(running: Running, principal: str, *scopes: str, now: float | None = None) -> str:
    """A token from `issue_token`: the real engine decides, the store's current key signs."""
    listed = [arn(name) for name in REPOSITORIES]
    moment = time.time() if now is None else now
    answer = issue_token(
        TokenRequest(
            "GET",
            "&".join([f"service={SERVICE}", *(f"scope={scope}" for scope in scopes)]),
            ClientFacts("10.1.2.3"),
            "Basic " + base64.b64encode(b"AWS:password").decode(),
        ),
        CONFIG,
        verify_login=lambda _: Login(principal, moment + 3600),
        decide=Decisions(),
        repositories=lambda: listed,
        keys=running.keyring,
        clock=lambda: moment,
    )
    assert answer.status == 200, answer.body
    token: str = json.loads(answer.body)["token"]
    return token


def tags(running: Running, name: str, token: str | None) -> tuple[int, str, bytes]:
    status, headers, body = running.call("GET", f"/v2/{name}/tags/list", token)
    return status, headers.get("Www-Authenticate", ""), body


def push_image(running: Running, name: str, token: str) -> int:
    """A config blob and a manifest naming it, pushed with `token`: the status of the manifest."""
    config = b'{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}'
    digest = "sha256:" + hashlib.sha256(config).hexdigest()
    status, headers, body = running.call("POST", f"/v2/{name}/blobs/uploads/", token)
    assert status == 202, body
    location = headers["Location"]
    target = location.split(f"127.0.0.1:{running.port}", 1)[-1]
    separator = "&" if "?" in target else "?"
    status, _, body = running.call(
        "PUT",
        f"{target}{separator}digest={digest}",
        token,
        config,
        Content_Type="application/octet-stream",
    )
    assert status == 201, body
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {
            "mediaType": "application/vnd.docker.container.image.v1+json",
            "size": len(config),
            "digest": digest,
        },
        "layers": [],
    }
    status, _, _ = running.call(
        "PUT",
        f"/v2/{name}/manifests/v1",
        token,
        json.dumps(manifest).encode(),
        Content_Type="application/vnd.docker.distribution.manifest.v2+json",
    )
    return status


def test_the_granted_repository_opens_and_another_does_not(registry: Running) -> None:
    token = token_for(registry, ALICE, "repository:team-a/app:pull,push")
    assert push_image(registry, "team-a/app", token) == 201
    status, _, body = tags(registry, "team-a/app", token)
    assert status == 200 and json.loads(body) == {"name": "team-a/app", "tags": ["v1"]}
    status, challenge, _ = tags(registry, "team-b/tools", token)
    assert status == 401 and INSUFFICIENT in challenge


def test_a_token_with_empty_access_opens_nothing(registry: Running) -> None:
    # carol (another account) may not touch team-b/tools: the token carries no access
    token = token_for(registry, CAROL, "repository:team-b/tools:pull")
    status, challenge, _ = tags(registry, "team-b/tools", token)
    assert status == 401 and INSUFFICIENT in challenge


def test_a_cross_account_pull_opens_what_the_repository_policy_shares(registry: Running) -> None:
    token = token_for(registry, CAROL, "repository:team-a/app:pull,push")
    status, _, _ = tags(registry, "team-a/app", token)
    assert status == 200
    # pull only: an upload needs push (and pull) at the registry
    status, _, _ = registry.call("POST", "/v2/team-a/app/blobs/uploads/", token)
    assert status == 401


def test_a_forged_token_is_invalid(registry: Running) -> None:
    header, _, signature = token_for(registry, ALICE, "repository:team-a/app:pull").split(".")
    now = int(time.time())
    claims = {
        "iss": "dockgate",
        "sub": ALICE,
        "aud": SERVICE,
        "exp": now + 300,
        "nbf": now,
        "iat": now,
        "jti": "forged",
        "access": [{"type": "repository", "name": "team-b/tools", "actions": ["pull"]}],
    }
    forged = f"{header}.{_b64(claims)}.{signature}"
    status, challenge, _ = tags(registry, "team-b/tools", forged)
    assert status == 401 and INVALID in challenge


def test_an_expired_token_is_invalid(registry: Running) -> None:
    # made 400 s ago with a 300 s life: past `exp` by more than the registry's 60 s leeway
    token = token_for(registry, ALICE, "repository:team-a/app:pull", now=time.time() - 400)
    status, challenge, _ = tags(registry, "team-a/app", token)
    assert status == 401 and INVALID in challenge


def test_a_token_signed_by_a_key_outside_the_bundle_is_invalid(registry: Running) -> None:
    stranger = load_keyring([new_token_key("ES256", time.time())], time.time()).signing
    assert stranger is not None
    token = sign_jwt(_claims("team-a/app"), stranger)
    status, challenge, _ = tags(registry, "team-a/app", token)
    assert status == 401 and INVALID in challenge


def test_the_retired_key_in_its_grace_period_still_verifies(registry: Running) -> None:
    keyring = registry.keyring()
    retired = [key for key in keyring.keys if key.retired_at is not None]
    assert [key.algorithm for key in retired] == ["ES256"]
    assert keyring.signing is not None and keyring.signing.algorithm == "RS256"
    status, _, _ = tags(registry, "team-a/app", sign_jwt(_claims("team-a/app"), retired[0]))
    assert status == 200


@pytest.mark.parametrize("algorithm", ["ES256", "RS256"])
def test_a_bare_kid_in_libtrust_format_finds_the_key(registry: Running, algorithm: str) -> None:
    (key,) = [k for k in registry.keyring().keys if k.algorithm == algorithm]
    token = _sign_without_x5c(_claims("team-a/app"), key)
    assert tags(registry, "team-a/app", token)[0] == 200
    # the same token with a kid one character off is refused
    wrong = _sign_without_x5c(_claims("team-a/app"), replace(key, key_id=_off_by_one(key.key_id)))
    status, challenge, _ = tags(registry, "team-a/app", wrong)
    assert status == 401 and INVALID in challenge


def _claims(name: str) -> dict[str, Any]:
    now = time.time()
    return access_claims(
        issuer="dockgate",
        subject=ALICE,
        audience=SERVICE,
        access=(Access("repository", name, ("pull",)),),
        now=now,
        expires_at=now + 300,
    )


def _sign_without_x5c(claims: dict[str, Any], key: LoadedKey) -> str:
    header = {"typ": "JWT", "alg": key.algorithm, "kid": key.key_id}
    signing_input = f"{_b64(header)}.{_b64(claims)}"
    return f"{signing_input}.{_b64url(key.sign(signing_input.encode()))}"


def _off_by_one(key_id: str) -> str:
    return ("B" if key_id[0] == "A" else "A") + key_id[1:]


def _b64(value: dict[str, Any]) -> str:
    return _b64url(json.dumps(value, separators=(",", ":")).encode())


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
