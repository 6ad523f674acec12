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

_Ordinals = tuple[int, ...]
"""Positions in the index's statements, in document order: an index holds a statement as an
int, not an entry object, so a principal's index costs a few bytes per statement."""


@dataclass(frozen=True, slots=True)
class _Slice:
    """The statements of one action, split by what their Resource patterns need."""

    always: _Ordinals
    """Resource `*`, NotResource, or no Resource: candidates for every resource"""
    by_prefix: dict[str, _Ordinals]
    lengths: tuple[int, ...]
    only_always: tuple[CompiledPolicy, ...]
    """the answer when no prefix matches, built once"""


class StatementIndex:
    """An index over one group of policies (a principal's, a boundary, an SCP level)."""

    __slots__ = (
        "_any_service",
        "_by_service",
        "_lock",
        "_name",
        "_policies",
        "_slices",
        "_statements",
    )

    def __init__(self, policies: Iterable[CompiledPolicy]) -> None:
        self._policies = tuple(policies)
        # every statement in document order: what an ordinal indexes
        self._statements = (
            self._policies[0].statements
            if len(self._policies) == 1
            else tuple(statement for policy in self._policies for statement in policy.statements)
        )
        self._name = self._policies[0].name if len(self._policies) == 1 else "policies"
        by_service: dict[str, list[int]] = {}
        any_service: list[int] = []
        ordinal = 0
        for policy in self._policies:
            for statement in policy.statements:
                services = _services(statement)
                if services is None:
                    any_service.append(ordinal)
                else:
                    for service in services:
                        by_service.setdefault(service, []).append(ordinal)
                ordinal += 1
        self._by_service = {service: tuple(found) for service, found in by_service.items()}
        self._any_service = tuple(any_service)
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
        if arn is None or not action_slice.lengths:
            # IAM: only `*` and NotResource cover an action without a resource
            return action_slice.only_always
        resource = arn.resource
        found: _Ordinals | None = None
        several = False
        by_prefix = action_slice.by_prefix
        for length in action_slice.lengths:
            if length > len(resource):
                break
            hits = by_prefix.get(resource[:length])
            if hits:
                if found is None:
                    found = hits
                else:
                    found += hits
                    several = True
        if found is None:
            return action_slice.only_always
        if action_slice.always:
            found = action_slice.always + found
            several = True
        if several:
            # document order; a statement with two matching prefixes appears once
            found = tuple(sorted(set(found)))
        return (self._policy(found),)

    def _policy(self, ordinals: _Ordinals) -> CompiledPolicy:
        statements = self._statements
        chosen = tuple([statements[ordinal] for ordinal in ordinals])
        return CompiledPolicy(self._name, chosen[0].kind, chosen)

    def _slice(self, request: Request) -> _Slice:
        statements = self._statements
        ordinals = sorted((*self._by_service.get(request.service, ()), *self._any_service))
        always: list[int] = []
        by_prefix: dict[str, list[int]] = {}
        for ordinal in ordinals:
            statement = statements[ordinal]
            if not statement.matches_action(request):
                continue
            prefixes = _resource_prefixes(statement)
            if prefixes is None:
                always.append(ordinal)
            else:
                for prefix in set(prefixes):
                    by_prefix.setdefault(prefix, []).append(ordinal)
        return _Slice(
            tuple(always),
            {prefix: tuple(found) for prefix, found in by_prefix.items()},
            tuple(sorted({len(prefix) for prefix in by_prefix})),
            (self._policy(tuple(always)),) if always else (),
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
