"""Assess one principal, action and repository: allowed always, in some contexts, or never.

`engine.partial.decide_partial` gives the two extremes; a `Conditional` answer also names the
statements whose conditions the caller's context decides, and, when a few contexts built from
those conditions' own values find one, a context that `decide` allows (the example proves the
access is reachable; an answer without one errs towards showing access, never hides it).
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable, Iterable, Iterator, Sequence

from dockgate_server.analysis.finding import Access, ConditionalStatement, Finding, PrincipalType
from dockgate_server.conditions.keys import MULTIVALUED_KEYS
from dockgate_server.engine.decide import Question, decide
from dockgate_server.engine.partial import PartialDecision, Undecided, decide_partial
from dockgate_server.engine.snapshot import Snapshot
from dockgate_server.policy.model import Effect

__all__ = ["assess", "deciding", "example_contexts", "finding_of"]

_EXAMPLES_TRIED = 64
"""contexts tried for an example: the product of a few values per key, cut short"""


def assess(
    snapshot: Snapshot,
    principal: str,
    principal_type: PrincipalType,
    action: str,
    resource: str,
    *,
    now: float | None = None,
    examples: bool = True,
) -> Finding:
    """The access of `principal` to `action` on `resource`, for every context it could send.

    Raises `RequestError` for a malformed principal, action or resource."""
    question = Question(principal, action, resource)
    partial = decide_partial(snapshot, question, now=now)

    def search() -> dict[str, str | tuple[str, ...]] | None:
        return _example(snapshot, question, partial.undecided, now)

    return finding_of(
        partial,
        Finding(principal, principal_type, action, resource, Access.ALLOWED, snapshot.revision),
        search if examples else None,
    )


def finding_of(
    partial: PartialDecision,
    about: Finding,
    example: Callable[[], dict[str, str | tuple[str, ...]] | None] | None = None,
) -> Finding:
    """The finding `partial` makes of the pair `about` names (its access and reasons set from
    `partial`); `example`, called only for a `Conditional` answer, finds a context allowed."""
    if not partial.undecided or partial.always_allowed:
        least = partial.least
        return dataclasses.replace(about, access=Access.of(least.outcome), reasons=least.reasons)
    most = partial.most
    if partial.never_allowed:
        return dataclasses.replace(about, access=Access.of(most.outcome), reasons=most.reasons)
    return dataclasses.replace(
        about,
        access=Access.CONDITIONAL,
        reasons=most.reasons,
        conditions=deciding(partial),
        example=example() if example is not None else None,
    )


def deciding(partial: PartialDecision) -> tuple[ConditionalStatement, ...]:
    """The undecided Allow statements that grant at the most, and the undecided Deny statements
    that deny at the least (every one of them matches there)."""
    allowing = {(r.policy, r.statement) for r in partial.most.reasons if r.effect is Effect.ALLOW}
    denying = {(r.policy, r.statement) for r in partial.least.reasons if r.effect is Effect.DENY}
    found = []
    for undecided in partial.undecided:
        statement = undecided.statement
        wanted = allowing if statement.effect is Effect.ALLOW else denying
        if (statement.policy, statement.index) in wanted:
            found.append(ConditionalStatement.of(statement, undecided.keys))
    return tuple(found)


def _example(
    snapshot: Snapshot,
    question: Question,
    undecided: Sequence[Undecided],
    now: float | None,
) -> dict[str, str | tuple[str, ...]] | None:
    for context in example_contexts(undecided):
        try:
            attempt = Question.of(question.principal, question.action, question.resource, context)
        except ValueError:
            continue  # a value the request path refuses is no example
        if decide(snapshot, attempt, now=now).allowed:
            return context
    return None


def example_contexts(undecided: Sequence[Undecided]) -> Iterator[dict[str, str | tuple[str, ...]]]:
    """The contexts worth trying for an example, in order: a few values of each key the
    undecided statements read, combined, cut short."""
    keys = sorted({key for found in undecided for key in found.keys})
    choices = [[None, *_values(key, undecided)] for key in keys]
    for values in itertools.islice(itertools.product(*choices), 1, _EXAMPLES_TRIED + 1):
        context = {key: value for key, value in zip(keys, values, strict=True) if value is not None}
        if context:
            yield context


def _values(key: str, undecided: Iterable[Undecided]) -> list[str | tuple[str, ...]]:
    """Values worth sending for `key`: each policy value as the operator reads it, and one just
    outside it."""
    found: dict[str | tuple[str, ...], None] = {}
    for undecided_statement in undecided:
        for condition in undecided_statement.statement.conditions:
            clause = condition.clause
            if clause.key.lower() != key:
                continue
            many = clause.qualifier is not None or key in MULTIVALUED_KEYS
            for text in _texts(clause.operator, clause.values):
                found[(text,) if many else text] = None
            if many:
                found[()] = None
    return list(found)


def _texts(operator: str, values: Sequence[str]) -> Iterator[str]:
    literal = [value for value in values if "${" not in value]
    if operator.startswith(("String", "Arn")):
        yield from (value.replace("*", "").replace("?", "x") for value in literal)
        yield "dockgate-example"
    elif operator.endswith("IpAddress"):
        yield from (value.split("/", 1)[0] for value in literal)
        yield "198.18.0.1"
    elif operator == "Bool":
        yield from ("true", "false")
    elif operator.startswith("Numeric"):
        for value in literal:
            yield value
            if value.lstrip("-").isdigit():
                yield str(int(value) - 1)
                yield str(int(value) + 1)
    elif operator.startswith("Date"):
        yield from literal
        yield from ("1970-01-02T00:00:00Z", "2999-12-31T00:00:00Z")
    elif operator == "Null":
        yield "dockgate-example"
    else:
        yield from literal
