"""One registry HTTP call (Docker Registry V2 / OCI distribution) → the ECR IAM checks it needs."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from urllib.parse import parse_qsl, unquote_plus

from dockgate_server.policy.arn import is_account_id
from dockgate_server.policy.repository_name import is_repository_name

__all__ = [
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

_BATCH_GET_IMAGE = "ecr:BatchGetImage"
_PUT_IMAGE = "ecr:PutImage"
_BATCH_DELETE_IMAGE = "ecr:BatchDeleteImage"
_GET_DOWNLOAD_URL = "ecr:GetDownloadUrlForLayer"
_CHECK_LAYER = "ecr:BatchCheckLayerAvailability"
_INITIATE_UPLOAD = "ecr:InitiateLayerUpload"
_UPLOAD_PART = "ecr:UploadLayerPart"
_COMPLETE_UPLOAD = "ecr:CompleteLayerUpload"
_LIST_IMAGES = "ecr:ListImages"

_MANIFESTS = "/manifests/"
_UPLOADS = "/blobs/uploads/"
_BLOBS = "/blobs/"
_TAGS = "/tags/list"
_REFERRERS = "/referrers/"
_MARKERS = (_MANIFESTS, _UPLOADS, _BLOBS, _TAGS, _REFERRERS)
"""`/blobs/uploads/` before `/blobs/`: both start at the same place, the first found wins a tie"""

_Methods = Mapping[str, tuple[str, tuple[str, ...]]]
"""per route: method → (operation, actions); a method not listed is 405"""

_MANIFEST_METHODS: _Methods = {
    "GET": ("pull manifest", (_BATCH_GET_IMAGE,)),
    "HEAD": ("check manifest", (_BATCH_GET_IMAGE,)),
    "PUT": ("push manifest", (_PUT_IMAGE,)),
    "DELETE": ("delete manifest", (_BATCH_DELETE_IMAGE,)),
}
_BLOB_METHODS: _Methods = {
    "GET": ("pull blob", (_GET_DOWNLOAD_URL,)),
    "HEAD": ("check blob", (_CHECK_LAYER,)),
}
_UPLOAD_METHODS: _Methods = {
    "PATCH": ("upload chunk", (_UPLOAD_PART,)),
    # the final PUT may carry the last chunk; whether its body is empty is known only after it
    # is read, and the answer is needed before: so both are required, always (a deliberate choice)
    "PUT": ("finish upload", (_COMPLETE_UPLOAD, _UPLOAD_PART)),
    "GET": ("upload status", (_UPLOAD_PART,)),
    "DELETE": ("cancel upload", (_UPLOAD_PART,)),
}

_TAG_MAX = 128
_SHOWN_MAX = 100
"""user input quoted in a message at most, in characters: a hostile path can be megabytes"""
_LOWER_ALNUM = frozenset("abcdefghijklmnopqrstuvwxyz0123456789")
_LOWER_HEX = frozenset("0123456789abcdef")
_TAG_FIRST = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_")
_TAG_REST = _TAG_FIRST | frozenset(".-")
_UPLOAD_ID = _TAG_FIRST | frozenset(".-=")
"""distribution's upload id characters, `[a-zA-Z0-9-_.=]+`"""
_DIGEST_LENGTHS = {"sha256": 64, "sha512": 128}
"""the OCI-registered algorithms and the length of their lower-case hex encoding"""
_MOUNT_PARAMETERS = frozenset({"mount", "from"})
_GLOBAL_SUFFIX = ("amazonaws", "com")
_CHINA_SUFFIX = ("amazonaws", "com", "cn")
_PARTITIONS = (
    ("cn-", "aws-cn"),
    ("us-gov-", "aws-us-gov"),
    ("us-iso-", "aws-iso"),
    ("us-isob-", "aws-iso-b"),
    ("eu-isoe-", "aws-iso-e"),
    ("us-isof-", "aws-iso-f"),
    ("eusc-", "aws-eusc"),
)
"""Region prefix → partition; every other Region is in `aws`"""


@dataclass(frozen=True, slots=True)
class Registry:
    """Where the registry lives: its account and Region (and partition)."""

    account: str
    """12 digits"""
    region: str
    """e.g. `us-east-1`"""
    partition: str = "aws"

    def __post_init__(self) -> None:
        if not is_account_id(self.account):
            raise ValueError(f"registry account `{_shown(self.account)}` is not 12 digits")
        if not _is_region(self.region):
            raise ValueError(f"registry region `{_shown(self.region)}` is not a Region name")
        if not self.partition:
            raise ValueError("registry partition is empty")

    def repository_arn(self, name: str) -> str:
        return f"arn:{self.partition}:ecr:{self.region}:{self.account}:repository/{name}"


@dataclass(frozen=True, slots=True)
class Check:
    """One IAM question: may the caller perform `action` on `resource`?"""

    action: str
    """e.g. `ecr:BatchGetImage`"""
    resource: str
    """a repository ARN"""


class RouteKind(StrEnum):
    BASE = "base"
    """`GET /v2/` (and HEAD): credentials only, no IAM check"""
    REPOSITORY = "repository"
    """a repository-scoped call: every check must be Allowed"""
    CATALOG = "catalog"
    """`GET /v2/_catalog`: answered by filtering repositories per `ecr:DescribeRepositories`"""


@dataclass(frozen=True, slots=True)
class Route:
    """What one registry call needs: all `checks` Allowed, and how to treat a mount.

    A cross-repository mount (`POST …/blobs/uploads/?mount=DIGEST&from=SOURCE`) sets
    `mount_requested`. Its `checks` are those of the same call without the mount (what
    `route_request(strip_mount(target))` gives). `mount_checks` name the source side; they are
    empty when the mount cannot be checked: `from` is not a valid repository name, `mount` is not
    a valid digest, or either is missing or repeated. The caller forwards the call unchanged only
    when `mount_checks` is non-empty and every one is Allowed; otherwise it forwards
    `strip_mount(target)`, a plain upload, as ECR degrades a mount that cannot happen (202, never
    403). An invalid source is stripped rather than refused because the registry's own name
    grammar is wider than ECR's (distribution accepts `a__b`, `a--b`, `host:5000/a`): passed on,
    such a source would be mounted from without any check.
    """

    kind: RouteKind
    operation: str
    """short human name, e.g. `pull manifest`, `start upload`, for debug headers"""
    repository: str | None = None
    """the repository name, when repository-scoped"""
    checks: tuple[Check, ...] = ()
    """all must be Allowed"""
    mount_checks: tuple[Check, ...] = ()
    """cross-repository mount, the source side: if empty or any is not Allowed, strip the mount"""
    mount_requested: bool = False
    """the call has a `mount` or `from` query parameter (see the class docstring)"""


class RouteError(ValueError):
    """A call that cannot be routed: `status` is the HTTP status to answer, `code` the registry
    error code (distribution's, e.g. `NAME_INVALID`); the message is safe to show the client."""

    def __init__(self, message: str, status: int, code: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


def route_request(method: str, target: str, registry: Registry) -> Route:
    """The route of `method target`; `target` is the raw path and query, exactly as on the wire.

    Nothing is decoded before the path is split: a `%` anywhere in the path fails the part it is
    in (the registry would decode `%2F` into a `/` and see another repository).
    """
    verb = method.upper()
    path, _, query = target.partition("?")
    if path in ("/v2", "/v2/"):  # distribution redirects `/v2` to `/v2/`
        _require_method(verb, ("GET", "HEAD"), "the version check")
        return Route(RouteKind.BASE, "version check")
    if not path.startswith("/v2/"):
        raise RouteError(f"unknown registry path `{_shown(path)}`", 404, "NOT_FOUND")
    params = parse_qsl(query, keep_blank_values=True)
    rest = path[len("/v2/") :]
    if rest == "_catalog":
        _require_method(verb, ("GET",), "the catalog")
        _check_page_size(params)
        return Route(RouteKind.CATALOG, "list repositories")
    name, marker, tail = _split_path(rest, path)
    if marker == _MANIFESTS:
        operation, actions = _method_of(_MANIFEST_METHODS, verb, "a manifest")
        _check_name(name)
        _check_reference(tail)
        return _route(operation, name, actions, registry)
    if marker == _BLOBS:
        if verb == "DELETE":
            raise RouteError("deleting a blob is not supported", 405, "UNSUPPORTED")
        operation, actions = _method_of(_BLOB_METHODS, verb, "a blob")
        _check_name(name)
        _check_digest(tail, "blob")
        return _route(operation, name, actions, registry)
    if marker == _UPLOADS and not tail:
        _require_method(verb, ("POST",), "the upload collection")
        _check_name(name)
        return _route_start_upload(name, params, registry)
    if marker == _UPLOADS:
        operation, actions = _method_of(_UPLOAD_METHODS, verb, "an upload")
        _check_name(name)
        _check_upload_id(tail)
        if verb == "PUT":
            digest = _single(params, "digest", "DIGEST_INVALID")
            if digest is None:
                raise RouteError(
                    "finishing an upload needs a `digest` parameter", 400, "DIGEST_INVALID"
                )
            _check_digest(digest, "upload")
        return _route(operation, name, actions, registry)
    if marker == _TAGS:
        _require_method(verb, ("GET",), "the tag list")
        _check_name(name)
        _check_page_size(params)
        return _route("list tags", name, (_LIST_IMAGES,), registry)
    _require_method(verb, ("GET",), "the referrers list")  # `_split_path` leaves only referrers
    _check_name(name)
    _check_digest(tail, "referrers")
    return _route("list referrers", name, (_BATCH_GET_IMAGE,), registry)


def registry_from_host(host: str) -> Registry | None:
    """The registry a Host header names: `ACCOUNT.dkr.ecr.REGION.SUFFIX[:PORT]`, or None.

    Host names are case-insensitive. The partition follows the Region (`cn-…` is `aws-cn`,
    `us-gov-…` is `aws-us-gov`); the AWS suffixes must agree with it (`amazonaws.com.cn` only for
    China Regions), any other suffix (`localhost`, a test domain) is taken as it is.
    """
    if not host.isascii():  # before lower-casing: `\u212a` (Kelvin) lower-cases to `k`
        return None
    name, colon, port = host.lower().partition(":")
    if colon and not (port.isascii() and port.isdigit() and len(port) <= 5):
        return None
    labels = tuple(name.removesuffix(".").split("."))  # `host.` is the same host, fully qualified
    if len(labels) < 5 or labels[1:3] != ("dkr", "ecr"):
        return None
    account, region, suffix = labels[0], labels[3], labels[4:]
    if not (is_account_id(account) and _is_region(region) and all(map(_is_label, suffix))):
        return None
    partition = _partition_of(region)
    aws_suffix = suffix in (_CHINA_SUFFIX, _GLOBAL_SUFFIX)
    if aws_suffix and (suffix == _CHINA_SUFFIX) != (partition == "aws-cn"):
        return None
    return Registry(account, region, partition)


def registry_in(account: str, region: str) -> Registry:
    """The registry of `account` in `region`, in the partition the Region belongs to."""
    return Registry(account, region, _partition_of(region))


def host_key(host: str) -> str | None:
    """A Host header as a configured host map keys it: lower case, no trailing dot, any port kept.

    None when the text is no host name (`registry.example:5000`, `[::1]:5000`, `10.0.0.7`).
    """
    text = host.strip()
    if not text.isascii():  # before lower-casing: `\u212a` (Kelvin) lower-cases to `k`
        return None
    text = text.lower()
    if text.startswith("["):
        name, bracket, port = text[1:].partition("]")
        if not bracket or not _is_ipv6(name):
            return None
        name = f"[{name}]"
    else:
        name, colon, port = text.partition(":")
        port = colon + port
        name = name.removesuffix(".")  # `host.` is the same host, fully qualified
        if not all(map(_is_label, name.split("."))):
            return None
    if port and not (port[0] == ":" and port[1:].isdigit() and len(port) <= 6):
        return None
    return name + port


def host_without_port(key: str) -> str:
    """A `host_key` without its port: what a map entry written without one matches."""
    if key.startswith("["):
        return key[: key.index("]") + 1]
    return key.partition(":")[0]


def strip_mount(target: str) -> str:
    """`target` without its `mount` and `from` query parameters, the others kept as written.

    What a mount that may not happen degrades to: a plain start of an upload. A parameter counts
    by its decoded name (`mo%75nt` is `mount`), as the registry decodes it.
    """
    path, question, query = target.partition("?")
    if not question:
        return target
    kept = [
        piece
        for piece in query.split("&")
        if unquote_plus(piece.partition("=")[0]) not in _MOUNT_PARAMETERS
    ]
    if len(kept) == query.count("&") + 1:  # nothing to strip: the target as it came
        return target
    remaining = "&".join(kept)
    return f"{path}?{remaining}" if remaining else path


def is_digest(text: str) -> bool:
    """`sha256:` and 64, or `sha512:` and 128, lower-case hex digits."""
    algorithm, colon, encoded = text.partition(":")
    length = _DIGEST_LENGTHS.get(algorithm)
    return (
        bool(colon)
        and length is not None
        and len(encoded) == length
        and all(char in _LOWER_HEX for char in encoded)
    )


# -- helpers, in the order `route_request` calls them ---------------------------------------------


def _require_method(verb: str, allowed: tuple[str, ...], what: str) -> None:
    if verb not in allowed:
        raise RouteError(f"method `{_shown(verb)}` is not supported on {what}", 405, "UNSUPPORTED")


def _shown(text: str) -> str:
    """User input for a message: cut short, so a hostile path cannot fill a log."""
    return text if len(text) <= _SHOWN_MAX else f"{text[:_SHOWN_MAX]}…"


def _check_page_size(params: list[tuple[str, str]]) -> None:
    size = _single(params, "n", "PAGINATION_NUMBER_INVALID")
    if size is not None and not (size.isascii() and size.isdigit()):
        raise RouteError(
            f"query parameter `n` must be a non-negative integer, not `{_shown(size)}`",
            400,
            "PAGINATION_NUMBER_INVALID",
        )


def _single(params: list[tuple[str, str]], key: str, code: str) -> str | None:
    """The value of query parameter `key`, None if absent; refused when repeated (ambiguous)."""
    values = [value for name, value in params if name == key]
    if len(values) > 1:
        raise RouteError(f"query parameter `{key}` is repeated", 400, code)
    return values[0] if values else None


def _split_path(rest: str, path: str) -> tuple[str, str, str]:
    """(name, marker, tail) split at the last marker: names may hold `blobs` or `manifests`."""
    at = -1
    marker = ""
    for candidate in _MARKERS:
        found = rest.rfind(candidate)
        if found > at:
            at, marker = found, candidate
    tail = rest[at + len(marker) :]
    # every tail is one segment (a reference, digest or upload id) or nothing (tags, uploads)
    if at < 0 or "/" in tail or (marker == _TAGS and tail):
        raise RouteError(f"unknown registry path `{_shown(path)}`", 404, "NOT_FOUND")
    return rest[:at], marker, tail


def _method_of(methods: _Methods, verb: str, what: str) -> tuple[str, tuple[str, ...]]:
    _require_method(verb, tuple(methods), what)
    return methods[verb]


def _check_name(name: str) -> None:
    if not is_repository_name(name):
        raise RouteError(f"invalid repository name `{_shown(name)}`", 400, "NAME_INVALID")


def _check_reference(reference: str) -> None:
    """A manifest reference: a digest when it has a colon (tags cannot), else a tag."""
    if ":" in reference:
        _check_digest(reference, "manifest")
    elif not _is_tag(reference):
        raise RouteError(f"invalid manifest tag `{_shown(reference)}`", 400, "MANIFEST_INVALID")


def _is_tag(text: str) -> bool:
    """`[A-Za-z0-9_][A-Za-z0-9._-]{0,127}`"""
    return (
        0 < len(text) <= _TAG_MAX
        and text[0] in _TAG_FIRST
        and all(char in _TAG_REST for char in text[1:])
    )


def _check_digest(text: str, what: str) -> None:
    if not is_digest(text):
        raise RouteError(f"invalid {what} digest `{_shown(text)}`", 400, "DIGEST_INVALID")


def _check_upload_id(text: str) -> None:
    # `.` and `..` are made of allowed characters, but the registry would resolve them as a path
    if not text or text in (".", "..") or not all(char in _UPLOAD_ID for char in text):
        raise RouteError(f"invalid upload id `{_shown(text)}`", 400, "BLOB_UPLOAD_INVALID")


def _route(operation: str, name: str, actions: tuple[str, ...], registry: Registry) -> Route:
    resource = registry.repository_arn(name)
    checks = tuple(Check(action, resource) for action in actions)
    return Route(RouteKind.REPOSITORY, operation, name, checks)


def _route_start_upload(name: str, params: list[tuple[str, str]], registry: Registry) -> Route:
    operation = "start upload"
    actions: tuple[str, ...] = (_INITIATE_UPLOAD,)
    digest = _single(params, "digest", "DIGEST_INVALID")
    if digest is not None:
        # the body is the whole blob: initiate, upload and complete in one call (spec §3 row 7)
        _check_digest(digest, "upload")
        operation = "monolithic upload"
        actions = (_INITIATE_UPLOAD, _UPLOAD_PART, _COMPLETE_UPLOAD)
    route = _route(operation, name, actions, registry)
    if not any(key in _MOUNT_PARAMETERS for key, _ in params):
        return route
    source = _mount_source(params)
    # ECR: mounting needs ecr:GetDownloadUrlForLayer on the source repository (Blob mounting)
    mount_checks = (
        () if source is None else (Check(_GET_DOWNLOAD_URL, registry.repository_arn(source)),)
    )
    return Route(
        RouteKind.REPOSITORY,
        "mount blob",
        name,
        route.checks,
        mount_checks,
        mount_requested=True,
    )


def _mount_source(params: list[tuple[str, str]]) -> str | None:
    """The repository to mount from, when `mount` and `from` are each given once and valid."""
    mounts = [value for key, value in params if key == "mount"]
    sources = [value for key, value in params if key == "from"]
    if len(mounts) != 1 or len(sources) != 1:
        return None
    if not (is_digest(mounts[0]) and is_repository_name(sources[0])):
        return None
    return sources[0]


# -- host parsing ---------------------------------------------------------------------------------


def _is_region(text: str) -> bool:
    """`us-east-1`, `us-gov-west-1`, `eusc-de-east-1`: letter groups, then a number."""
    parts = text.split("-")
    return (
        len(parts) >= 3
        and all(part.isascii() and part.isalpha() and part.islower() for part in parts[:-1])
        and parts[-1].isascii()
        and parts[-1].isdigit()
    )


def _is_label(text: str) -> bool:
    return 0 < len(text) <= 63 and all(char in _LOWER_ALNUM or char == "-" for char in text)


def _is_ipv6(text: str) -> bool:
    try:
        ipaddress.IPv6Address(text)
    except ValueError:
        return False
    return True


def _partition_of(region: str) -> str:
    for prefix, partition in _PARTITIONS:
        if region.startswith(prefix):
            return partition
    return "aws"
