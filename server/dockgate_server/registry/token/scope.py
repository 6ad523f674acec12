"""The `scope` parameter of a token request, parsed per distribution's Token Scope Documentation.

```
scope            := resourcescope [ ' ' resourcescope ]*
resourcescope    := resourcetype ":" resourcename ":" action [ ',' action ]*
resourcetype     := resourcetypevalue [ '(' resourcetypevalue ')' ]      value: /[a-z0-9]+/
resourcename     := [ hostname '/' ] component [ '/' component ]*
hostname         := hostcomponent [ '.' hostcomponent ]* [ ':' port-number ]
action           := /[a-z*]*/
```

A `GET /token` repeats `scope`; a `POST /token` sends one, its scopes separated by spaces: both
are a list of values here, each split at spaces. The name may hold one `:` (a port), so a scope
is split at its first `:` (the type) and its last (the actions). A scope that does not parse is
ignored, as distribution's own token server does (`ignoring unsupported scope format`): the
token simply does not carry it, and the registry refuses what it would have opened.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = [
    "MAX_SCOPE_LENGTH",
    "RequestedScopes",
    "Scope",
    "is_resource_name",
    "parse_scope",
    "parse_scopes",
]

MAX_SCOPE_LENGTH = 1024
"""characters in one scope at most: a repository name is 256 at most, a host name 253"""
_TYPE = re.compile(r"([a-z0-9]+)(?:\(([a-z0-9]+)\))?")
_ACTION = re.compile(r"[a-z*]*")
# unambiguous on purpose (every separator is non-empty and starts with a non-alphanumeric), so
# matching takes linear time whatever a client sends
_COMPONENT = re.compile(r"[a-z0-9]+(?:(?:[_.]|__|-+)[a-z0-9]+)*")
_ALPHANUMERIC = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")


@dataclass(frozen=True, slots=True)
class Scope:
    """One resource scope: `repository:team-a/app:pull,push`."""

    type: str
    """`repository`, `registry`, … (a resource class is not part of it)"""
    name: str
    actions: tuple[str, ...]
    """as asked, duplicates dropped, in their first order"""
    resource_class: str | None = None
    """`plugin` of `repository(plugin)`: deprecated, and ignored when granting"""

    def __str__(self) -> str:
        return f"{self.type}:{self.name}:{','.join(self.actions)}"


@dataclass(frozen=True, slots=True)
class RequestedScopes:
    scopes: tuple[Scope, ...]
    ignored: tuple[str, ...]
    """the scopes that did not parse, as sent (cut to `MAX_SCOPE_LENGTH`), for the log"""


def parse_scopes(values: Iterable[str]) -> RequestedScopes:
    """Every scope of every `scope` value, in order; what does not parse goes to `ignored`."""
    scopes: list[Scope] = []
    ignored: list[str] = []
    for value in values:
        for text in value.split():
            scope = parse_scope(text)
            if scope is None:
                ignored.append(text[:MAX_SCOPE_LENGTH])
            else:
                scopes.append(scope)
    return RequestedScopes(tuple(scopes), tuple(ignored))


def parse_scope(text: str) -> Scope | None:
    """One resource scope, or None when it does not follow the grammar."""
    if len(text) > MAX_SCOPE_LENGTH:
        return None
    kind, colon, rest = text.partition(":")
    name, last, actions = rest.rpartition(":")
    if not colon or not last:
        return None
    typed = _TYPE.fullmatch(kind)
    if typed is None or not is_resource_name(name):
        return None
    listed = actions.split(",")
    if not all(_ACTION.fullmatch(action) for action in listed):
        return None
    return Scope(typed.group(1), name, tuple(dict.fromkeys(listed)), typed.group(2))


def is_resource_name(name: str) -> bool:
    """`[hostname '/'] component ['/' component]*`, where a hostname may end in `:PORT`."""
    parts = name.split("/")
    if not all(_COMPONENT.fullmatch(part) for part in parts[1:]):
        return False
    first = parts[0]
    return _COMPONENT.fullmatch(first) is not None or (len(parts) > 1 and _is_hostname(first))


def _is_hostname(text: str) -> bool:
    host, colon, port = text.partition(":")
    if colon and not (port.isascii() and port.isdigit()):
        return False
    return all(_is_host_component(label) for label in host.split("."))


def _is_host_component(label: str) -> bool:
    """`[a-zA-Z0-9]` or `[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]`."""
    return (
        bool(label)
        and label[0] in _ALPHANUMERIC
        and label[-1] in _ALPHANUMERIC
        and all(c in _ALPHANUMERIC or c == "-" for c in label)
    )
