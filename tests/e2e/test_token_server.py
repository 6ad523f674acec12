"""End to end: Debian's docker-registry with `auth: token`, Dockgate's token door as its realm and
no proxy in between; skopeo pushes and pulls with the login passwords of a fleet's principals.

Every push and pull succeeds or fails as IAM decides (each outcome is also asked of Dockgate's
decision port); a token for one repository opens no other; an expired, a forged and a foreign
token are refused by the registry; with Dockgate stopped no token is issued and skopeo fails.
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import io
import json
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

from dockgate import AdminClient, Client
from dockgate_server.cli import main
from dockgate_server.registry.token.jwt import sign_jwt
from dockgate_server.registry.token.keys import load_keyring, new_token_key
from tests.e2e.oci import build_image, read_image
from tests.e2e.peers import REGISTRY_BIN, SKOPEO_BIN, Skopeo, SkopeoResult, free_port, is_available
from tests.server.service.conftest import TOKEN, RunningServer, start_server

ACCOUNT = "111122223333"
OTHER = "444455556666"
REGION = "us-east-1"
SERVICE = "dockgate-registry"
STARTUP_SECONDS = 20.0
INSUFFICIENT = 'error="insufficient_scope"'
INVALID = 'error="invalid_token"'

PULL = ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"]
PUSH = [
    "ecr:InitiateLayerUpload",
    "ecr:UploadLayerPart",
    "ecr:CompleteLayerUpload",
    "ecr:PutImage",
    "ecr:BatchCheckLayerAvailability",
]
SCOPE_ACTIONS = {"pull": PULL, "push": PUSH}


def repo_arn(name: str) -> str:
    return f"arn:aws:ecr:{REGION}:{ACCOUNT}:repository/{name}"


def user_arn(name: str, account: str = ACCOUNT) -> str:
    return f"arn:aws:iam::{account}:user/{name}"


def _statement(effect: str, action: Any, resource: Any, **condition: Any) -> dict[str, Any]:
    statement: dict[str, Any] = {"Effect": effect, "Action": action, "Resource": resource}
    if condition:
        statement["Condition"] = condition
    return statement


def _user(name: str, *statements: dict[str, Any]) -> dict[str, Any]:
    """A user who may log in (ecr:GetAuthorizationToken) and do what `statements` say."""
    document = {
        "Version": "2012-10-17",
        "Statement": [_statement("Allow", "ecr:GetAuthorizationToken", "*"), *statements],
    }
    return {
        "UserName": name,
        "Path": "/",
        "UserPolicyList": [{"PolicyName": f"{name}-inline", "PolicyDocument": document}],
    }


def _repository(name: str, policy: dict[str, Any] | None = None) -> dict[str, Any]:
    entry: dict[str, Any] = {"repositoryArn": repo_arn(name), "tags": []}
    if policy is not None:
        entry["policyText"] = json.dumps(policy)
    return entry


def _repository_policy(principal: str, actions: list[str]) -> dict[str, Any]:
    return {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"AWS": principal}, "Action": actions},
        ],
    }


TEAM = repo_arn("team/*")
BUNDLE: dict[str, Any] = {
    "format": "dockgate-bundle/1",
    "accounts": {
        ACCOUNT: {
            "authorizationDetails": {
                "UserDetailList": [
                    _user("admin", _statement("Allow", "ecr:*", "*")),
                    _user("pusher", _statement("Allow", [*PULL, *PUSH], TEAM)),
                    _user("reader", _statement("Allow", PULL, TEAM)),
                    # no identity policy on images: the repository policy of granted/app names
                    # this user, which suffices within one account
                    _user("guest"),
                    # allowed everything, but an explicit deny on team/tools wins
                    _user(
                        "denied",
                        _statement("Allow", [*PULL, *PUSH], "*"),
                        _statement("Deny", "ecr:*", repo_arn("team/tools")),
                    ),
                    # pulls team/app from loopback (where skopeo runs), team/tools only from 10/8
                    _user(
                        "office",
                        _statement(
                            "Allow",
                            PULL,
                            repo_arn("team/app"),
                            IpAddress={"aws:SourceIp": "127.0.0.0/8"},
                        ),
                        _statement(
                            "Allow",
                            PULL,
                            repo_arn("team/tools"),
                            IpAddress={"aws:SourceIp": "10.0.0.0/8"},
                        ),
                    ),
                ]
            },
            "repositories": [
                _repository("team/app"),
                _repository("team/tools"),
                _repository("shared/base", _repository_policy(f"arn:aws:iam::{OTHER}:root", PULL)),
                _repository("private/base"),
                _repository("granted/app", _repository_policy(user_arn("guest"), PULL)),
            ],
        },
        OTHER: {
            "authorizationDetails": {
                "UserDetailList": [
                    # across accounts both sides must allow: only shared/base's policy does
                    _user(
                        "crosser",
                        _statement(
                            "Allow", PULL, [repo_arn("shared/base"), repo_arn("private/base")]
                        ),
                    ),
                ]
            },
            "repositories": [],
        },
    },
}
USERS = {
    "admin": user_arn("admin"),
    "pusher": user_arn("pusher"),
    "reader": user_arn("reader"),
    "guest": user_arn("guest"),
    "denied": user_arn("denied"),
    "office": user_arn("office"),
    "crosser": user_arn("crosser", OTHER),
}
SEEDS = ("team/app", "team/tools", "shared/base", "private/base", "granted/app")
"""repositories given an image (tag `seed`) by `admin` before the tests"""

CASES = [
    # (user, operation, repository, allowed)
    ("pusher", "push", "team/app", True),
    ("pusher", "pull", "team/tools", True),
    ("reader", "pull", "team/app", True),
    ("reader", "push", "team/app", False),
    ("crosser", "pull", "shared/base", True),
    ("crosser", "pull", "private/base", False),
    ("guest", "pull", "granted/app", True),
    ("guest", "pull", "team/app", False),
    ("denied", "pull", "team/app", True),
    ("denied", "pull", "team/tools", False),
    ("office", "pull", "team/app", True),
    ("office", "pull", "team/tools", False),
]


@dataclass(frozen=True)
class Stack:
    server: RunningServer
    token_port: int
    registry_port: int
    passwords: dict[str, str]
    clock_offset: Path
    layout: Path
    """an OCI layout holding the image `seed` (what every seeded repository holds) and `new`"""
    work: Path

    @property
    def registry(self) -> str:
        return f"127.0.0.1:{self.registry_port}"

    def creds(self, user: str) -> tuple[str, str]:
        return ("AWS", self.passwords[user])

    def skopeo(self, name: str) -> Skopeo:
        """A fresh skopeo (own state, no cached token)."""
        return Skopeo(self.work / "skopeo" / name, timeout=60)

    def token(self, user: str, *scopes: str) -> dict[str, Any]:
        """`GET /token` from the token door with the user's login password."""
        query = urlencode({"service": SERVICE, "scope": list(scopes)}, doseq=True)
        basic = base64.b64encode(f"AWS:{self.passwords[user]}".encode()).decode()
        status, _, body = request(
            self.token_port, "GET", f"/token?{query}", {"Authorization": f"Basic {basic}"}
        )
        assert status == 200, body
        answer: dict[str, Any] = json.loads(body)
        return answer

    def registry_call(self, path: str, token: str) -> tuple[int, str]:
        status, headers, _ = request(
            self.registry_port, "GET", path, {"Authorization": f"Bearer {token}"}
        )
        return status, headers.get("Www-Authenticate", "")


def request(
    port: int, method: str, path: str, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
    try:
        connection.request(method, path, headers=headers or {})
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


def dockgate(*argv: str) -> str:
    """What `dockgate ARGV` prints, run in this process; it must exit 0."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(list(argv)) == 0, argv
    return out.getvalue()


def wait_for(predicate: Callable[[], bool], what: str, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {seconds}s: {what}")
        time.sleep(0.02)


# -- the stack ------------------------------------------------------------------------------------


@pytest.fixture(scope="module", autouse=True)
def peers_installed() -> None:
    """Fail, not skip: the suite must not pass quietly on a machine without the peers."""
    missing = [p for p in (REGISTRY_BIN, SKOPEO_BIN) if not is_available(p)]
    if missing:
        pytest.fail(
            "the token server's end-to-end test needs these programs, which are missing: "
            + ", ".join(missing)
            + " (apt-get install docker-registry skopeo)",
            pytrace=False,
        )


def _start_dockgate(data_dir: Path) -> tuple[RunningServer, int, Path]:
    data_dir.mkdir(parents=True)
    clock_offset = data_dir / "clock-offset"
    clock_offset.write_text("0\n")
    server = start_server(
        data_dir,
        "--token-listen",
        "127.0.0.1:0",
        "--token-service",
        SERVICE,
        "--registry-account",
        ACCOUNT,
        "--registry-region",
        REGION,
        "--clock-offset-file",
        str(clock_offset),
        seed=False,
    )
    token_port = json.loads((data_dir / "ready.json").read_text())["token_port"]
    assert isinstance(token_port, int) and token_port > 0
    return server, token_port, clock_offset


def _stop_dockgate(server: RunningServer) -> None:
    if server.process.poll() is None:
        try:
            server.stop(timeout=10)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait()


@contextlib.contextmanager
def _run_registry(workdir: Path, auth: str) -> Iterator[int]:
    """docker-registry with the `auth: token` section `auth`, on a free loopback port."""
    port = free_port()
    config = workdir / "registry.yml"
    config.write_text(
        "version: 0.1\n"
        "log:\n  level: info\n  accesslog:\n    disabled: true\n"
        f"storage:\n  filesystem:\n    rootdirectory: {workdir / 'storage'}\n"
        f"http:\n  addr: 127.0.0.1:{port}\n  secret: dockgate-tests-only\n{auth}"
    )
    log = workdir / "registry.log"
    with log.open("wb") as out:
        # every REGISTRY_* variable is configuration to it: start it with a clean environment
        process = subprocess.Popen(
            [REGISTRY_BIN, "serve", str(config)],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env={"PATH": "/usr/bin:/bin", "HOME": str(workdir)},
            cwd=workdir,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"docker-registry exited:\n{log.read_text()}")
            with contextlib.suppress(OSError, http.client.HTTPException):
                if request(port, "GET", "/v2/")[0] == 401:  # it asks for a token: ready
                    break
            if time.monotonic() > deadline:
                raise RuntimeError(f"docker-registry not ready:\n{log.read_text()}")
            time.sleep(0.05)
        yield port
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    work = tmp_path_factory.mktemp("token-e2e")
    data_dir = work / "dockgate"
    server, token_port, clock_offset = _start_dockgate(data_dir)
    try:
        with AdminClient(server.admin, TOKEN) as admin:
            admin.import_bundle(BUNDLE)
            passwords = {
                user: admin.get_login_password(arn).password for user, arn in USERS.items()
            }
        # two rotations: the second key signs, the first stays in the bundle for its grace
        store = str(data_dir / "store.sqlite3")
        dockgate("token-key", "rotate", "--store", store, "--algorithm", "RS256")
        rotated = json.loads(dockgate("token-key", "rotate", "--store", store))
        assert len(rotated["trusted"]) == 2
        bundle = work / "certs.pem"
        auth = dockgate(
            "token-config",
            "--store",
            store,
            "--token-listen",
            f"127.0.0.1:{token_port}",
            "--token-service",
            SERVICE,
            "--certificate-path",
            str(bundle),
            "--write",
        )
        assert f'realm: "http://127.0.0.1:{token_port}/token"' in auth
        # the running server signs with the new key once it has followed the store
        wait_for(
            lambda: _jwks_kids(token_port)[:1] == [rotated["keyId"]],
            "the token door serves the rotated key",
        )
        layout = work / "image"
        build_image(layout, "seed", "the seed image")
        build_image(layout, "new", "a new image")
        with _run_registry(work, auth) as registry_port:
            stack = Stack(server, token_port, registry_port, passwords, clock_offset, layout, work)
            seeder = stack.skopeo("seeder")
            for name in SEEDS:
                pushed = seeder.push(layout, "seed", stack.registry, name, stack.creds("admin"))
                assert pushed.ok, pushed
            yield stack
    finally:
        _stop_dockgate(server)


def _jwks_kids(port: int) -> list[str]:
    status, _, body = request(port, "GET", "/token/jwks.json")
    assert status == 200, body
    return [key["kid"] for key in json.loads(body)["keys"]]


# -- pushes and pulls as IAM decides ------------------------------------------------------------


def _run(stack: Stack, user: str, operation: str, name: str, into: Path) -> SkopeoResult:
    skopeo = stack.skopeo(f"{user}-{operation}-{name.replace('/', '-')}")
    if operation == "push":
        return skopeo.copy(
            f"oci:{stack.layout}:new",
            f"docker://{stack.registry}/{name}:{user}",
            dest_creds=stack.creds(user),
        )
    return skopeo.pull(stack.registry, name, "seed", f"oci:{into}:seed", stack.creds(user))


def _iam_allows(stack: Stack, user: str, operation: str, name: str) -> bool:
    """Dockgate's decision port, asked the ECR actions behind the operation, with the context
    the token door decides with for skopeo on loopback."""
    context = {
        "aws:SourceIp": "127.0.0.1",
        "aws:SecureTransport": "false",
        "aws:RequestedRegion": REGION,
    }
    with Client(stack.server.decision) as client:
        return all(
            client.authorize(USERS[user], action, repo_arn(name), context).allowed
            for action in SCOPE_ACTIONS[operation]
        )


@pytest.mark.parametrize("case", CASES, ids=[f"{u}-{o}-{n}" for u, o, n, _ in CASES])
def test_pushes_and_pulls_succeed_or_fail_as_iam_decides(
    stack: Stack, case: tuple[str, str, str, bool], tmp_path: Path
) -> None:
    user, operation, name, allowed = case
    assert _iam_allows(stack, user, operation, name) is allowed
    result = _run(stack, user, operation, name, tmp_path / "pulled")
    assert result.ok is allowed, result
    if not allowed:  # the token lacks the action: the registry refuses it
        assert "requested access to the resource is denied" in result.stderr, result
    if operation == "pull" and allowed:
        assert read_image(tmp_path / "pulled", "seed") == read_image(stack.layout, "seed")
    if operation == "push":
        assert (user in _stored_tags(stack, name)) is allowed


def _stored_tags(stack: Stack, name: str) -> list[str]:
    """The tags the registry holds for `name`, read with an admin's token."""
    token = stack.token("admin", f"repository:{name}:pull")["token"]
    status, _, body = request(
        stack.registry_port, "GET", f"/v2/{name}/tags/list", {"Authorization": f"Bearer {token}"}
    )
    assert status == 200, body
    tags: list[str] = json.loads(body)["tags"] or []
    return tags


def test_skopeo_login_checks_the_password_at_the_token_door(stack: Stack) -> None:
    skopeo = stack.skopeo("login")
    good = skopeo.run(
        "login",
        "--tls-verify=false",
        "--username",
        "AWS",
        "--password",
        stack.passwords["reader"],
        stack.registry,
    )
    assert good.ok and "Login Succeeded" in good.stdout, good
    bad = skopeo.run(
        "login",
        "--tls-verify=false",
        "--username",
        "AWS",
        "--password",
        "not-a-password",
        stack.registry,
    )
    assert not bad.ok, bad
    assert "invalid username/password" in bad.stderr, bad


# -- what a token opens -------------------------------------------------------------------------


def test_a_token_for_one_repository_does_not_open_another(stack: Stack) -> None:
    token = stack.token("pusher", "repository:team/app:pull")["token"]
    assert stack.registry_call("/v2/team/app/tags/list", token)[0] == 200
    # pusher may pull team/tools too, but this token was not issued for it
    status, challenge = stack.registry_call("/v2/team/tools/tags/list", token)
    assert status == 401 and INSUFFICIENT in challenge


def test_an_expired_token_is_refused_by_the_registry(stack: Stack) -> None:
    # a token issued 400 s ago lived 300 s: past the registry's 60 s of leeway
    try:
        stack.clock_offset.write_text("-400\n")
        wait_for(
            lambda: _issued_at(stack.token("reader")) < time.time() - 300,
            "the server's clock moved back",
        )
        token = stack.token("reader", "repository:team/app:pull")["token"]
    finally:
        stack.clock_offset.write_text("0\n")
    status, challenge = stack.registry_call("/v2/team/app/tags/list", token)
    assert status == 401 and INVALID in challenge
    wait_for(lambda: _issued_at(stack.token("reader")) > time.time() - 60, "the clock is back")
    fresh = stack.token("reader", "repository:team/app:pull")["token"]
    assert stack.registry_call("/v2/team/app/tags/list", fresh)[0] == 200


def _issued_at(answer: dict[str, Any]) -> int:
    claims = answer["token"].split(".")[1]
    iat: int = json.loads(base64.urlsafe_b64decode(claims + "=" * (-len(claims) % 4)))["iat"]
    return iat


def test_a_forged_token_is_refused_by_the_registry(stack: Stack) -> None:
    """reader's token with its claims rewritten to push to team/app keeps a signature that no
    longer matches; a token signed by a key outside the bundle is refused too."""
    header, claims, signature = stack.token("reader", "repository:team/app:pull")["token"].split(
        "."
    )
    decoded = json.loads(base64.urlsafe_b64decode(claims + "=" * (-len(claims) % 4)))
    decoded["access"] = [{"type": "repository", "name": "team/tools", "actions": ["pull"]}]
    rewritten = _b64url(json.dumps(decoded, separators=(",", ":")).encode())
    status, challenge = stack.registry_call(
        "/v2/team/tools/tags/list", f"{header}.{rewritten}.{signature}"
    )
    assert status == 401 and INVALID in challenge

    now = time.time()
    stranger = load_keyring([new_token_key("ES256", now)], now).signing
    assert stranger is not None
    foreign = sign_jwt(
        {**decoded, "iat": int(now), "nbf": int(now), "exp": int(now) + 300}, stranger
    )
    status, challenge = stack.registry_call("/v2/team/tools/tags/list", foreign)
    assert status == 401 and INVALID in challenge


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


# -- last: Dockgate stopped ---------------------------------------------------------------------


def test_with_dockgate_stopped_no_token_is_issued(stack: Stack, tmp_path: Path) -> None:
    """Runs last in this module: it stops the server the others use."""
    before = _run(stack, "reader", "pull", "team/app", tmp_path / "before")
    assert before.ok, before
    assert stack.server.stop(timeout=20) == 0
    with pytest.raises(OSError):
        request(stack.token_port, "GET", "/token")
    after = _run(stack, "reader", "pull", "team/app", tmp_path / "after")
    assert not after.ok, after
    # skopeo was sent to the realm for a token, and nobody answered there
    assert f"127.0.0.1:{stack.token_port}/token?" in after.stderr, after
    assert "connection refused" in after.stderr, after
    assert not (tmp_path / "after" / "index.json").exists()
