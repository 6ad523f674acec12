"""Narrow a group of policies to the statements that can apply: by service, then by ARN prefix.

`candidates()` may return too much, never too little: the evaluator decides. `all()` is the
unindexed path beside it, and tests check that both decide the same.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from dockgate_server.engine.compile import CompiledPolicy, CompiledStatement
from dockgate_server.engine.request import Request

__all__ = ["StatementIndex"]

_Entry = tuple[int, CompiledStatement]
"""(position of its policy in the group, statement)"""


@dataclass(slots=True)
class _TrieNode:
    children: dict[str, _TrieNode] = field(default_factory=dict)
    entries: list[_Entry] = field(default_factory=list)


class _ResourceTrie:
    """Statements under the literal prefix of each Resource pattern; a walk down the request's
    ARN collects every statement whose prefix the ARN starts with."""

    __slots__ = ("always", "root")

    def __init__(self) -> None:
        self.root = _TrieNode()
        self.always: list[_Entry] = []

    def add(self, entry: _Entry) -> None:
        statement = entry[1]
        prefixes = _resource_prefixes(statement)
        if prefixes is None:
            self.always.append(entry)
            return
        for prefix in prefixes:
            node = self.root
            for char in prefix:
                node = node.children.setdefault(char, _TrieNode())
            node.entries.append(entry)

    def collect(self, resource: str, into: dict[int, _Entry]) -> None:
        for entry in self.always:
            into[id(entry[1])] = entry
        if resource == "*":
            return  # IAM: only `*` and NotResource cover an action without a resource
        node = self.root
        for char in resource:
            for entry in node.entries:
                into[id(entry[1])] = entry
            child = node.children.get(char)
            if child is None:
                return
            node = child
        for entry in node.entries:
            into[id(entry[1])] = entry


def _resource_prefixes(statement: CompiledStatement) -> list[str] | None:
    """The literal prefixes of a statement's ARN patterns; None: it is always a candidate."""
    if statement.resources is None or statement.not_resource:
        return None
    prefixes = []
    for resource in statement.resources:
        if resource.everything:
            return None
        prefixes.append(_literal_prefix(resource.text))
    return prefixes


def _literal_prefix(pattern: str) -> str:
    cut = len(pattern)
    for marker in ("*", "?", "${"):
        found = pattern.find(marker)
        if found >= 0:
            cut = min(cut, found)
    return pattern[:cut]


class StatementIndex:
    """An immutable index over one group of policies (a principal's, a boundary, an SCP level)."""

    __slots__ = ("_any_service", "_by_service", "_policies")

    def __init__(self, policies: Iterable[CompiledPolicy]) -> None:
        self._policies = tuple(policies)
        self._by_service: dict[str, _ResourceTrie] = {}
        self._any_service = _ResourceTrie()
        for position, policy in enumerate(self._policies):
            for statement in policy.statements:
                entry = (position, statement)
                services = _services(statement)
                if services is None:
                    self._any_service.add(entry)
                    continue
                for service in services:
                    self._by_service.setdefault(service, _ResourceTrie()).add(entry)

    def all(self) -> tuple[CompiledPolicy, ...]:
        return self._policies

    def candidates(self, request: Request) -> tuple[CompiledPolicy, ...]:
        """The group's policies with only the statements that may match `request`."""
        found: dict[int, _Entry] = {}
        self._any_service.collect(request.resource, found)
        trie = self._by_service.get(request.service)
        if trie is not None:
            trie.collect(request.resource, found)
        if not found:
            return ()
        by_policy: dict[int, list[CompiledStatement]] = {}
        for position, statement in sorted(found.values(), key=lambda e: (e[0], e[1].index)):
            by_policy.setdefault(position, []).append(statement)
        return tuple(
            CompiledPolicy(self._policies[p].name, self._policies[p].kind, tuple(statements))
            for p, statements in by_policy.items()
        )

    @property
    def statement_count(self) -> int:
        return sum(len(policy.statements) for policy in self._policies)


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
