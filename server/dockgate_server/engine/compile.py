"""Compile validated policies once: patterns classified, operators bound, variables as holes.

A fleet repeats the same actions, resources, principals and condition blocks across thousands of
statements, so each distinct one is compiled once and shared (compiled parts are immutable);
`renamed` reuses a whole compiled document under another name.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from functools import lru_cache

from dockgate_server.conditions.evaluate import (
    CompiledCondition,
    compile_condition,
    evaluate_condition,
)
from dockgate_server.conditions.keys import single_value
from dockgate_server.engine.request import Request
from dockgate_server.policy.actions import is_action_name
from dockgate_server.policy.arn import has_wildcard_type, split_arn_pattern
from dockgate_server.policy.glob import Glob, compile_chunks, compile_glob
from dockgate_server.policy.model import ConditionClause, Effect, Policy, PolicyKind, Statement
from dockgate_server.policy.principal import (
    Caller,
    PrincipalEntry,
    PrincipalMatch,
    classify_principal,
    exempts_caller,
)
from dockgate_server.policy.variables import (
    Template,
    fixed_chunks,
    has_variables,
    literal_template,
    parse_template,
    resolve_template,
)

__all__ = [
    "CompiledAction",
    "CompiledPolicy",
    "CompiledResource",
    "CompiledStatement",
    "compile_policy",
    "renamed",
]

_SHARED = 65_536
"""Distinct parts kept for sharing (like compiled globs): a bound, so hostile text cannot grow
memory; past it a part is compiled again, which only costs time."""


@dataclass(frozen=True, slots=True)
class CompiledAction:
    """`*`, or a service prefix and a case-folded name pattern."""

    service: str | None
    """None for `*` (every action of every service)"""
    name: Glob | None
    """None for a name no action can have: the entry matches nothing"""

    def matches(self, service: str, name: str) -> bool:
        if self.service is None:
            return True
        return self.service == service and self.name is not None and self.name.matches(name)


@dataclass(frozen=True, slots=True)
class CompiledResource:
    """`*`, or an ARN pattern matched part by part; the remainder may wait for variables."""

    text: str
    everything: bool
    partition: Glob | None = None
    service: str = ""
    region: Glob | None = None
    account: Glob | None = None
    remainder: Glob | None = None
    template: Template | None = None
    """the remainder with variables, resolved per request"""
    never: bool = False
    """a wildcard in the resource-type word (`…:repo*/app`): the entry matches nothing"""

    def matches(self, request: Request) -> bool:
        if self.everything:
            return True
        if self.never:
            return False
        arn = request.resource_arn
        if arn is None:
            return False  # IAM: only `*` covers an action that takes no resource
        if arn.service != self.service:
            return False
        assert self.partition and self.region and self.account
        if not (
            self.partition.matches(arn.partition)
            and self.region.matches(arn.region)
            and self.account.matches(arn.account)
        ):
            return False
        if self.remainder is not None:
            return self.remainder.matches(arn.resource)
        assert self.template is not None
        chunks = resolve_template(self.template, lambda key: single_value(request.context, key))
        # IAM: an entry whose variable has no value matches nothing
        return chunks is not None and compile_chunks(chunks).matches(arn.resource)


@dataclass(frozen=True, slots=True)
class CompiledStatement:
    policy: str
    kind: PolicyKind
    index: int
    sid: str | None
    effect: Effect
    actions: tuple[CompiledAction, ...]
    not_action: bool
    resources: tuple[CompiledResource, ...] | None
    not_resource: bool
    principals: tuple[PrincipalEntry, ...] | None
    not_principal: bool
    conditions: tuple[CompiledCondition, ...]

    def matches_action(self, request: Request) -> bool:
        hit = any(a.matches(request.service, request.action_name) for a in self.actions)
        return hit != self.not_action

    def matches_resource(self, request: Request) -> bool:
        if self.resources is None:
            return True  # a repository policy statement without Resource covers its repository
        hit = any(resource.matches(request) for resource in self.resources)
        return hit != self.not_resource

    def principal_match(self, caller: Caller, has_boundary: bool) -> PrincipalMatch:
        """How `Principal` names the caller; for `NotPrincipal`, Wildcard unless exempt."""
        if self.principals is None:
            return PrincipalMatch.WILDCARD
        if self.not_principal:
            # IAM: a Deny with NotPrincipal binds a caller with a permissions boundary whatever
            # it lists (semantics §7.6)
            if has_boundary and self.effect is Effect.DENY:
                return PrincipalMatch.WILDCARD
            exempt = any(exempts_caller(entry, caller) for entry in self.principals)
            return PrincipalMatch.NONE if exempt else PrincipalMatch.WILDCARD
        best = PrincipalMatch.NONE
        for entry in self.principals:
            found = classify_principal(entry, caller)
            if found.rank > best.rank:
                best = found
        return best

    def matches_conditions(self, request: Request, errors: list[str]) -> bool:
        return all(evaluate_condition(c, request.context, errors) for c in self.conditions)


@dataclass(frozen=True, slots=True)
class CompiledPolicy:
    name: str
    kind: PolicyKind
    statements: tuple[CompiledStatement, ...]


def compile_policy(policy: Policy) -> CompiledPolicy:
    return CompiledPolicy(
        policy.name,
        policy.kind,
        tuple(_compile_statement(policy, statement) for statement in policy.statements),
    )


def renamed(policy: CompiledPolicy, name: str) -> CompiledPolicy:
    """`policy` as another policy with the same document: only the names differ, every compiled
    part is shared (decisions name the policy each statement belongs to)."""
    if policy.name == name:
        return policy
    return CompiledPolicy(
        name,
        policy.kind,
        tuple(
            CompiledStatement(
                name,
                s.kind,
                s.index,
                s.sid,
                s.effect,
                s.actions,
                s.not_action,
                s.resources,
                s.not_resource,
                s.principals,
                s.not_principal,
                s.conditions,
            )
            for s in policy.statements
        ),
    )


def _compile_statement(policy: Policy, statement: Statement) -> CompiledStatement:
    variables = policy.has_variables
    resources = statement.resources
    return CompiledStatement(
        policy.name,
        policy.kind,
        statement.index,
        None if statement.sid is None else sys.intern(statement.sid),
        statement.effect,
        _compile_actions(statement.actions),
        statement.not_action,
        None if resources is None else _compile_resources(resources, variables),
        statement.not_resource,
        None if statement.principals is None else _shared_principals(statement.principals),
        statement.not_principal,
        _compile_conditions(statement.conditions, variables) if statement.conditions else (),
    )


@lru_cache(maxsize=_SHARED)
def _compile_actions(texts: tuple[str, ...]) -> tuple[CompiledAction, ...]:
    return tuple(_compile_action(text) for text in texts)


@lru_cache(maxsize=_SHARED)
def _compile_action(text: str) -> CompiledAction:
    if text == "*":
        return CompiledAction(None, None)
    service, _, name = text.partition(":")
    if not is_action_name(name):
        # IAM: a name no action can have is an unknown action that matches nothing (§2.4)
        return CompiledAction(service.lower(), None)
    return CompiledAction(service.lower(), compile_glob(name, fold_case=True))


@lru_cache(maxsize=_SHARED)
def _compile_resources(texts: tuple[str, ...], variables: bool) -> tuple[CompiledResource, ...]:
    return tuple(_compile_resource(text, variables) for text in texts)


@lru_cache(maxsize=_SHARED)
def _compile_resource(text: str, variables: bool) -> CompiledResource:
    if text == "*":
        return CompiledResource(text, True)
    parts = split_arn_pattern(text)
    assert parts is not None  # validation rejected anything else
    _, partition, service, region, account, remainder = parts
    template = parse_template(remainder) if variables else literal_template(remainder)
    if has_wildcard_type(template):
        # IAM: wildcards may not stand in the resource-type word; iam-simulate matches that
        # word literally, so `*/team-a/app` never names `repository/team-a/app` (§2.5)
        return CompiledResource(text, False, service=service, never=True)
    pending = template if has_variables(template) else None
    glob = None if pending else compile_chunks(fixed_chunks(template))
    return CompiledResource(
        text,
        False,
        compile_glob(partition),
        service,
        compile_glob(region),
        compile_glob(account),
        glob,
        pending,
    )


@lru_cache(maxsize=_SHARED)
def _shared_principals(entries: tuple[PrincipalEntry, ...]) -> tuple[PrincipalEntry, ...]:
    """The first equal tuple of principal entries seen: parsed entries are immutable."""
    return entries


@lru_cache(maxsize=_SHARED)
def _compile_conditions(
    clauses: tuple[ConditionClause, ...], variables: bool
) -> tuple[CompiledCondition, ...]:
    return tuple(_compile_condition(clause, variables) for clause in clauses)


_compile_condition = lru_cache(maxsize=_SHARED)(compile_condition)
