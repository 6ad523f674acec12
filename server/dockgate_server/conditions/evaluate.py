"""Evaluate one condition: set qualifiers, `…IfExists`, `Null` and negation, for every operator."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from dockgate_server.conditions.keys import Context, single_value
from dockgate_server.conditions.operators import NULL, OPERATORS, OperatorSpec
from dockgate_server.policy.model import ConditionClause, SetQualifier
from dockgate_server.policy.variables import (
    Template,
    Variable,
    fixed_chunks,
    has_variables,
    literal_template,
    parse_template,
    resolve_template,
)

__all__ = ["CompiledCondition", "compile_condition", "evaluate_condition"]


class _Unconvertible:
    """A policy value that is not of the operator's type (validation warns about it)."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text


@dataclass(frozen=True, slots=True)
class _Pending:
    """A policy value with a variable: converted per request, once the variable has its value.

    The conversion is a function of the variables' values alone, and the same few values recur
    (a principal's team tag), so it is kept per value tuple in `memo`, which is emptied when full
    rather than grown: a stream of new values costs a conversion each, never memory.
    """

    template: Template
    keys: tuple[str, ...]
    """the lower-cased key of each variable, in order"""
    memo: dict[tuple[str | None, ...], Any] = field(default_factory=dict, compare=False)


_MEMO_SIZE = 256


_NO_VALUE = object()
"""A policy value whose variable has no value and no default."""
_UNSEEN = object()


@dataclass(frozen=True, slots=True)
class CompiledCondition:
    clause: ConditionClause
    key: str
    """lower-cased: condition keys are case-insensitive"""
    spec: OperatorSpec | None
    """None for `Null`"""
    operands: tuple[Any, ...]
    """converted policy values; `_Pending` where a variable waits for the request"""
    templated: bool


def compile_condition(clause: ConditionClause, variables: bool) -> CompiledCondition:
    """Convert the policy values once; keep templates only where a variable needs the request."""
    key = clause.key.lower()
    if clause.operator == NULL:
        operands = tuple(value.lower() == "true" for value in clause.values)
        return CompiledCondition(clause, key, None, operands, False)
    spec = OPERATORS[clause.operator]
    compiled: list[Any] = []
    for text in clause.values:
        template = parse_template(text) if variables and spec.variables else literal_template(text)
        if has_variables(template):
            keys = tuple(part.key for part in template if isinstance(part, Variable))
            compiled.append(_Pending(template, keys))
        else:
            compiled.append(_convert_policy(spec, text, fixed_chunks(template)))
    templated = any(isinstance(value, _Pending) for value in compiled)
    return CompiledCondition(clause, key, spec, tuple(compiled), templated)


def evaluate_condition(condition: CompiledCondition, context: Context, errors: list[str]) -> bool:
    """Whether the condition holds for the request; conversion failures go to `errors`."""
    clause = condition.clause
    value = context.get(condition.key)
    if condition.spec is None:
        return _evaluate_null(condition, value)
    spec = condition.spec
    operands = _resolve_operands(condition, context) if condition.templated else condition.operands
    if clause.qualifier is None:
        if value is None:
            # IAM: a missing key makes IfExists and negated operators true (semantics §4.2)
            return clause.if_exists or spec.negated
        if isinstance(value, tuple):
            return False  # a multivalued key needs a set qualifier
        return _evaluate_one(condition, spec, value, operands, errors)
    if value is None:
        return clause.qualifier is SetQualifier.FOR_ALL_VALUES or clause.if_exists
    values = (value,) if isinstance(value, str) else value
    # any()/all() straight over the generator: mypyc compiles that as a loop that stops at the
    # first deciding value (a generator held in a variable first it would build as a list,
    # evaluating every value: a later one could add a conversion error)
    if clause.qualifier is SetQualifier.FOR_ANY_VALUE:
        return any(_evaluate_one(condition, spec, item, operands, errors) for item in values)
    return all(_evaluate_one(condition, spec, item, operands, errors) for item in values)


def _evaluate_null(condition: CompiledCondition, value: object) -> bool:
    qualifier = condition.clause.qualifier
    # Access Analyzer: ForAllValues:Null is always true, ForAnyValue:Null always false
    if qualifier is SetQualifier.FOR_ALL_VALUES:
        return True
    if qualifier is SetQualifier.FOR_ANY_VALUE:
        return False
    absent = value is None or value in ("", ())  # IAM: an empty value counts as null
    return any(wants_absent == absent for wants_absent in condition.operands)


def _evaluate_one(
    condition: CompiledCondition,
    spec: OperatorSpec,
    text: str,
    operands: tuple[Any, ...],
    errors: list[str],
) -> bool:
    request = spec.request_value(text)
    if request is None:
        errors.append(
            f"condition `{condition.clause.spelled}` on `{condition.clause.key}`: "
            f"request value `{text}` is not {spec.family}"
        )
        return False
    if spec.negated:
        for operand in operands:
            if operand is _NO_VALUE:
                continue  # IAM: a negated operator matches against a missing variable
            if isinstance(operand, _Unconvertible):
                _report_policy_value(condition, spec, operand, errors)
                return False
            if spec.compare(request, operand):
                return False
        return True
    matched = False
    for operand in operands:
        if operand is _NO_VALUE:
            continue
        if isinstance(operand, _Unconvertible):
            _report_policy_value(condition, spec, operand, errors)
            continue
        if spec.compare(request, operand):
            matched = True
            break
    return matched


def _resolve_operands(condition: CompiledCondition, context: Context) -> tuple[Any, ...]:
    spec = condition.spec
    assert spec is not None
    lookup: Callable[[str], str | None] = lambda key: single_value(context, key)  # noqa: E731
    resolved: list[Any] = []
    for text, operand in zip(condition.clause.values, condition.operands, strict=True):
        if not isinstance(operand, _Pending):
            resolved.append(operand)
            continue
        values = tuple(single_value(context, key) for key in operand.keys)
        converted = operand.memo.get(values, _UNSEEN)
        if converted is _UNSEEN:
            chunks = resolve_template(operand.template, lookup)
            converted = _NO_VALUE if chunks is None else _convert_policy(spec, text, chunks)
            if len(operand.memo) >= _MEMO_SIZE:
                operand.memo.clear()
            operand.memo[values] = converted
        resolved.append(converted)
    return tuple(resolved)


def _convert_policy(spec: OperatorSpec, text: str, chunks: Any) -> Any:
    converted = spec.policy_value(chunks)
    return _Unconvertible(text) if converted is None else converted


def _report_policy_value(
    condition: CompiledCondition, spec: OperatorSpec, operand: _Unconvertible, errors: list[str]
) -> None:
    errors.append(
        f"condition `{condition.clause.spelled}` on `{condition.clause.key}`: "
        f"policy value `{operand.text}` is not {spec.family}"
    )
