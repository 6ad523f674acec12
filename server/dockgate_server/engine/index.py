"""Narrow a group of policies to the statements that can apply: by action, then by ARN prefix.

`candidates()` may return too much, never too little: the evaluator decides. `all()` is the
unindexed path beside it, and tests check that both decide the same.

Actions: statements are grouped by service prefix; within a service, the exact slice for one
action name (every statement whose Action or NotAction covers it) is computed on first use and
kept, up to a bound, so a hostile stream of made-up action names cannot grow memory.

Resources: within a slice, statements are keyed by the literal prefix of their ARN patterns'
resource part (`repository/team-a/` for `…:repository/team-a/*`): a flattened trie that looks up
one prefix per distinct prefix length instead of walking a node per character.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass

from dockgate_server.engine.compile import CompiledPolicy, CompiledStatement
from dockgate_server.engine.request import Request

__all__ = ["StatementIndex"]

_MAX_SLICES = 256
"""Action slices kept per index; past this, slices are computed per request (still exact)."""

_Entry = tuple[int, int, CompiledStatement]
"""(position of its policy in the group, statement index, statement): sorts in document order"""


@dataclass(frozen=True, slots=True)
class _Slice:
    """The statements of one action, split by what their Resource patterns need."""

    always: tuple[_Entry, ...]
    """Resource `*`, NotResource, or no Resource: candidates for every resource"""
    by_prefix: dict[str, tuple[_Entry, ...]]
    lengths: tuple[int, ...]

    def collect(self, resource_part: str | None) -> list[_Entry]:
        found = list(self.always)
        if resource_part is None:  # IAM: only `*` and NotResource cover an action without one
            return found
        several = False
        for length in self.lengths:
            if length > len(resource_part):
                break
            hits = self.by_prefix.get(resource_part[:length])
            if hits:
                several = several or len(found) > len(self.always)
                found.extend(hits)
        if several:  # a statement with two matching prefixes must appear once per policy it is in
            seen: set[tuple[int, int]] = set()
            unique = []
            for entry in found:
                key = (entry[0], id(entry[2]))
                if key not in seen:
                    seen.add(key)
                    unique.append(entry)
            found = unique
        return found


class StatementIndex:
    """An index over one group of policies (a principal's, a boundary, an SCP level)."""

    __slots__ = ("_any_service", "_by_service", "_lock", "_name", "_policies", "_slices")

    def __init__(self, policies: Iterable[CompiledPolicy]) -> None:
        self._policies = tuple(policies)
        self._name = self._policies[0].name if len(self._policies) == 1 else "policies"
        self._by_service: dict[str, list[_Entry]] = {}
        self._any_service: list[_Entry] = []
        for position, policy in enumerate(self._policies):
            for statement in policy.statements:
                entry = (position, statement.index, statement)
                services = _services(statement)
                if services is None:
                    self._any_service.append(entry)
                else:
                    for service in services:
                        self._by_service.setdefault(service, []).append(entry)
        self._slices: dict[tuple[str, str], _Slice] = {}
        self._lock = threading.Lock()

    def all(self) -> tuple[CompiledPolicy, ...]:
        return self._policies

    @property
    def statement_count(self) -> int:
        return sum(len(policy.statements) for policy in self._policies)

    def candidates(self, request: Request) -> tuple[CompiledPolicy, ...]:
        """One policy holding, in document order, the statements that may match `request`.

        Each statement keeps its own policy name and index, so reasons still name the right
        policy; the evaluator only needs the statements.
        """
        key = (request.service, request.action_name)
        action_slice = self._slices.get(key)
        if action_slice is None:
            action_slice = self._slice(request)
            with self._lock:
                if len(self._slices) < _MAX_SLICES:
                    self._slices[key] = action_slice
        arn = request.resource_arn
        found = action_slice.collect(arn.resource if arn is not None else None)
        if not found:
            return ()
        if len(found) > 1:
            found.sort(key=lambda entry: (entry[0], entry[1]))
        kind = found[0][2].kind
        return (CompiledPolicy(self._name, kind, tuple(entry[2] for entry in found)),)

    def _slice(self, request: Request) -> _Slice:
        matching = [
            entry
            for entry in (*self._by_service.get(request.service, ()), *self._any_service)
            if entry[2].matches_action(request)
        ]
        always: list[_Entry] = []
        by_prefix: dict[str, list[_Entry]] = {}
        for entry in matching:
            prefixes = _resource_prefixes(entry[2])
            if prefixes is None:
                always.append(entry)
            else:
                for prefix in set(prefixes):
                    by_prefix.setdefault(prefix, []).append(entry)
        return _Slice(
            tuple(always),
            {prefix: tuple(entries) for prefix, entries in by_prefix.items()},
            tuple(sorted({len(prefix) for prefix in by_prefix})),
        )


def _services(statement: CompiledStatement) -> set[str] | None:
    """The service prefixes an Action list names; None for `*` and NotAction (any service)."""
    if statement.not_action:
        return None
    services = set()
    for action in statement.actions:
        if action.service is None:
            return None
        services.add(action.service)
    return services


def _resource_prefixes(statement: CompiledStatement) -> list[str] | None:
    """The literal prefixes of the resource parts of a statement's ARN patterns; None when the
    statement must be a candidate for every resource."""
    if statement.resources is None or statement.not_resource:
        return None
    prefixes = []
    for resource in statement.resources:
        if resource.everything:
            return None
        remainder = resource.text.split(":", 5)[-1] if resource.template is None else None
        text = remainder if remainder is not None else _template_prefix(resource.text)
        prefixes.append(_literal_prefix(text))
    return prefixes


def _template_prefix(pattern: str) -> str:
    """The resource part of a pattern whose variable may hold colons: up to the variable."""
    head = pattern.split("${", 1)[0]
    return head.split(":", 5)[-1] if head.count(":") >= 5 else ""


def _literal_prefix(pattern: str) -> str:
    cut = len(pattern)
    for marker in ("*", "?", "${"):
        found = pattern.find(marker)
        if found >= 0:
            cut = min(cut, found)
    return pattern[:cut]
