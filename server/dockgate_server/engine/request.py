"""A typed request: the caller, the action, the resource, and the context its conditions read."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from dockgate_server.conditions.keys import Context, ContextValue, normalize_value
from dockgate_server.policy.arn import Arn, split_arn
from dockgate_server.policy.principal import Caller, CallerKind, parse_caller

__all__ = ["RawContext", "Request", "RequestError", "build_request", "normalize_context"]

RawContext = Mapping[str, str | Sequence[str]]


class RequestError(ValueError):
    """A request that cannot be decided: a malformed principal, action, resource or context.

    `field` names the part at fault, so an edge can say which without parsing the message.
    """

    def __init__(self, message: str, field: str = "request") -> None:
        super().__init__(message)
        self.field = field


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
) -> Request:
    """Validate the parts and derive the keys AWS would set (semantics §6.3); given keys win.

    `principal_arn` overrides the derived `aws:PrincipalArn` where the store knows better (a
    session's role ARN with its path); `store_keys` are further keys the store knows (the
    organization of the caller and of the resource).
    """
    if isinstance(principal, Caller):
        caller = principal
    else:
        try:
            caller = parse_caller(principal)
        except ValueError as problem:
            raise RequestError(str(problem), "principal") from None
    service, action_name = _split_action(action)
    resource_arn = _parse_resource(resource)
    supplied = normalize_context(context or {})
    derived = _derive_keys(caller, resource_arn, principal_tags or {}, resource_tags or {})
    if principal_arn is not None:
        derived["aws:principalarn"] = principal_arn
    derived.update(store_keys or {})
    merged: dict[str, ContextValue] = {**derived, **supplied}
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
        caller, action, service, action_name, resource, resource_arn, resource_account, merged
    )


def _split_action(action: str) -> tuple[str, str]:
    prefix, colon, name = action.partition(":")
    valid_prefix = prefix and all(c.isascii() and (c.isalnum() or c == "-") for c in prefix)
    valid_name = name and name.isascii() and name.isalnum()
    if not colon or not valid_prefix or not valid_name:
        raise RequestError(
            f"action `{action}` must be `service:Action` (letters and digits)", "action"
        )
    return prefix.lower(), name.lower()


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
    return arn


def normalize_context(context: RawContext) -> dict[str, ContextValue]:
    """Lower-cased keys, values read as `normalize_value` says; RequestError when malformed."""
    normalized: dict[str, ContextValue] = {}
    for key, value in context.items():
        if not isinstance(key, str) or not key:
            raise RequestError(f"context key `{key}` must be a non-empty string", "context")
        if not isinstance(value, str) and not (
            isinstance(value, list | tuple) and all(isinstance(v, str) for v in value)
        ):
            raise RequestError(
                f"context key `{key}` must have a string or a list of strings", "context"
            )
        lowered = key.lower()
        if lowered in normalized:
            raise RequestError(
                f"context key `{key}` is given twice (keys ignore letter case)", "context"
            )
        normalized[lowered] = normalize_value(lowered, value)
    return normalized


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
