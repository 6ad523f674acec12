"""Condition keys: which are multivalued, and the request context as lookups see it."""

from __future__ import annotations

from collections.abc import Mapping

__all__ = [
    "MULTIVALUED_KEYS",
    "Context",
    "ContextValue",
    "is_single_valued_key",
    "normalize_value",
    "single_value",
]

ContextValue = str | tuple[str, ...]
"""One value, or the values of a multivalued key (possibly none)."""

Context = Mapping[str, ContextValue]
"""Lower-cased key → value, as every lookup sees the request."""

MULTIVALUED_KEYS = frozenset(
    {
        "aws:tagkeys",
        "aws:calledvia",
        "aws:principalorgpaths",
        "aws:resourceorgpaths",
        "aws:sourceorgpaths",
        "aws:vpceorgpaths",
        "aws:principalservicenameslist",
    }
)
"""Keys of type `ArrayOf…` in AWS's catalogue (semantics §6.1)."""

_SINGLE_VALUED_KEYS = frozenset(
    {
        "aws:principalarn",
        "aws:principalaccount",
        "aws:principalorgid",
        "aws:principaltype",
        "aws:userid",
        "aws:username",
        "aws:principalisawsservice",
        "aws:principalservicename",
        "aws:sourceip",
        "aws:sourcevpc",
        "aws:sourcevpce",
        "aws:vpcsourceip",
        "aws:vpceaccount",
        "aws:vpceorgid",
        "aws:securetransport",
        "aws:currenttime",
        "aws:epochtime",
        "aws:requestedregion",
        "aws:multifactorauthpresent",
        "aws:multifactorauthage",
        "aws:tokenissuetime",
        "aws:sourceidentity",
        "aws:federatedprovider",
        "aws:resourceaccount",
        "aws:resourceorgid",
        "aws:calledviafirst",
        "aws:calledvialast",
        "aws:viaawsservice",
        "aws:sourcearn",
        "aws:sourceaccount",
        "aws:sourceorgid",
        "aws:useragent",
        "aws:referer",
        "aws:ec2instancesourcevpc",
        "aws:ec2instancesourceprivateipv4",
        "ecr:accountsetting",
    }
)
_SINGLE_VALUED_PREFIXES = (
    "aws:principaltag/",
    "aws:resourcetag/",
    "aws:requesttag/",
    "ecr:resourcetag/",
)


def is_single_valued_key(key: str) -> bool:
    """Whether AWS's catalogue types `key` (lower-cased) as a single value."""
    return key in _SINGLE_VALUED_KEYS or key.startswith(_SINGLE_VALUED_PREFIXES)


def normalize_value(key: str, value: str | list[str] | tuple[str, ...]) -> ContextValue:
    """How a supplied value reads: a catalogued multivalued key is always a set; a catalogued
    single-valued key given as a one-element list is that element; any other list stays a set."""
    if isinstance(value, str):
        return (value,) if key in MULTIVALUED_KEYS else value
    values = tuple(value)
    if len(values) == 1 and is_single_valued_key(key):
        return values[0]
    return values


def single_value(context: Context, key: str) -> str | None:
    """The value a policy variable takes: absent and multivalued keys have none."""
    value = context.get(key)
    return value if isinstance(value, str) else None
