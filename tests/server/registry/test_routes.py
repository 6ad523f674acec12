"""Registry routes (registry-api-map §3, §5): each registry call → the ECR checks it needs."""

from __future__ import annotations

import pytest

from dockgate_server.registry import routes
from dockgate_server.registry.routes import (
    Check,
    Registry,
    Route,
    RouteError,
    RouteKind,
    is_digest,
    is_repository_name,
    registry_from_host,
    route_request,
    strip_mount,
)

ACCOUNT = "123456789012"
REGISTRY = Registry(ACCOUNT, "us-east-1")
DIGEST = "sha256:" + "0123456789abcdef" * 4
DIGEST_512 = "sha512:" + "0123456789abcdef" * 8
UUID = "8be4df61-93ca-11d2-aa0d-00e098032b8c"
STATE = "_state=eyJOYW1lIjoiYXBwIn0%3D"

GET_IMAGE = "ecr:BatchGetImage"
PUT_IMAGE = "ecr:PutImage"
DELETE_IMAGE = "ecr:BatchDeleteImage"
DOWNLOAD = "ecr:GetDownloadUrlForLayer"
CHECK_LAYER = "ecr:BatchCheckLayerAvailability"
INITIATE = "ecr:InitiateLayerUpload"
PART = "ecr:UploadLayerPart"
COMPLETE = "ecr:CompleteLayerUpload"
LIST_IMAGES = "ecr:ListImages"


def arn(name: str) -> str:
    return f"arn:aws:ecr:us-east-1:{ACCOUNT}:repository/{name}"


# (method, target, operation, repository, actions): registry-api-map §3 rows, then §5's skopeo calls
REPOSITORY_CASES = [
    # 2, 3: manifests by tag and by digest
    ("GET", "/v2/app/manifests/latest", "pull manifest", "app", (GET_IMAGE,)),
    ("GET", f"/v2/app/manifests/{DIGEST}", "pull manifest", "app", (GET_IMAGE,)),
    ("HEAD", "/v2/app/manifests/v1.2.3", "check manifest", "app", (GET_IMAGE,)),
    ("HEAD", f"/v2/app/manifests/{DIGEST_512}", "check manifest", "app", (GET_IMAGE,)),
    # 4, 5: blobs
    ("GET", f"/v2/app/blobs/{DIGEST}", "pull blob", "app", (DOWNLOAD,)),
    ("HEAD", f"/v2/app/blobs/{DIGEST}", "check blob", "app", (CHECK_LAYER,)),
    # 6, 7: start an upload; all of it in one POST
    ("POST", "/v2/app/blobs/uploads/", "start upload", "app", (INITIATE,)),
    (
        "POST",
        f"/v2/app/blobs/uploads/?digest={DIGEST}",
        "monolithic upload",
        "app",
        (INITIATE, PART, COMPLETE),
    ),
    # 8-11: an upload session
    ("PATCH", f"/v2/app/blobs/uploads/{UUID}", "upload chunk", "app", (PART,)),
    (
        "PUT",
        f"/v2/app/blobs/uploads/{UUID}?digest={DIGEST}",
        "finish upload",
        "app",
        (COMPLETE, PART),
    ),
    ("GET", f"/v2/app/blobs/uploads/{UUID}", "upload status", "app", (PART,)),
    ("DELETE", f"/v2/app/blobs/uploads/{UUID}", "cancel upload", "app", (PART,)),
    # 13, 14: push and delete manifests (by digest; by tag the same action)
    ("PUT", "/v2/app/manifests/latest", "push manifest", "app", (PUT_IMAGE,)),
    ("DELETE", f"/v2/app/manifests/{DIGEST}", "delete manifest", "app", (DELETE_IMAGE,)),
    ("DELETE", "/v2/app/manifests/latest", "delete manifest", "app", (DELETE_IMAGE,)),
    # 16, 17: tags and referrers, with and without their parameters
    ("GET", "/v2/app/tags/list", "list tags", "app", (LIST_IMAGES,)),
    ("GET", "/v2/app/tags/list?n=10&last=v1", "list tags", "app", (LIST_IMAGES,)),
    ("GET", f"/v2/app/referrers/{DIGEST}", "list referrers", "app", (GET_IMAGE,)),
    (
        "GET",
        f"/v2/app/referrers/{DIGEST}?artifactType=application%2Fvnd.example.sbom",
        "list referrers",
        "app",
        (GET_IMAGE,),
    ),
    # §5 skopeo push: upload URLs carry distribution's `_state`
    ("PATCH", f"/v2/team/app/blobs/uploads/{UUID}?{STATE}", "upload chunk", "team/app", (PART,)),
    (
        "PUT",
        f"/v2/team/app/blobs/uploads/{UUID}?{STATE}&digest={DIGEST.replace(':', '%3A')}",
        "finish upload",
        "team/app",
        (COMPLETE, PART),
    ),
    # §5: nginx passes the original method as written; methods compare upper-case
    ("delete", f"/v2/app/manifests/{DIGEST}", "delete manifest", "app", (DELETE_IMAGE,)),
    ("get", "/v2/app/tags/list", "list tags", "app", (LIST_IMAGES,)),
    # names with slashes, separators, and segments named like the markers: split at the last
    ("GET", "/v2/a/b/c/d/manifests/latest", "pull manifest", "a/b/c/d", (GET_IMAGE,)),
    ("GET", "/v2/my.team_x/app-1/manifests/1.0", "pull manifest", "my.team_x/app-1", (GET_IMAGE,)),
    ("GET", "/v2/team/blobs/manifests/x", "pull manifest", "team/blobs", (GET_IMAGE,)),
    ("GET", f"/v2/team/manifests/blobs/{DIGEST}", "pull blob", "team/manifests", (DOWNLOAD,)),
    ("POST", "/v2/blobs/uploads/blobs/uploads/", "start upload", "blobs/uploads", (INITIATE,)),
    ("GET", "/v2/tags/list/tags/list", "list tags", "tags/list", (LIST_IMAGES,)),
    ("GET", "/v2/x/tags/list/manifests/v1", "pull manifest", "x/tags/list", (GET_IMAGE,)),
    ("GET", f"/v2/referrers/referrers/{DIGEST}", "list referrers", "referrers", (GET_IMAGE,)),
    # references: the longest tag; tags may start with `_` and hold `.`/`-`
    ("GET", f"/v2/app/manifests/{'T' * 128}", "pull manifest", "app", (GET_IMAGE,)),
    ("GET", "/v2/app/manifests/_a.b-C", "pull manifest", "app", (GET_IMAGE,)),
]


@pytest.mark.parametrize(("method", "target", "operation", "name", "actions"), REPOSITORY_CASES)
def test_repository_route(
    method: str, target: str, operation: str, name: str, actions: tuple[str, ...]
) -> None:
    route = route_request(method, target, REGISTRY)
    checks = tuple(Check(action, arn(name)) for action in actions)
    assert route == Route(RouteKind.REPOSITORY, operation, name, checks)


@pytest.mark.parametrize(
    ("method", "target"),
    [("GET", "/v2/"), ("HEAD", "/v2/"), ("GET", "/v2"), ("head", "/v2"), ("GET", "/v2/?x=1")],
)
def test_version_check_needs_no_check(method: str, target: str) -> None:
    assert route_request(method, target, REGISTRY) == Route(RouteKind.BASE, "version check")


@pytest.mark.parametrize(
    "target", ["/v2/_catalog", "/v2/_catalog?n=100", "/v2/_catalog?n=5&last=a/b"]
)
def test_catalog(target: str) -> None:
    assert route_request("GET", target, REGISTRY) == Route(RouteKind.CATALOG, "list repositories")


def test_partition_and_region_come_from_the_registry() -> None:
    china = Registry("210987654321", "cn-north-1", "aws-cn")
    route = route_request("GET", "/v2/app/manifests/latest", china)
    assert route.checks == (
        Check(GET_IMAGE, "arn:aws-cn:ecr:cn-north-1:210987654321:repository/app"),
    )


# (target, source): a mount from a valid source checks the source; the target side is row 6 or 7
MOUNT_CASES = [
    (f"/v2/app/blobs/uploads/?mount={DIGEST}&from=base", "base"),
    (f"/v2/app/blobs/uploads/?from=team/base&mount={DIGEST}", "team/base"),
    (f"/v2/app/blobs/uploads/?mount={DIGEST.replace(':', '%3A')}&from=team%2Fbase", "team/base"),
    (f"/v2/app/blobs/uploads/?mount={DIGEST}&from=app", "app"),
]


@pytest.mark.parametrize(("target", "source"), MOUNT_CASES)
def test_mount_checks_the_source(target: str, source: str) -> None:
    route = route_request("POST", target, REGISTRY)
    assert route == Route(
        RouteKind.REPOSITORY,
        "mount blob",
        "app",
        (Check(INITIATE, arn("app")),),
        (Check(DOWNLOAD, arn(source)),),
        mount_requested=True,
    )


# a mount that cannot be checked: no mount checks, so the caller strips it (a plain upload)
UNCHECKABLE_MOUNTS = [
    f"/v2/app/blobs/uploads/?mount={DIGEST}&from=Team/Base",  # ECR's grammar is stricter
    f"/v2/app/blobs/uploads/?mount={DIGEST}&from=a__b",  # distribution accepts this one
    f"/v2/app/blobs/uploads/?mount={DIGEST}&from=localhost:5000/base",
    f"/v2/app/blobs/uploads/?mount={DIGEST}&from=",
    f"/v2/app/blobs/uploads/?mount={DIGEST}",
    "/v2/app/blobs/uploads/?from=base",
    "/v2/app/blobs/uploads/?mount=sha256:abc&from=base",
    f"/v2/app/blobs/uploads/?mount={DIGEST}&from=base&from=other",
    f"/v2/app/blobs/uploads/?mount={DIGEST}&mount={DIGEST}&from=base",
    "/v2/app/blobs/uploads/?mount&from",
]


@pytest.mark.parametrize("target", UNCHECKABLE_MOUNTS)
def test_uncheckable_mount_has_no_mount_checks(target: str) -> None:
    route = route_request("POST", target, REGISTRY)
    assert route.mount_requested
    assert route.mount_checks == ()
    assert route.checks == (Check(INITIATE, arn("app")),)
    assert route_request("POST", strip_mount(target), REGISTRY) == Route(
        RouteKind.REPOSITORY, "start upload", "app", (Check(INITIATE, arn("app")),)
    )


def test_mount_with_digest_keeps_the_monolithic_checks() -> None:
    target = f"/v2/app/blobs/uploads/?digest={DIGEST}&mount={DIGEST}&from=base"
    route = route_request("POST", target, REGISTRY)
    assert route.checks == tuple(Check(a, arn("app")) for a in (INITIATE, PART, COMPLETE))
    assert route.mount_checks == (Check(DOWNLOAD, arn("base")),)
    assert route_request("POST", strip_mount(target), REGISTRY).checks == route.checks


def test_only_mounts_request_a_mount() -> None:
    for target in ["/v2/app/blobs/uploads/", f"/v2/app/blobs/uploads/?digest={DIGEST}"]:
        assert not route_request("POST", target, REGISTRY).mount_requested


# (method, target, status, code)
ERROR_CASES = [
    # unsupported methods and calls (405)
    ("DELETE", f"/v2/app/blobs/{DIGEST}", 405, "UNSUPPORTED"),
    ("PUT", f"/v2/app/blobs/{DIGEST}", 405, "UNSUPPORTED"),
    ("POST", "/v2/app/manifests/latest", 405, "UNSUPPORTED"),
    ("PATCH", "/v2/app/manifests/latest", 405, "UNSUPPORTED"),
    ("GET", "/v2/app/blobs/uploads/", 405, "UNSUPPORTED"),
    ("PUT", "/v2/app/blobs/uploads/", 405, "UNSUPPORTED"),
    ("POST", f"/v2/app/blobs/uploads/{UUID}", 405, "UNSUPPORTED"),
    ("HEAD", f"/v2/app/blobs/uploads/{UUID}", 405, "UNSUPPORTED"),
    ("HEAD", "/v2/app/tags/list", 405, "UNSUPPORTED"),
    ("DELETE", "/v2/app/tags/list", 405, "UNSUPPORTED"),
    ("HEAD", f"/v2/app/referrers/{DIGEST}", 405, "UNSUPPORTED"),
    ("POST", "/v2/", 405, "UNSUPPORTED"),
    ("DELETE", "/v2", 405, "UNSUPPORTED"),
    ("HEAD", "/v2/_catalog", 405, "UNSUPPORTED"),
    ("POST", "/v2/_catalog", 405, "UNSUPPORTED"),
    ("GETX", "/v2/app/manifests/latest", 405, "UNSUPPORTED"),
    ("", "/v2/app/manifests/latest", 405, "UNSUPPORTED"),
    # `/blobs/uploads` without its slash is a blob named `uploads`: no POST there
    ("POST", "/v2/app/blobs/uploads", 405, "UNSUPPORTED"),
    # unknown paths (404)
    ("GET", "/", 404, "NOT_FOUND"),
    ("GET", "", 404, "NOT_FOUND"),
    ("GET", "/v1/app/manifests/latest", 404, "NOT_FOUND"),
    ("GET", "/v2app/manifests/latest", 404, "NOT_FOUND"),
    ("GET", "v2/app/manifests/latest", 404, "NOT_FOUND"),
    ("GET", "http://host/v2/app/manifests/latest", 404, "NOT_FOUND"),
    ("GET", "/v2/app", 404, "NOT_FOUND"),
    ("GET", "/v2/app/manifests", 404, "NOT_FOUND"),
    ("GET", "/v2/app/tags/list/", 404, "NOT_FOUND"),
    ("GET", "/v2/app/tags/listing", 404, "NOT_FOUND"),
    ("GET", "/v2/app/manifests/a/b", 404, "NOT_FOUND"),
    ("GET", f"/v2/app/blobs/uploads/{UUID}/x", 404, "NOT_FOUND"),
    ("GET", "/v2/_catalog/", 404, "NOT_FOUND"),
    ("GET", "/v2/_catalog/app/manifests/v1", 400, "NAME_INVALID"),
    ("GET", "/v2/%76%32/app/manifests/latest", 400, "NAME_INVALID"),
    ("GET", "/v2%2Fapp/manifests/latest", 404, "NOT_FOUND"),
    # invalid names (400): checked on the raw bytes
    ("GET", "/v2/team%2Fapp/manifests/latest", 400, "NAME_INVALID"),
    ("GET", "/v2/team%2fapp/manifests/latest", 400, "NAME_INVALID"),
    ("GET", "/v2/%61pp/manifests/latest", 400, "NAME_INVALID"),
    ("POST", "/v2/team%2Fapp/blobs/uploads/", 400, "NAME_INVALID"),
    ("GET", "/v2/App/manifests/latest", 400, "NAME_INVALID"),
    ("GET", "/v2/team/App/manifests/latest", 400, "NAME_INVALID"),
    ("GET", "/v2/-app/manifests/latest", 400, "NAME_INVALID"),
    ("GET", "/v2/app-/manifests/latest", 400, "NAME_INVALID"),
    ("GET", "/v2/team/.app/manifests/latest", 400, "NAME_INVALID"),
    ("GET", "/v2/a--b/manifests/latest", 400, "NAME_INVALID"),
    ("GET", "/v2/a__b/manifests/latest", 400, "NAME_INVALID"),
    ("GET", "/v2/a.-b/manifests/latest", 400, "NAME_INVALID"),
    ("GET", "/v2/team//app/manifests/latest", 400, "NAME_INVALID"),
    ("GET", "/v2//app/manifests/latest", 400, "NAME_INVALID"),
    ("GET", "/v2/app//manifests/latest", 400, "NAME_INVALID"),
    ("GET", "/v2/team/../app/manifests/latest", 400, "NAME_INVALID"),
    ("GET", "/v2/./app/manifests/latest", 400, "NAME_INVALID"),
    ("GET", "/v2/a/manifests/latest", 400, "NAME_INVALID"),
    ("GET", f"/v2/{'a' * 257}/manifests/latest", 400, "NAME_INVALID"),
    ("GET", "/v2//manifests/latest", 400, "NAME_INVALID"),
    ("GET", "/v2/app:1/manifests/latest", 400, "NAME_INVALID"),
    ("GET", "/v2/app /manifests/latest", 400, "NAME_INVALID"),
    ("GET", "/v2/\u0430pp/manifests/latest", 400, "NAME_INVALID"),  # Cyrillic a
    ("GET", "/v2/app\u00b2/manifests/latest", 400, "NAME_INVALID"),  # a digit to isalnum
    ("GET", "/v2/_catalog/manifests/latest", 400, "NAME_INVALID"),
    # references (400)
    ("GET", "/v2/app/manifests/", 400, "MANIFEST_INVALID"),
    ("GET", "/v2/app/manifests/.hidden", 400, "MANIFEST_INVALID"),
    ("GET", "/v2/app/manifests/-x", 400, "MANIFEST_INVALID"),
    ("GET", f"/v2/app/manifests/{'T' * 129}", 400, "MANIFEST_INVALID"),
    ("GET", "/v2/app/manifests/v1%2F..", 400, "MANIFEST_INVALID"),
    ("GET", "/v2/app/manifests/v1#x", 400, "MANIFEST_INVALID"),
    ("PUT", "/v2/app/manifests/l\u00e4test", 400, "MANIFEST_INVALID"),
    ("GET", "/v2/app/manifests/sha256:abc", 400, "DIGEST_INVALID"),
    ("GET", f"/v2/app/manifests/{DIGEST.upper()}", 400, "DIGEST_INVALID"),
    ("GET", f"/v2/app/manifests/md5:{'0' * 32}", 400, "DIGEST_INVALID"),
    ("GET", f"/v2/app/manifests/{DIGEST}0", 400, "DIGEST_INVALID"),
    ("GET", "/v2/app/blobs/latest", 400, "DIGEST_INVALID"),
    ("GET", "/v2/app/blobs/", 400, "DIGEST_INVALID"),
    ("HEAD", f"/v2/app/blobs/{DIGEST.replace(':', '%3A')}", 400, "DIGEST_INVALID"),
    ("GET", "/v2/app/blobs/uploads", 400, "DIGEST_INVALID"),
    ("GET", "/v2/app/referrers/latest", 400, "DIGEST_INVALID"),
    ("GET", f"/v2/app/referrers/sha512:{'0' * 64}", 400, "DIGEST_INVALID"),
    # upload ids (400)
    ("PATCH", "/v2/app/blobs/uploads/..", 400, "BLOB_UPLOAD_INVALID"),
    ("PATCH", "/v2/app/blobs/uploads/.", 400, "BLOB_UPLOAD_INVALID"),
    ("PATCH", "/v2/app/blobs/uploads/a%2F..", 400, "BLOB_UPLOAD_INVALID"),
    ("GET", "/v2/app/blobs/uploads/a b", 400, "BLOB_UPLOAD_INVALID"),
    # query parameters (400)
    ("PUT", f"/v2/app/blobs/uploads/{UUID}", 400, "DIGEST_INVALID"),
    ("PUT", f"/v2/app/blobs/uploads/{UUID}?digest=", 400, "DIGEST_INVALID"),
    ("PUT", f"/v2/app/blobs/uploads/{UUID}?digest=sha256:00", 400, "DIGEST_INVALID"),
    (
        "PUT",
        f"/v2/app/blobs/uploads/{UUID}?digest={DIGEST}&digest={DIGEST_512}",
        400,
        "DIGEST_INVALID",
    ),
    ("POST", "/v2/app/blobs/uploads/?digest=sha256:00", 400, "DIGEST_INVALID"),
    ("POST", "/v2/app/blobs/uploads/?digest=", 400, "DIGEST_INVALID"),
    ("POST", f"/v2/app/blobs/uploads/?digest={DIGEST}&digest={DIGEST}", 400, "DIGEST_INVALID"),
    ("GET", "/v2/app/tags/list?n=-1", 400, "PAGINATION_NUMBER_INVALID"),
    ("GET", "/v2/app/tags/list?n=ten", 400, "PAGINATION_NUMBER_INVALID"),
    ("GET", "/v2/app/tags/list?n=1&n=2", 400, "PAGINATION_NUMBER_INVALID"),
    ("GET", "/v2/_catalog?n=", 400, "PAGINATION_NUMBER_INVALID"),
    ("GET", "/v2/_catalog?n=\u0661", 400, "PAGINATION_NUMBER_INVALID"),  # Arabic-Indic 1
]


@pytest.mark.parametrize(("method", "target", "status", "code"), ERROR_CASES)
def test_unroutable_call(method: str, target: str, status: int, code: str) -> None:
    with pytest.raises(RouteError) as raised:
        route_request(method, target, REGISTRY)
    assert (raised.value.status, raised.value.code) == (status, code)
    message = str(raised.value)
    assert message[:1].islower()
    assert not message.endswith(".")


def test_error_message_quotes_input_and_stays_short() -> None:
    with pytest.raises(RouteError, match=r"^invalid repository name `App`$"):
        route_request("GET", "/v2/App/manifests/latest", REGISTRY)
    with pytest.raises(RouteError) as raised:
        route_request("GET", "/x" * 100_000, REGISTRY)
    assert len(str(raised.value)) < 200
    assert isinstance(raised.value, ValueError)


def test_hostile_names_finish() -> None:
    """`a-a-a-…-a!` makes the name pattern, as a backtracking regex, take exponential time."""
    for hostile in ["a-" * 127 + "!", "a-" * 50_000 + "!", ("a." * 40 + "/") * 3 + "a-" * 20 + "/"]:
        assert not is_repository_name(hostile)
        with pytest.raises(RouteError, match="invalid repository name"):
            route_request("GET", f"/v2/{hostile}/manifests/latest", REGISTRY)
    longest = "/".join(["a" * 127, "b-c" + "d" * 125])
    assert len(longest) == 256
    assert is_repository_name(longest)
    assert is_repository_name("a-" * 127 + "a")


@pytest.mark.parametrize(
    ("name", "valid"),
    [
        ("ab", True),
        ("a1", True),
        ("a/b", True),
        ("a.b_c-d/e", True),
        ("0/9", True),
        ("a", False),
        ("", False),
        ("a/", False),
        ("/ab", False),
        ("a_", False),
        ("a..b", False),
        ("a._b", False),
        ("aB", False),
        ("a%2fb", False),
        ("a" * 256, True),
        ("a" * 257, False),
    ],
)
def test_is_repository_name(name: str, valid: bool) -> None:
    assert is_repository_name(name) is valid


@pytest.mark.parametrize(
    ("text", "valid"),
    [
        (DIGEST, True),
        (DIGEST_512, True),
        ("sha256:" + "0" * 63, False),
        ("sha256:" + "0" * 65, False),
        ("sha256:" + "G" * 64, False),
        ("sha256:" + "A" * 64, False),
        ("SHA256:" + "0" * 64, False),
        ("sha512:" + "0" * 64, False),
        ("blake3:" + "0" * 64, False),
        ("sha256" + "0" * 64, False),
        ("", False),
    ],
)
def test_is_digest(text: str, valid: bool) -> None:
    assert is_digest(text) is valid


# (target, stripped)
STRIP_CASES = [
    (f"/v2/app/blobs/uploads/?mount={DIGEST}&from=base", "/v2/app/blobs/uploads/"),
    (f"/v2/app/blobs/uploads/?from=base&mount={DIGEST}", "/v2/app/blobs/uploads/"),
    (
        f"/v2/app/blobs/uploads/?a=1&mount={DIGEST}&b=%2F&from=base&c",
        "/v2/app/blobs/uploads/?a=1&b=%2F&c",
    ),
    (
        f"/v2/app/blobs/uploads/?digest={DIGEST}&mount={DIGEST}&from=base",
        f"/v2/app/blobs/uploads/?digest={DIGEST}",
    ),
    ("/v2/app/blobs/uploads/?mo%75nt=x&%66rom=y&z=1", "/v2/app/blobs/uploads/?z=1"),
    ("/v2/app/blobs/uploads/?mount&from=&mount=a", "/v2/app/blobs/uploads/"),
    ("/v2/app/blobs/uploads/?mounted=1&fromage=2", "/v2/app/blobs/uploads/?mounted=1&fromage=2"),
    ("/v2/app/blobs/uploads/", "/v2/app/blobs/uploads/"),
    ("/v2/app/blobs/uploads/?", "/v2/app/blobs/uploads/?"),
    ("/v2/app/blobs/uploads/?x=1&&y=2", "/v2/app/blobs/uploads/?x=1&&y=2"),
]


@pytest.mark.parametrize(("target", "stripped"), STRIP_CASES)
def test_strip_mount(target: str, stripped: str) -> None:
    assert strip_mount(target) == stripped


# (host, registry or None)
HOST_CASES: list[tuple[str, Registry | None]] = [
    (f"{ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com", Registry(ACCOUNT, "us-east-1")),
    (f"{ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com:443", Registry(ACCOUNT, "us-east-1")),
    (f"{ACCOUNT}.dkr.ecr.eu-west-1.localhost:5000", Registry(ACCOUNT, "eu-west-1")),
    (f"{ACCOUNT}.DKR.ECR.US-EAST-1.AmazonAWS.com", Registry(ACCOUNT, "us-east-1")),
    (f"{ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com.", Registry(ACCOUNT, "us-east-1")),
    (
        f"{ACCOUNT}.dkr.ecr.cn-north-1.amazonaws.com.cn",
        Registry(ACCOUNT, "cn-north-1", "aws-cn"),
    ),
    (
        f"{ACCOUNT}.dkr.ecr.cn-northwest-1.amazonaws.com.cn:8443",
        Registry(ACCOUNT, "cn-northwest-1", "aws-cn"),
    ),
    (
        f"{ACCOUNT}.dkr.ecr.us-gov-west-1.amazonaws.com",
        Registry(ACCOUNT, "us-gov-west-1", "aws-us-gov"),
    ),
    (f"{ACCOUNT}.dkr.ecr.cn-north-1.test", Registry(ACCOUNT, "cn-north-1", "aws-cn")),
    (f"{ACCOUNT}.dkr.ecr.ap-southeast-4.example.internal", Registry(ACCOUNT, "ap-southeast-4")),
    # not a registry host
    ("", None),
    ("localhost", None),
    ("localhost:5000", None),
    ("127.0.0.1:5000", None),
    ("[::1]:5000", None),
    ("api.ecr.us-east-1.amazonaws.com", None),
    (f"{ACCOUNT}.dkr.ecr.us-east-1", None),
    (f"{ACCOUNT}.dkr.ecr.us-east-1.", None),
    (f"{ACCOUNT}.dkr.ecr-fips.us-east-1.amazonaws.com", None),
    (f"{ACCOUNT}.ecr.dkr.us-east-1.amazonaws.com", None),
    (f"x{ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com", None),
    ("12345678901.dkr.ecr.us-east-1.amazonaws.com", None),
    ("1234567890123.dkr.ecr.us-east-1.amazonaws.com", None),
    (f"{ACCOUNT}.dkr.ecr.useast1.amazonaws.com", None),
    (f"{ACCOUNT}.dkr.ecr.us-east-x.amazonaws.com", None),
    (f"{ACCOUNT}.dkr.ecr.us--1.amazonaws.com", None),
    (f"{ACCOUNT}.dkr.ecr.us-east-1.amazonaws..com", None),
    (f"{ACCOUNT}.dkr.ecr.us-east-1.amazon_aws.com", None),
    (f"{ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com:", None),
    (f"{ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com:https", None),
    (f"{ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com:123456", None),
    (f"{ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com:80:80", None),
    (f"{ACCOUNT}.d\u212ar.ecr.us-east-1.amazonaws.com", None),  # Kelvin sign lower-cases to k
    # the AWS suffixes must agree with the Region's partition
    (f"{ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com.cn", None),
    (f"{ACCOUNT}.dkr.ecr.cn-north-1.amazonaws.com", None),
]


@pytest.mark.parametrize(("host", "expected"), HOST_CASES)
def test_registry_from_host(host: str, expected: Registry | None) -> None:
    assert registry_from_host(host) == expected


def test_registry() -> None:
    registry = Registry(ACCOUNT, "eu-west-1")
    assert registry.partition == "aws"
    assert registry.repository_arn("team/app") == (
        f"arn:aws:ecr:eu-west-1:{ACCOUNT}:repository/team/app"
    )
    assert Registry(ACCOUNT, "cn-north-1", "aws-cn").repository_arn("app") == (
        f"arn:aws-cn:ecr:cn-north-1:{ACCOUNT}:repository/app"
    )


@pytest.mark.parametrize(
    ("account", "region", "partition"),
    [("1234", "us-east-1", "aws"), (ACCOUNT, "", "aws"), (ACCOUNT, "us-east-1", "")],
)
def test_registry_refuses_bad_parts(account: str, region: str, partition: str) -> None:
    with pytest.raises(ValueError, match=r"^registry "):
        Registry(account, region, partition)


def test_route_defaults() -> None:
    route = Route(RouteKind.BASE, "version check")
    assert (route.repository, route.checks, route.mount_checks, route.mount_requested) == (
        None,
        (),
        (),
        False,
    )
    assert [kind.value for kind in RouteKind] == ["base", "repository", "catalog"]


def test_public_names() -> None:
    assert routes.__all__ == [
        "Check",
        "Registry",
        "Route",
        "RouteError",
        "RouteKind",
        "host_key",
        "host_without_port",
        "is_digest",
        "is_repository_name",
        "registry_from_host",
        "registry_in",
        "route_request",
        "strip_mount",
    ]


@pytest.mark.parametrize(
    ("host", "key", "without_port"),
    [
        ("registry.example", "registry.example", "registry.example"),
        ("Registry.EXAMPLE.", "registry.example", "registry.example"),
        (" registry.example:5000 ", "registry.example:5000", "registry.example"),
        ("10.0.0.7:80", "10.0.0.7:80", "10.0.0.7"),
        ("[::1]:5000", "[::1]:5000", "[::1]"),
        ("[2001:DB8::1]", "[2001:db8::1]", "[2001:db8::1]"),
        ("localhost", "localhost", "localhost"),
    ],
)
def test_host_key(host: str, key: str, without_port: str) -> None:
    assert routes.host_key(host) == key
    assert routes.host_without_port(key) == without_port


@pytest.mark.parametrize(
    "host",
    [
        "",
        ".",
        "registry..example",
        "registry_example",
        "registry example",
        "registry.example:",
        "registry.example:port",
        "registry.example:1234567",
        "registry.example/v2",
        "user@registry.example",
        "[::1",
        "[not-an-address]:5000",
        "::1",
        "\u212aey.example",
        "r\u00e9gistry.example",
    ],
)
def test_host_key_refuses_what_is_no_host(host: str) -> None:
    assert routes.host_key(host) is None


@pytest.mark.parametrize(
    ("region", "partition"),
    [("us-east-1", "aws"), ("cn-north-1", "aws-cn"), ("us-gov-west-1", "aws-us-gov")],
)
def test_registry_in_takes_the_partition_of_its_region(region: str, partition: str) -> None:
    assert routes.registry_in(ACCOUNT, region) == Registry(ACCOUNT, region, partition)


def test_registry_in_validates_account_and_region() -> None:
    with pytest.raises(ValueError, match="not 12 digits"):
        routes.registry_in("1234", "us-east-1")
    with pytest.raises(ValueError, match="not a Region name"):
        routes.registry_in(ACCOUNT, "useast1")
