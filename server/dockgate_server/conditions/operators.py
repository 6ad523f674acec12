"""The condition operators IAM knows: for each, how values convert and how they compare."""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from dockgate_server.conditions import arn, binary, boolean, date, ip, numeric, string
from dockgate_server.policy.glob import Chunk

__all__ = ["BOOL", "NULL", "OPERATORS", "OperatorSpec", "lookup_operator"]

NULL = "Null"
BOOL = "Bool"


@dataclass(frozen=True, slots=True)
class OperatorSpec:
    """A base operator. Negated operators combine their policy values as NOR (semantics §4.1)."""

    name: str
    family: str
    """what a value must be, for messages: `a number`, `a date`"""
    request_value: Callable[[str], Any]
    """request text to operand, or None when it does not convert"""
    policy_value: Callable[[Sequence[Chunk]], Any]
    """policy text (after variables) to operand, or None when it does not convert"""
    compare: Callable[[Any, Any], bool]
    negated: bool = False
    variables: bool = False
    """whether `${…}` in its values is a variable (String and Arn only: semantics §5.2)"""


def _family(  # noqa: PLR0917 - a table row reads best positionally
    family: str,
    request_value: Callable[[str], Any],
    policy_value: Callable[[Sequence[Chunk]], Any],
    variables: bool,
    positive: dict[str, Callable[[Any, Any], bool]],
    negated: dict[str, Callable[[Any, Any], bool]],
) -> list[OperatorSpec]:
    specs = [
        OperatorSpec(name, family, request_value, policy_value, compare, False, variables)
        for name, compare in positive.items()
    ]
    specs += [
        OperatorSpec(name, family, request_value, policy_value, compare, True, variables)
        for name, compare in negated.items()
    ]
    return specs


def _ordered(
    family: str, request: Callable[[str], Any], policy: Callable[..., Any], prefix: str
) -> list[OperatorSpec]:
    return _family(
        family,
        request,
        policy,
        False,
        {
            f"{prefix}Equals": operator.eq,
            f"{prefix}LessThan": operator.lt,
            f"{prefix}LessThanEquals": operator.le,
            f"{prefix}GreaterThan": operator.gt,
            f"{prefix}GreaterThanEquals": operator.ge,
        },
        {f"{prefix}NotEquals": operator.eq},
    )


_SPECS: list[OperatorSpec] = [
    *_family(
        "a string",
        string.text,
        string.joined,
        True,
        {"StringEquals": string.equals},
        {"StringNotEquals": string.equals},
    ),
    *_family(
        "a string",
        string.text_folded,
        string.folded,
        True,
        {"StringEqualsIgnoreCase": string.equals},
        {"StringNotEqualsIgnoreCase": string.equals},
    ),
    *_family(
        "a string",
        string.text,
        string.pattern,
        True,
        {"StringLike": string.like},
        {"StringNotLike": string.like},
    ),
    *_ordered("a number", numeric.number, numeric.policy_number, "Numeric"),
    *_ordered("a date", date.instant, date.policy_instant, "Date"),
    # IAM: `Bool` takes no variables (the variables page and Access Analyzer; §12 item 15), so
    # `${…}` there is literal text that never converts: an Allow cannot widen through a tag
    *_family("a boolean", boolean.boolean, boolean.policy_boolean, False, {BOOL: operator.eq}, {}),
    *_family(
        "base64 data",
        binary.decoded,
        binary.policy_decoded,
        False,
        {"BinaryEquals": operator.eq},
        {},
    ),
    *_family(
        "an IP address",
        ip.address,
        ip.policy_network,
        False,
        {"IpAddress": ip.contains},
        {"NotIpAddress": ip.contains},
    ),
    # IAM: ArnEquals honours wildcards exactly like ArnLike
    *_family(
        "an ARN",
        arn.arn_parts,
        arn.policy_arn,
        True,
        {"ArnEquals": arn.like, "ArnLike": arn.like},
        {"ArnNotEquals": arn.like, "ArnNotLike": arn.like},
    ),
]

OPERATORS: dict[str, OperatorSpec] = {spec.name: spec for spec in _SPECS}
"""Every base operator but `Null`, by canonical name."""

_BY_FOLDED = {name.lower(): name for name in [*OPERATORS, NULL]}


def lookup_operator(name: str) -> str | None:
    """The canonical spelling of a base operator name in any letter case, or None."""
    return _BY_FOLDED.get(name.lower())
