"""Decide with the caller's own context unknown: what holds in every context, and what may not.

The store defines part of a request's context (the principal's tags and ARN, the repository's
tags, the organization); the caller supplies the rest (`aws:SourceIp`, `aws:CurrentTime`,
`aws:MultiFactorAuthPresent`, request tags, …). `decide_partial` answers a question for every
value the caller could send at once, without guessing one.

A condition that reads a key the caller supplies, and that the request does not carry, is
undecided. A statement whose other conditions hold and which has an undecided one is decided
twice, at the two extremes of IAM's flow, which is monotone: more matching Allow statements never
turn an `Allowed` into a denial, more matching Deny statements never turn a denial into an
`Allowed` (semantics §7.4). So the flow runs on the same request with

- `least`: every undecided Allow statement left out, every undecided Deny statement matching;
- `most`: every undecided Allow statement matching, every undecided Deny statement left out.

`least` allowed: allowed in every context. `most` not allowed: allowed in none. Otherwise the
answer depends on the context. Without undecided statements the question is decided once, by
`authorize` on what `prepare` built: the same answer as `decide`. The request path never calls
this module; it costs nothing there.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache

from dockgate_server.conditions.evaluate import CompiledCondition, evaluate_condition
from dockgate_server.engine.authorize import PolicySet, authorize
from dockgate_server.engine.compile import CompiledPolicy, CompiledStatement
from dockgate_server.engine.decide import Question, prepare
from dockgate_server.engine.decision import Decision, Outcome
from dockgate_server.engine.request import Request, Target, assemble_request
from dockgate_server.engine.snapshot import Snapshot
from dockgate_server.policy.model import ConditionClause, Effect
from dockgate_server.policy.principal import Caller, CallerKind, PrincipalMatch
from dockgate_server.policy.variables import Variable, parse_template

__all__ = [
    "PartialDecision",
    "Undecided",
    "authorize_partial",
    "decide_partial",
    "may_match",
    "statement_keys",
]

Level = tuple[CompiledPolicy, ...]


@dataclass(frozen=True, slots=True)
class Undecided:
    """A statement whose match depends on keys the caller supplies."""

    statement: CompiledStatement
    keys: tuple[str, ...]
    """the lower-cased keys it reads that the request does not carry"""


@dataclass(frozen=True, slots=True)
class PartialDecision:
    least: Decision
    """the answer when every undecided statement goes against access"""
    most: Decision
    """the answer when every undecided statement goes for access"""
    undecided: tuple[Undecided, ...] = ()

    @property
    def always_allowed(self) -> bool:
        return self.least.outcome is Outcome.ALLOWED

    @property
    def never_allowed(self) -> bool:
        return self.most.outcome is not Outcome.ALLOWED


def decide_partial(
    snapshot: Snapshot, question: Question, *, now: float | None = None
) -> PartialDecision:
    """Decide `question` for every context the caller could add to it (see the module's
    docstring); raises `RequestError` for malformed input, as `decide` does."""
    session = snapshot.credentials.sessions.get(question.principal)
    prepared = prepare(snapshot, question, session, now=now)
    if isinstance(prepared, Decision):
        answer = dataclasses.replace(prepared, revision=snapshot.revision)
        return PartialDecision(answer, answer)
    request, policies = prepared
    return authorize_partial(
        request, policies, issued=session is not None, revision=snapshot.revision
    )


def authorize_partial(
    request: Request, policies: PolicySet, *, issued: bool, revision: int | None = None
) -> PartialDecision:
    """`decide_partial` on a request already prepared (`engine.decide.prepare`): what
    `authorize` answers at the two extremes. `issued`: the caller is a session Dockgate issued
    (its session keys are the store's, not the caller's)."""
    undecided, touched = _undecided(request, policies, issued)
    if not undecided:
        answer = authorize(request, policies, revision=revision)
        return PartialDecision(answer, answer)
    by_statement = {id(found.statement): found for found in undecided}
    least = authorize(request, _forced(policies, by_statement, touched, True), revision=revision)
    most = authorize(request, _forced(policies, by_statement, touched, False), revision=revision)
    return PartialDecision(least, most, tuple(undecided))


def may_match(statement: CompiledStatement, request: Request, *, issued: bool) -> bool:
    """Whether `statement` may match `request` in some context the caller could add, its
    action aside: False only when a part no caller context changes rules it out (its resource,
    the principal it names, a condition on keys the store defines). A statement for which this
    is False matches the request with no action and no context, so `authorize_partial` (and
    `authorize`) decide the same without it."""
    caller = request.caller
    context = request.context
    if statement.resources is not None and not any(
        key not in context and _caller_supplies(key, caller, issued)
        for key in _resource_keys(statement)
    ):
        hit = any(resource.matches(request) for resource in statement.resources)
        if hit == statement.not_resource:
            return False
    if (
        statement.principals is not None
        and not statement.not_principal  # NotPrincipal reads the boundary: left to `authorize`
        and statement.principal_match(caller, False) is PrincipalMatch.NONE
    ):
        return False
    errors: list[str] = []  # reported by `authorize` when the statement is decided
    for condition in statement.conditions:
        if any(
            key not in context and _caller_supplies(key, caller, issued)
            for key in _condition_keys(condition.clause)
        ):
            continue
        if not evaluate_condition(condition, context, errors):
            return False
    return True


def statement_keys(statement: CompiledStatement) -> tuple[str, ...]:
    """The lower-cased context keys a statement reads: its conditions' keys, the variables in
    their values, and the variables in its Resource patterns."""
    keys = [key for condition in statement.conditions for key in _condition_keys(condition.clause)]
    return tuple(dict.fromkeys([*keys, *_resource_keys(statement)]))


# -- finding the undecided statements -----------------------------------------------------------


def _undecided(
    request: Request, policies: PolicySet, issued: bool
) -> tuple[list[Undecided], set[int]]:
    """The undecided statements, and the ids of the policies holding them."""
    context = request.context
    caller = request.caller
    found: list[Undecided] = []
    touched: set[int] = set()
    errors: list[str] = []  # a known condition's conversion errors: `authorize` reports them
    for policy in _policies(policies):
        for statement in policy.statements:
            if not statement.conditions and not _templated(statement):
                continue
            unknown: list[str] = []
            holds = True
            for condition in statement.conditions:
                missing = [
                    key
                    for key in _condition_keys(condition.clause)
                    if key not in context and _caller_supplies(key, caller, issued)
                ]
                if missing:
                    unknown += missing
                elif not evaluate_condition(condition, context, errors):
                    holds = False  # false whatever the caller sends: the engine skips it too
                    break
            if not holds:
                continue
            unknown += [
                key
                for key in _resource_keys(statement)
                if key not in context and _caller_supplies(key, caller, issued)
            ]
            if unknown:
                found.append(Undecided(statement, tuple(dict.fromkeys(unknown))))
                touched.add(id(policy))
    return found, touched


def _policies(policies: PolicySet) -> Iterable[CompiledPolicy]:
    yield from policies.identity
    for single in (policies.resource, policies.boundary, policies.session):
        if single is not None:
            yield single
    for levels in (policies.service_control, policies.resource_control):
        for level in levels or ():
            yield from level


def _templated(statement: CompiledStatement) -> bool:
    return any(r.template is not None for r in statement.resources or ())


@lru_cache(maxsize=65_536)
def _condition_keys(clause: ConditionClause) -> tuple[str, ...]:
    """The keys a condition reads: its own, and those of the variables in its values."""
    keys = [clause.key.lower()]
    for text in clause.values:
        if "${" in text:
            try:
                parts = parse_template(text)
            except ValueError:
                continue  # validation refused such a value: it holds no variable
            keys += [part.key for part in parts if isinstance(part, Variable)]
    return tuple(dict.fromkeys(keys))


def _resource_keys(statement: CompiledStatement) -> list[str]:
    return [
        part.key
        for resource in statement.resources or ()
        if resource.template is not None
        for part in resource.template
        if isinstance(part, Variable)
    ]


def _caller_supplies(key: str, caller: Caller, issued: bool) -> bool:
    """Whether the caller's own context may set lower-cased `key` (the store defines the rest)."""
    return _supplied(key, caller.kind, issued)


_PROBE_TARGET = Target("ecr", "getauthorizationtoken", None)


@lru_cache(maxsize=16_384)
def _supplied(key: str, kind: CallerKind, issued: bool) -> bool:
    # the engine's own rule decides: a key the caller gives and the store pins is ignored
    probe = Caller(kind, "arn:aws:iam::000000000000:root", "aws", "000000000000", "probe")
    request = assemble_request(
        probe,
        "ecr:GetAuthorizationToken",
        "*",
        _PROBE_TARGET,
        {key: ""},
        from_store=True,
        issued_session=issued,
    )
    return key not in request.ignored


# -- the two extremes ---------------------------------------------------------------------------


def _forced(
    policies: PolicySet,
    undecided: Mapping[int, Undecided],
    touched: set[int],
    against_access: bool,
) -> PolicySet:
    """`policies` with each undecided statement made to match or left out: against access, Allow
    statements are left out and Deny statements match; for access, the other way round. Only
    the policies in `touched` (by id) hold undecided statements: the others are kept as they
    are."""

    def one(policy: CompiledPolicy | None) -> CompiledPolicy | None:
        if policy is None or id(policy) not in touched:
            return policy
        statements: list[CompiledStatement] = []
        for statement in policy.statements:
            found = undecided.get(id(statement))
            if found is None:
                statements.append(statement)
            elif (statement.effect is Effect.DENY) == against_access:
                statements.append(_matching(found))
        return CompiledPolicy(policy.name, policy.kind, tuple(statements))

    def group(given: tuple[CompiledPolicy, ...]) -> tuple[CompiledPolicy, ...]:
        if not any(id(policy) in touched for policy in given):
            return given
        return tuple(forced for policy in given if (forced := one(policy)) is not None)

    def levels(given: tuple[Level, ...] | None) -> tuple[Level, ...] | None:
        return None if given is None else tuple(group(level) for level in given)

    return PolicySet(
        identity=group(policies.identity),
        resource=one(policies.resource),
        boundary=one(policies.boundary),
        session=one(policies.session),
        service_control=levels(policies.service_control),
        resource_control=levels(policies.resource_control),
        resource_required=policies.resource_required,
        actions_matched=policies.actions_matched,
    )


_MATCHING: dict[tuple[int, frozenset[str]], tuple[CompiledStatement, CompiledStatement]] = {}
"""statement id and unknown keys → (the statement, it made to match): the same SCP or repository
statement is forced on every question that reads it; bounded, emptied when full"""
_MATCHING_KEPT = 65_536


def _matching(found: Undecided) -> CompiledStatement:
    """The statement with its conditions taken as met (the known ones hold: see `_undecided`);
    a Resource whose variable waits for the caller taken as covering every resource (more
    access than the caller could get: the answer errs towards `Conditional`, never hides one)."""
    statement = found.statement
    key = (id(statement), frozenset(found.keys))
    kept = _MATCHING.get(key)
    if kept is not None and kept[0] is statement:
        return kept[1]
    met: tuple[CompiledCondition, ...] = ()
    if set(found.keys) & set(_resource_keys(statement)):
        forced = dataclasses.replace(statement, conditions=met, resources=None, not_resource=False)
    else:
        forced = dataclasses.replace(statement, conditions=met)
    if len(_MATCHING) >= _MATCHING_KEPT:
        _MATCHING.clear()
    _MATCHING[key] = (statement, forced)
    return forced
