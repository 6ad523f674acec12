"""A typed request: the caller, the action, the resource, and the context its conditions read."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import NamedTuple

from dockgate_server.conditions.keys import Context, ContextValue, normalize_value
from dockgate_server.policy.arn import Arn, split_arn
from dockgate_server.policy.principal import Caller, CallerKind, parse_caller
from dockgate_server.policy.repository_name import is_repository_name, repository_name_of

__all__ = [
    "MAX_CONTEXT_BYTES",
    "MAX_CONTEXT_KEYS",
    "MAX_CONTEXT_VALUES",
    "ContextTooLargeError",
    "RawContext",
    "Request",
    "RequestError",
    "Target",
    "assemble_request",
    "build_request",
    "check_target",
    "encoded_size",
    "is_store_key",
    "normalize_context",
    "parse_principal",
    "parse_target",
]

RawContext = Mapping[str, str | Sequence[str]]

MAX_CONTEXT_KEYS = 256
MAX_CONTEXT_VALUES = 1024
"""values over all keys: an empty string costs nothing in bytes but still costs a conversion"""
MAX_CONTEXT_BYTES = 64 * 1024
"""UTF-8 bytes of every key and value together"""

_STORE_KEYS = frozenset(
    {
        "aws:principalarn",
        "aws:principalaccount",
        "aws:principaltype",
        "aws:principalisawsservice",
        "aws:principalservicename",
        "aws:username",
        "aws:principalorgid",
        "aws:principalorgpaths",
        "aws:resourceaccount",
        "aws:resourceorgid",
        "aws:resourceorgpaths",
    }
)
"""keys the store and the principal's ARN define on a request decided against the store"""
_STORE_PREFIXES = ("aws:resourcetag/", "ecr:resourcetag/", "aws:principaltag/")
_SESSION_KEYS = frozenset({"aws:tokenissuetime", "aws:sourceidentity"})
"""defined by the store for a session Dockgate issued; a caller's own for any other session"""
_PRINCIPAL_TAG = "aws:principaltag/"


class RequestError(ValueError):
    """A request that cannot be decided: a malformed principal, action, resource or context.

    `field` names the part at fault, so an edge can say which without parsing the message.
    """

    def __init__(self, message: str, field: str = "request") -> None:
        super().__init__(message)
        self.field = field


class ContextTooLargeError(RequestError):
    """A context past one of the bounds: refused before it is converted any further."""

    def __init__(self, message: str) -> None:
        super().__init__(message, "context")


@dataclass(frozen=True, slots=True)
class Request:
    caller: Caller
    action: str
    service: str
    """the action's service prefix, lower-cased"""
    action_name: str
    """the action's name, lower-cased (actions match case-insensitively)"""
    resource: str
    resource_arn: Arn | None
    """None for `*`, an action that takes no resource"""
    resource_account: str | None
    context: Context
    ignored: tuple[str, ...] = ()
    """context keys the caller gave that the store defines: their values were not used"""

    @property
    def is_cross_account(self) -> bool:
        account = self.caller.account
        return (
            account is not None
            and self.resource_account is not None
            and (account != self.resource_account)
        )


def build_request(
    principal: str | Caller,
    action: str,
    resource: str,
    context: RawContext | None = None,
    *,
    principal_tags: Mapping[str, str] | None = None,
    resource_tags: Mapping[str, str] | None = None,
    principal_arn: str | None = None,
    store_keys: Mapping[str, ContextValue] | None = None,
    from_store: bool = False,
    issued_session: bool = False,
) -> Request:
    """Validate the parts and derive the keys AWS would set (semantics §6.3); given keys win,
    unless `from_store`.

    `principal_arn` overrides the derived `aws:PrincipalArn` where the store knows better (a
    session's role ARN with its path); `store_keys` are further keys the store knows (the
    organization of the caller and of the resource). `from_store`: the request is decided against
    the store, which defines the principal's and the resource's keys (`is_store_key`), so a value
    the caller gives for one of them is ignored and named in `Request.ignored`; a session Dockgate
    did not issue (`issued_session` False) still takes its session tags from the context.
    """
    caller = principal if isinstance(principal, Caller) else parse_principal(principal)
    target = parse_target(action, resource)
    return assemble_request(
        caller,
        action,
        resource,
        target,
        normalize_context(context) if context else {},
        principal_tags=principal_tags,
        resource_tags=resource_tags,
        principal_arn=principal_arn,
        store_keys=store_keys,
        from_store=from_store,
        issued_session=issued_session,
    )


class Target(NamedTuple):
    """An action and a resource, validated and split: what every later step reads."""

    service: str
    """the action's service prefix, lower-cased"""
    action_name: str
    """the action's name, lower-cased"""
    resource_arn: Arn | None
    """None for `*`"""


def parse_principal(principal: str) -> Caller:
    """The caller `principal` names; `RequestError` on the `principal` field when malformed."""
    try:
        return _parse_caller(principal)
    except ValueError as problem:
        raise RequestError(str(problem), "principal") from None


# a caller, an action and a resource are functions of their text alone, and the same few recur
# on every call: each is parsed once per process, not once per decision (bounded, so a stream
# of made-up names costs a cache miss each, never memory)
_parse_caller = lru_cache(maxsize=16_384)(parse_caller)


def parse_target(action: str, resource: str) -> Target:
    """Validate and split the action and the resource; `RequestError` naming the field at fault."""
    service, action_name = _split_action(action)
    return Target(service, action_name, _parse_resource(resource))


def assemble_request(
    caller: Caller,
    action: str,
    resource: str,
    target: Target,
    supplied: dict[str, ContextValue],
    *,
    principal_tags: Mapping[str, str] | None = None,
    resource_tags: Mapping[str, str] | None = None,
    principal_arn: str | None = None,
    store_keys: Mapping[str, ContextValue] | None = None,
    from_store: bool = False,
    issued_session: bool = False,
) -> Request:
    """`build_request` from parts already parsed, and a context already normalized (the dict is
    the caller's to give: keys the store defines are removed from it)."""
    resource_arn = target.resource_arn
    derived = _derive_keys(caller, resource_arn, principal_tags or {}, resource_tags or {})
    if principal_arn is not None:
        derived["aws:principalarn"] = principal_arn
    if store_keys:
        derived.update(store_keys)
    ignored: tuple[str, ...] = ()
    if from_store and supplied:
        ignored = tuple(sorted(k for k in supplied if _is_pinned(k, caller, issued_session)))
        for key in ignored:
            del supplied[key]
    merged: dict[str, ContextValue] = {**derived, **supplied} if supplied else derived
    # IAM: `*` actions are account-scoped, so they stay in the caller's account (semantics §7.2);
    # an ARN without an account (an S3 bucket) takes it from `aws:ResourceAccount` when given
    resource_account = caller.account
    if resource_arn is not None:
        given = merged.get("aws:resourceaccount")
        if resource_arn.account:
            resource_account = resource_arn.account
        elif isinstance(given, str):
            resource_account = given
    if resource_account is not None:
        merged.setdefault("aws:resourceaccount", resource_account)
    return Request(
        caller,
        action,
        target.service,
        target.action_name,
        resource,
        resource_arn,
        resource_account,
        merged,
        ignored,
    )


def is_store_key(key: str) -> bool:
    """Whether the store may define lower-cased `key` on a request decided against it: keys of the
    principal, of the resource, of their organization, and of a session Dockgate issued."""
    return key in _STORE_KEYS or key in _SESSION_KEYS or key.startswith(_STORE_PREFIXES)


def _is_pinned(key: str, caller: Caller, issued_session: bool) -> bool:
    """Whether the store's value of `key` stands whatever the caller says (see `is_store_key`)."""
    if key in _STORE_KEYS:
        return True
    unissued_session = not issued_session and caller.kind in (
        CallerKind.SESSION,
        CallerKind.FEDERATED_USER,
    )
    if key in _SESSION_KEYS:
        return issued_session
    if key.startswith(_PRINCIPAL_TAG):
        # IAM: session tags override the role's or user's tags; only the caller knows those of a
        # session Dockgate did not issue (README: pass its session tags in the context)
        return not unissued_session
    return key.startswith(_STORE_PREFIXES)


def check_target(action: str, resource: str) -> None:
    """Raise `RequestError` when the action or the resource is malformed (as `build_request`
    would), for a request answered before it is built."""
    parse_target(action, resource)


@lru_cache(maxsize=1024)
def _split_action(action: str) -> tuple[str, str]:
    prefix, colon, name = action.partition(":")
    valid_prefix = prefix and all(c.isascii() and (c.isalnum() or c == "-") for c in prefix)
    valid_name = name and name.isascii() and name.isalnum()
    if not colon or not valid_prefix or not valid_name:
        raise RequestError(
            f"action `{action}` must be `service:Action` (letters and digits)", "action"
        )
    return prefix.lower(), name.lower()


@lru_cache(maxsize=32_768)
def _parse_resource(resource: str) -> Arn | None:
    if resource == "*":
        return None
    arn = split_arn(resource)
    if arn is None or not arn.partition or not arn.service:
        raise RequestError(f"resource `{resource}` must be `*` or an ARN", "resource")
    if "*" in resource or "?" in resource:
        raise RequestError(
            f"resource `{resource}` must name one resource, without wildcards", "resource"
        )
    name = repository_name_of(arn.service, arn.resource)
    if name is not None and not is_repository_name(name):
        raise RequestError(
            f"resource `{resource}`: `{name}` is not a repository name (2 to 256 lower-case "
            "letters and digits, in components joined by `/`, each joined by single `.`, `_` "
            "or `-`)",
            "resource",
        )
    return arn


def normalize_context(context: RawContext) -> dict[str, ContextValue]:
    """Lower-cased keys, values read as `normalize_value` says; RequestError when malformed,
    `ContextTooLargeError` past the bounds (the same as the decision port's)."""
    if len(context) > MAX_CONTEXT_KEYS:
        raise ContextTooLargeError(f"context has more than {MAX_CONTEXT_KEYS} keys")
    normalized: dict[str, ContextValue] = {}
    values = size = 0
    for key, value in context.items():
        if not isinstance(key, str) or not key:
            raise RequestError(f"context key `{key}` must be a non-empty string", "context")
        if isinstance(value, str):
            values += 1
            size += encoded_size(key) + encoded_size(value)
        elif isinstance(value, list | tuple):
            values += len(value)  # counted before a value is looked at
            if values > MAX_CONTEXT_VALUES:
                raise ContextTooLargeError(f"context has more than {MAX_CONTEXT_VALUES} values")
            if not all(isinstance(v, str) for v in value):
                raise _not_strings(key)
            size += encoded_size(key) + sum(map(encoded_size, value))
        else:
            raise _not_strings(key)
        if size > MAX_CONTEXT_BYTES:
            raise ContextTooLargeError(f"context is larger than {MAX_CONTEXT_BYTES} bytes")
        lowered = key.lower()
        if lowered in normalized:
            raise RequestError(
                f"context key `{key}` is given twice (keys ignore letter case)", "context"
            )
        normalized[lowered] = normalize_value(lowered, value)
    return normalized


def _not_strings(key: str) -> RequestError:
    return RequestError(f"context key `{key}` must have a string or a list of strings", "context")


def encoded_size(text: str) -> int:
    """UTF-8 bytes of `text`; ASCII text (nearly every value) is measured without encoding it."""
    return len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))


def _derive_keys(
    caller: Caller,
    resource_arn: Arn | None,
    principal_tags: Mapping[str, str],
    resource_tags: Mapping[str, str],
) -> dict[str, ContextValue]:
    keys: dict[str, ContextValue] = {}
    is_service = caller.kind is CallerKind.SERVICE
    keys["aws:principalisawsservice"] = "true" if is_service else "false"
    if is_service:
        keys["aws:principalservicename"] = caller.name
    else:
        keys["aws:principalarn"] = caller.principal_arn or caller.arn
        keys["aws:principalaccount"] = caller.account or ""
        keys["aws:principaltype"] = caller.principal_type or ""
    if caller.kind is CallerKind.USER:
        keys["aws:username"] = caller.name
    elif caller.kind is CallerKind.ROOT:
        keys["aws:userid"] = caller.account or ""
    elif caller.kind is CallerKind.FEDERATED_USER:
        keys["aws:userid"] = f"{caller.account}:{caller.name}"
    for tag, value in principal_tags.items():
        keys[f"aws:principaltag/{tag.lower()}"] = value
    if resource_arn is not None:  # `*` actions carry no resource tags
        for tag, value in resource_tags.items():
            keys[f"aws:resourcetag/{tag.lower()}"] = value
            keys[f"ecr:resourcetag/{tag.lower()}"] = value
    return keys
