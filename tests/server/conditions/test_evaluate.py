"""Evaluating one condition (semantics §4.1-§4.6, §5.3): missing keys, multivalued keys, set
qualifiers, `…IfExists`, `Null`, negation, conversion failures and policy variables."""

from __future__ import annotations

import pytest

from dockgate_server.conditions.evaluate import compile_condition, evaluate_condition
from dockgate_server.conditions.keys import Context, ContextValue, normalize_value
from dockgate_server.policy.model import ConditionClause, PolicyKind, SetQualifier
from dockgate_server.policy.parse import parse_policy

ALL = SetQualifier.FOR_ALL_VALUES
ANY = SetQualifier.FOR_ANY_VALUE
ABSENT = None
"""a request value of None: the key is not in the context"""


def evaluate(
    operator: str,
    values: tuple[str, ...],
    context: Context,
    *,
    key: str = "k",
    qualifier: SetQualifier | None = None,
    if_exists: bool = False,
    variables: bool = True,
) -> tuple[bool, list[str]]:
    spelled = (f"{qualifier}:" if qualifier else "") + operator + ("IfExists" if if_exists else "")
    clause = ConditionClause(operator, qualifier, if_exists, key, values, spelled)
    errors: list[str] = []
    result = evaluate_condition(compile_condition(clause, variables), context, errors)
    return result, errors


def context_of(value: ContextValue | None, key: str = "k") -> Context:
    return {} if value is None else {key: value}


# -- §4.6: the worked truth table, exactly --------------------------------------------------

COLUMNS = [
    ("StringEquals", False),
    ("StringNotEquals", False),
    ("StringEquals", True),
    ("StringNotEquals", True),
]
TRUTH_TABLE: list[tuple[ContextValue | None, tuple[bool, bool, bool, bool, bool]]] = [
    (ABSENT, (False, True, True, True, True)),
    ("a", (True, False, True, False, False)),
    ("b", (False, True, False, True, False)),
    (("a", "b"), (False, False, False, False, False)),
]
TRUTH_ROWS = [
    (request, operator, if_exists, row[column])
    for request, row in TRUTH_TABLE
    for column, (operator, if_exists) in enumerate(COLUMNS)
]


@pytest.mark.parametrize(("request_value", "operator", "if_exists", "expected"), TRUTH_ROWS)
def test_truth_table(
    request_value: ContextValue | None, operator: str, if_exists: bool, expected: bool
) -> None:
    result, errors = evaluate(operator, ("a",), context_of(request_value), if_exists=if_exists)
    assert result is expected
    assert errors == []


@pytest.mark.parametrize(
    ("request_value", "expected"), [(request, row[4]) for request, row in TRUTH_TABLE]
)
def test_truth_table_null(request_value: ContextValue | None, expected: bool) -> None:
    assert evaluate("Null", ("true",), context_of(request_value))[0] is expected


# -- §4.3: set qualifiers on absent, empty and non-empty keys --------------------------------

QualifierRow = tuple[SetQualifier, str, tuple[str, ...], ContextValue | None, bool]
QUALIFIERS: list[QualifierRow] = [
    # ForAllValues: absent → true, empty → true, otherwise every value satisfies
    (ALL, "StringEquals", ("a", "b"), ABSENT, True),
    (ALL, "StringEquals", ("a", "b"), (), True),
    (ALL, "StringEquals", ("a", "b"), ("a",), True),
    (ALL, "StringEquals", ("a", "b"), ("a", "b"), True),
    (ALL, "StringEquals", ("a", "b"), ("b", "a", "a"), True),
    (ALL, "StringEquals", ("a", "b"), ("a", "c"), False),
    (ALL, "StringEquals", ("a", "b"), ("c",), False),
    # ForAnyValue: absent → false, empty → false, otherwise some value satisfies
    (ANY, "StringEquals", ("a", "b"), ABSENT, False),
    (ANY, "StringEquals", ("a", "b"), (), False),
    (ANY, "StringEquals", ("a", "b"), ("c", "a"), True),
    (ANY, "StringEquals", ("a", "b"), ("c", "d"), False),
    # negated base operators: for each value, "matches none of the policy values"
    (ALL, "StringNotEquals", ("a",), ABSENT, True),
    (ALL, "StringNotEquals", ("a",), (), True),
    (ALL, "StringNotEquals", ("a",), ("b", "c"), True),
    (ALL, "StringNotEquals", ("a",), ("a", "b"), False),
    (ANY, "StringNotEquals", ("a", "b"), ABSENT, False),
    (ANY, "StringNotEquals", ("a", "b"), (), False),
    (ANY, "StringNotEquals", ("a", "b"), ("a", "c"), True),
    (ANY, "StringNotEquals", ("a", "b"), ("a", "b"), False),
    (ALL, "StringNotLike", ("key1*",), ABSENT, True),
    (ALL, "StringNotLike", ("key1*",), ("key1a",), False),
    (ALL, "StringNotLike", ("key1*",), ("key2", "key3"), True),
    (ANY, "StringNotLike", ("key1*",), ("key1a", "key2"), True),
    (ANY, "StringNotLike", ("key1*",), ("key1a", "key1b"), False),
    # other base operators
    (ALL, "StringLike", ("team*",), ("team-a", "team-b"), True),
    (ALL, "StringLike", ("team*",), ("team-a", "x"), False),
    (ANY, "StringLike", ("team*",), ("x", "team-a"), True),
    (ANY, "NumericLessThan", ("10",), ("20", "5"), True),
    (ALL, "NumericLessThan", ("10",), ("20", "5"), False),
    (ANY, "IpAddress", ("10.0.0.0/8",), ("192.0.2.1", "10.1.2.3"), True),
    (ALL, "NotIpAddress", ("10.0.0.0/8",), ("192.0.2.1", "198.51.100.1"), True),
    (
        ANY,
        "ArnLike",
        ("arn:aws:iam::*:role/*",),
        ("ecs.amazonaws.com", "arn:aws:iam::111122223333:role/x"),
        True,
    ),
    # a qualifier on a single value: V = {v}
    (ALL, "StringEquals", ("a",), "a", True),
    (ALL, "StringEquals", ("a",), "b", False),
    (ANY, "StringEquals", ("a",), "a", True),
    (ANY, "StringEquals", ("a",), "b", False),
    (ANY, "StringNotEquals", ("a",), "b", True),
]


@pytest.mark.parametrize(
    ("qualifier", "operator", "values", "request_value", "expected"), QUALIFIERS
)
def test_set_qualifiers(
    qualifier: SetQualifier,
    operator: str,
    values: tuple[str, ...],
    request_value: ContextValue | None,
    expected: bool,
) -> None:
    context = context_of(request_value, "aws:tagkeys")
    result, _ = evaluate(operator, values, context, key="aws:TagKeys", qualifier=qualifier)
    assert result is expected


def test_for_all_values_alone_is_satisfied_without_tags() -> None:
    # §4.3: pair ForAllValues with `Null: {"aws:TagKeys": "false"}` to require a tag
    allowed = evaluate("StringEquals", ("team",), {}, key="aws:TagKeys", qualifier=ALL)[0]
    tagged = evaluate("Null", ("false",), {}, key="aws:TagKeys")[0]
    assert allowed
    assert not tagged


# -- IfExists (§4.2, §4.3, §4.4) -------------------------------------------------------------

IfExistsRow = tuple[SetQualifier | None, str, tuple[str, ...], ContextValue | None, bool]
IF_EXISTS: list[IfExistsRow] = [
    (None, "StringLike", ("a*",), ABSENT, True),
    (None, "StringLike", ("a*",), "abc", True),
    (None, "StringLike", ("a*",), "xyz", False),
    (None, "NumericLessThan", ("10",), ABSENT, True),
    (None, "NumericLessThan", ("10",), "5", True),
    (None, "NumericLessThan", ("10",), "15", False),
    (None, "NumericLessThan", ("10",), "ten", False),
    (None, "Bool", ("false",), ABSENT, True),
    (None, "Bool", ("false",), "true", False),
    (None, "Bool", ("false",), "FALSE", True),
    (None, "DateLessThan", ("2024-01-01",), ABSENT, True),
    (None, "IpAddress", ("10.0.0.0/8",), ABSENT, True),
    (None, "IpAddress", ("10.0.0.0/8",), "192.0.2.1", False),
    (None, "BinaryEquals", ("QQ==",), ABSENT, True),
    (None, "ArnLike", ("arn:aws:iam::*:role/*",), ABSENT, True),
    # a negated IfExists operator: absent → true, so a Deny still fires
    (None, "StringNotEquals", ("a",), ABSENT, True),
    (None, "ArnNotEquals", ("arn:aws:iam::111122223333:role/ci",), ABSENT, True),
    (None, "NotIpAddress", ("10.0.0.0/8",), ABSENT, True),
    (None, "NotIpAddress", ("10.0.0.0/8",), "10.1.1.1", False),
    # a multivalued value without a qualifier: false, IfExists or not
    (None, "StringEquals", ("a",), ("a", "b"), False),
    # after a set qualifier: IfExists makes an absent key true (§4.3, §12 item 4) ...
    (ANY, "StringEquals", ("a",), ABSENT, True),
    (ALL, "StringEquals", ("a",), ABSENT, True),
    (ANY, "StringNotEquals", ("a",), ABSENT, True),
    # ... and changes nothing when the key is present, empty included
    (ANY, "StringEquals", ("a",), (), False),
    (ALL, "StringEquals", ("a",), (), True),
    (ANY, "StringEquals", ("a",), ("b", "a"), True),
    (ANY, "StringEquals", ("a",), ("b",), False),
    (ALL, "StringEquals", ("a",), ("a", "b"), False),
]


@pytest.mark.parametrize(
    ("qualifier", "operator", "values", "request_value", "expected"), IF_EXISTS
)
def test_if_exists(
    qualifier: SetQualifier | None,
    operator: str,
    values: tuple[str, ...],
    request_value: ContextValue | None,
    expected: bool,
) -> None:
    result, _ = evaluate(
        operator, values, context_of(request_value), qualifier=qualifier, if_exists=True
    )
    assert result is expected


# -- §2.6: an empty list of policy values ----------------------------------------------------

EmptyRow = tuple[SetQualifier | None, bool, str, ContextValue | None, bool]
EMPTY_VALUES: list[EmptyRow] = [
    # a plain operator with [] never matches
    (None, False, "StringEquals", ABSENT, False),
    (None, False, "StringEquals", "a", False),
    (None, False, "StringLike", "", False),
    # ForAnyValue with [] never matches
    (ANY, False, "StringEquals", ABSENT, False),
    (ANY, False, "StringEquals", (), False),
    (ANY, False, "StringEquals", ("a",), False),
    # ForAllValues with [] matches only when the key is absent or empty
    (ALL, False, "StringEquals", ABSENT, True),
    (ALL, False, "StringEquals", (), True),
    (ALL, False, "StringEquals", ("a",), False),
    # IfExists with [] matches only when the key is absent
    (None, True, "StringEquals", ABSENT, True),
    (None, True, "StringEquals", "a", False),
    # a negated operator with [] is vacuously true (NOR over nothing)
    (None, False, "StringNotEquals", "a", True),
    (None, False, "NotIpAddress", "10.0.0.1", True),
]


@pytest.mark.parametrize(
    ("qualifier", "if_exists", "operator", "request_value", "expected"), EMPTY_VALUES
)
def test_empty_policy_values(
    qualifier: SetQualifier | None,
    if_exists: bool,
    operator: str,
    request_value: ContextValue | None,
    expected: bool,
) -> None:
    context = context_of(request_value)
    result, _ = evaluate(operator, (), context, qualifier=qualifier, if_exists=if_exists)
    assert result is expected


# -- Null (§4.5) -----------------------------------------------------------------------------

NullRow = tuple[SetQualifier | None, tuple[str, ...], ContextValue | None, bool]
NULL: list[NullRow] = [
    (None, ("true",), ABSENT, True),
    (None, ("true",), "x", False),
    (None, ("true",), ("a",), False),
    (None, ("false",), ABSENT, False),
    (None, ("false",), "x", True),
    (None, ("false",), ("a", "b"), True),
    # an empty value counts as null
    (None, ("true",), "", True),
    (None, ("false",), "", False),
    (None, ("true",), (), True),
    (None, ("false",), (), False),
    # the policy value is compared ignoring case
    (None, ("TRUE",), ABSENT, True),
    (None, ("False",), "x", True),
    # several values are OR-ed
    (None, ("true", "false"), ABSENT, True),
    (None, ("true", "false"), "x", True),
    # with a qualifier, as Access Analyzer says: ForAllValues always true, ForAnyValue never
    (ALL, ("false",), ABSENT, True),
    (ALL, ("true",), "x", True),
    (ANY, ("true",), ABSENT, False),
    (ANY, ("false",), "x", False),
]


@pytest.mark.parametrize(("qualifier", "values", "request_value", "expected"), NULL)
def test_null(
    qualifier: SetQualifier | None,
    values: tuple[str, ...],
    request_value: ContextValue | None,
    expected: bool,
) -> None:
    result, errors = evaluate("Null", values, context_of(request_value), qualifier=qualifier)
    assert result is expected
    assert errors == []


# -- §4.2 step 2: a missing key ------------------------------------------------------------

MISSING_KEY = [
    ("StringEquals", ("a",), False),
    ("StringEqualsIgnoreCase", ("a",), False),
    ("StringLike", ("*",), False),
    ("NumericEquals", ("1",), False),
    ("NumericLessThan", ("1",), False),
    ("DateEquals", ("2024-01-01",), False),
    ("DateGreaterThan", ("2024-01-01",), False),
    ("Bool", ("false",), False),
    ("BinaryEquals", ("QQ==",), False),
    ("IpAddress", ("0.0.0.0/0",), False),
    ("ArnLike", ("arn:*:*:*:*:*",), False),
    ("ArnEquals", ("arn:*:*:*:*:*",), False),
    # every negated operator is true when the key is missing
    ("StringNotEquals", ("a",), True),
    ("StringNotEqualsIgnoreCase", ("a",), True),
    ("StringNotLike", ("*",), True),
    ("NumericNotEquals", ("1",), True),
    ("DateNotEquals", ("2024-01-01",), True),
    ("NotIpAddress", ("0.0.0.0/0",), True),
    ("ArnNotEquals", ("arn:*:*:*:*:*",), True),
    ("ArnNotLike", ("arn:*:*:*:*:*",), True),
]


@pytest.mark.parametrize(("operator", "values", "expected"), MISSING_KEY)
def test_missing_key(operator: str, values: tuple[str, ...], expected: bool) -> None:
    result, errors = evaluate(operator, values, {"other": "x"})
    assert result is expected
    assert errors == []


# -- §4.2 step 3: a multivalued key without a qualifier is false ----------------------------

MULTIVALUED = [
    # (key, supplied value, operator, policy values, expected)
    ("k", ["a"], "StringEquals", ("a",), False),
    ("k", ["a", "b"], "StringEquals", ("a",), False),
    ("k", ["b", "c"], "StringNotEquals", ("a",), False),
    ("k", ["a", "b"], "StringLike", ("*",), False),
    ("k", ["1", "2"], "NumericLessThan", ("10",), False),
    ("aws:tagkeys", "team", "StringEquals", ("team",), False),
    ("aws:tagkeys", ["team"], "StringNotEquals", ("other",), False),
    ("aws:calledvia", ["ecr.amazonaws.com"], "StringEquals", ("ecr.amazonaws.com",), False),
    # a catalogued single-valued key given as a one-element list is that element
    ("aws:username", ["alice"], "StringEquals", ("alice",), True),
    ("aws:username", ["bob"], "StringNotEquals", ("alice",), True),
    ("aws:principaltag/team", ["red"], "StringEquals", ("red",), True),
    # ... and with more elements it is multivalued
    ("aws:username", ["alice", "bob"], "StringEquals", ("alice",), False),
    ("aws:username", ["alice", "bob"], "StringNotEquals", ("carol",), False),
]


@pytest.mark.parametrize(("key", "supplied", "operator", "values", "expected"), MULTIVALUED)
def test_multivalued_key_without_qualifier(
    key: str, supplied: str | list[str], operator: str, values: tuple[str, ...], expected: bool
) -> None:
    context = {key: normalize_value(key, supplied)}
    assert evaluate(operator, values, context, key=key)[0] is expected


# -- §4.2 step 4: values that do not convert ----------------------------------------------

REQUEST_UNCONVERTIBLE = [
    ("NumericEquals", ("10",), "ten"),
    ("NumericNotEquals", ("10",), "ten"),
    ("NumericLessThan", ("10",), "5abc"),
    ("DateEquals", ("2024-01-01",), "today"),
    ("DateNotEquals", ("2024-01-01",), "today"),
    ("Bool", ("true",), "maybe"),
    ("BinaryEquals", ("QQ==",), "***"),
    ("IpAddress", ("0.0.0.0/0",), "localhost"),
    ("NotIpAddress", ("10.0.0.0/8",), "localhost"),
    ("ArnLike", ("arn:*:*:*:*:*",), "role/ci"),
    ("ArnNotLike", ("arn:aws:iam::*:role/*",), "role/ci"),
]


@pytest.mark.parametrize(("operator", "values", "request_value"), REQUEST_UNCONVERTIBLE)
@pytest.mark.parametrize("if_exists", [False, True])
def test_request_value_that_does_not_convert(
    operator: str, values: tuple[str, ...], request_value: str, if_exists: bool
) -> None:
    result, errors = evaluate(operator, values, {"k": request_value}, if_exists=if_exists)
    assert result is False
    assert len(errors) == 1
    assert f"`{request_value}`" in errors[0]


def test_unconvertible_request_values_under_qualifiers() -> None:
    # each value is evaluated on its own: one that does not convert does not satisfy
    result, errors = evaluate("NumericLessThan", ("10",), {"k": ("ten", "5")}, qualifier=ANY)
    assert result is True
    assert len(errors) == 1
    result, errors = evaluate("NumericLessThan", ("10",), {"k": ("ten", "5")}, qualifier=ALL)
    assert result is False
    assert errors


POLICY_UNCONVERTIBLE = [
    # positive operator: the bad value never matches, another value still may
    ("NumericEquals", ("abc", "10"), "10", True),
    ("NumericEquals", ("10", "abc"), "10", True),
    ("NumericEquals", ("abc",), "10", False),
    ("DateLessThan", ("soon", "2030-01-01"), "2024-01-01", True),
    ("IpAddress", ("bogus", "10.0.0.0/8"), "10.1.2.3", True),
    ("IpAddress", ("bogus",), "10.1.2.3", False),
    ("Bool", ("yes", "true"), "true", True),
    ("ArnLike", ("arn:aws", "arn:aws:iam::*:role/*"), "arn:aws:iam::111122223333:role/x", True),
    # negated operator: the whole condition is false
    ("NumericNotEquals", ("abc",), "5", False),
    ("NumericNotEquals", ("abc", "10"), "5", False),
    ("NumericNotEquals", ("10", "abc"), "5", False),
    ("DateNotEquals", ("yesterday",), "2024-01-01", False),
    ("NotIpAddress", ("bogus",), "10.1.2.3", False),
    ("NotIpAddress", ("10.0.0.0/8", "bogus"), "192.0.2.1", False),
    ("ArnNotLike", ("arn:aws",), "arn:aws:iam::111122223333:role/x", False),
]


@pytest.mark.parametrize(("operator", "values", "request_value", "expected"), POLICY_UNCONVERTIBLE)
def test_policy_value_that_does_not_convert(
    operator: str, values: tuple[str, ...], request_value: str, expected: bool
) -> None:
    assert evaluate(operator, values, {"k": request_value})[0] is expected


# -- §5.2, §5.3: policy variables in condition values ---------------------------------------

TAG = "aws:principaltag/team"
VariableRow = tuple[str, tuple[str, ...], dict[str, ContextValue], bool]
VARIABLES: list[VariableRow] = [
    ("StringEquals", ("${aws:username}",), {"aws:username": "alice", "k": "alice"}, True),
    ("StringEquals", ("${aws:username}",), {"aws:username": "alice", "k": "bob"}, False),
    # variable names are condition keys: any case
    ("StringEquals", ("${AWS:UserName}",), {"aws:username": "alice", "k": "alice"}, True),
    ("StringEquals", ("${aws:PrincipalTag/Team}",), {TAG: "red", "k": "red"}, True),
    ("StringEquals", ("team-${aws:PrincipalTag/team}",), {TAG: "red", "k": "team-red"}, True),
    # missing, positive operator: that value matches nothing; others still may
    ("StringEquals", ("${aws:username}",), {"k": "alice"}, False),
    ("StringEquals", ("${aws:username}",), {"k": "${aws:username}"}, False),
    ("StringEquals", ("${aws:username}", "alice"), {"k": "alice"}, True),
    ("StringLike", ("${aws:username}*",), {"k": "alice"}, False),
    ("StringEqualsIgnoreCase", ("${aws:username}",), {"k": "alice"}, False),
    (
        "ArnLike",
        ("arn:aws:iam::${aws:PrincipalAccount}:role/*",),
        {"k": "arn:aws:iam::111122223333:role/x"},
        False,
    ),
    # missing, negated operator: that value excludes nothing (the guide's Deny fires)
    ("StringNotEquals", ("${aws:PrincipalTag/team}",), {"k": "x"}, True),
    ("StringNotEquals", ("${aws:PrincipalTag/team}", "x"), {"k": "x"}, False),
    ("StringNotEquals", ("${aws:PrincipalTag/team}", "x"), {"k": "y"}, True),
    ("StringNotLike", ("${aws:username}*",), {"k": "alice"}, True),
    ("StringNotEqualsIgnoreCase", ("${aws:username}",), {"k": "alice"}, True),
    (
        "ArnNotLike",
        ("arn:aws:iam::${aws:PrincipalAccount}:role/*",),
        {"k": "arn:aws:iam::111122223333:role/x"},
        True,
    ),
    ("ArnNotEquals", ("${aws:PrincipalArn}",), {"k": "arn:aws:iam::111122223333:role/x"}, True),
    # a multivalued key gives a variable no value
    ("StringEquals", ("${aws:TagKeys}",), {"aws:tagkeys": ("a",), "k": "a"}, False),
    ("StringNotEquals", ("${aws:TagKeys}",), {"aws:tagkeys": ("a",), "k": "a"}, True),
    # a default stands in for a missing value
    ("StringEquals", ("${aws:PrincipalTag/team, 'none'}",), {"k": "none"}, True),
    ("StringEquals", ("${aws:PrincipalTag/team, 'none'}",), {TAG: "red", "k": "red"}, True),
    ("StringEquals", ("${aws:PrincipalTag/team, 'none'}",), {TAG: "red", "k": "none"}, False),
    ("StringNotEquals", ("${aws:PrincipalTag/team, 'none'}",), {"k": "none"}, False),
    # an empty value is a value
    ("StringEquals", ("${aws:PrincipalTag/team}",), {TAG: "", "k": ""}, True),
    # the substituted text is literal, never a pattern
    ("StringLike", ("${aws:PrincipalTag/team}",), {TAG: "*", "k": "anything"}, False),
    ("StringLike", ("${aws:PrincipalTag/team}",), {TAG: "*", "k": "*"}, True),
    ("StringLike", ("${aws:PrincipalTag/team}/*",), {TAG: "r?d", "k": "red/x"}, False),
    ("StringLike", ("${aws:PrincipalTag/team}/*",), {TAG: "r?d", "k": "r?d/x"}, True),
    (
        "ArnLike",
        ("arn:aws:iam::111122223333:role/${aws:PrincipalTag/team}",),
        {TAG: "*", "k": "arn:aws:iam::111122223333:role/x"},
        False,
    ),
    # escapes
    ("StringLike", ("a${*}",), {"k": "a*"}, True),
    ("StringLike", ("a${*}",), {"k": "ab"}, False),
    ("StringLike", ("${?}",), {"k": "?"}, True),
    ("StringLike", ("${?}",), {"k": "x"}, False),
    ("StringEquals", ("${$}{x}",), {"k": "${x}"}, True),
    ("StringLike", ("cost-${$}*",), {"k": "cost-$100"}, True),
    # Arn operators take variables, colons and all
    (
        "ArnLike",
        ("arn:aws:iam::${aws:PrincipalAccount}:role/*",),
        {"aws:principalaccount": "111122223333", "k": "arn:aws:iam::111122223333:role/ci"},
        True,
    ),
    (
        "ArnLike",
        ("arn:aws:iam::${aws:PrincipalAccount}:role/*",),
        {"aws:principalaccount": "111122223333", "k": "arn:aws:iam::444455556666:role/ci"},
        False,
    ),
    (
        "ArnEquals",
        ("${aws:PrincipalArn}",),
        {
            "aws:principalarn": "arn:aws:iam::111122223333:user/alice",
            "k": "arn:aws:iam::111122223333:user/alice",
        },
        True,
    ),
    (
        "ArnEquals",
        ("${aws:PrincipalArn}",),
        {
            "aws:principalarn": "arn:aws:iam::111122223333:user/alice",
            "k": "arn:aws:iam::111122223333:user/bob",
        },
        False,
    ),
    # Bool takes none (§5.2, §12 item 15): a tag saying `true` does not make the condition true
    ("Bool", ("${aws:PrincipalTag/flag}",), {"aws:principaltag/flag": "true", "k": "TRUE"}, False),
    ("Bool", ("${aws:PrincipalTag/flag}",), {"aws:principaltag/flag": "true", "k": "true"}, False),
    ("Bool", ("${aws:PrincipalTag/flag}",), {"k": "${aws:PrincipalTag/flag}"}, False),
    ("StringEqualsIgnoreCase", ("${aws:PrincipalTag/team}",), {TAG: "Red", "k": "RED"}, True),
    # Numeric, Date, IP and Binary values take none: `${…}` is text that does not convert
    (
        "NumericEquals",
        ("${aws:MultiFactorAuthAge}",),
        {"aws:multifactorauthage": "10", "k": "10"},
        False,
    ),
    (
        "DateEquals",
        ("${aws:CurrentTime}",),
        {"aws:currenttime": "2024-01-01T00:00:00Z", "k": "2024-01-01T00:00:00Z"},
        False,
    ),
    ("IpAddress", ("${aws:SourceIp}",), {"aws:sourceip": "10.0.0.1", "k": "10.0.0.1"}, False),
    ("BinaryEquals", ("${k}",), {"k": "QQ=="}, False),
]


@pytest.mark.parametrize(("operator", "values", "context", "expected"), VARIABLES)
def test_variables(
    operator: str, values: tuple[str, ...], context: dict[str, ContextValue], expected: bool
) -> None:
    assert evaluate(operator, values, context)[0] is expected


def test_variables_under_a_set_qualifier() -> None:
    context: Context = {TAG: "red", "aws:tagkeys": ("red", "blue")}
    values = ("${aws:PrincipalTag/team}", "blue")
    assert evaluate("StringEquals", values, context, key="aws:TagKeys", qualifier=ALL)[0]
    assert not evaluate("StringEquals", values[:1], context, key="aws:TagKeys", qualifier=ALL)[0]


NO_VARIABLES: list[VariableRow] = [
    # §2.1, §5.2: outside 2012-10-17 `${…}` is the literal text
    ("StringEquals", ("${aws:username}",), {"aws:username": "alice", "k": "alice"}, False),
    ("StringEquals", ("${aws:username}",), {"aws:username": "alice", "k": "${aws:username}"}, True),
    ("StringNotEquals", ("${aws:username}",), {"k": "${aws:username}"}, False),
    ("StringLike", ("${aws:username}*",), {"k": "${aws:username}-x"}, True),
    ("StringLike", ("a${*}",), {"k": "a${b}"}, True),
    ("StringEquals", ("a${*}",), {"k": "a*"}, False),
    ("StringEquals", ("a${*}",), {"k": "a${*}"}, True),
    # no variables means no syntax errors either
    ("StringEquals", ("${aws:username",), {"k": "${aws:username"}, True),
]


@pytest.mark.parametrize(("operator", "values", "context", "expected"), NO_VARIABLES)
def test_no_variables_outside_2012_10_17(
    operator: str, values: tuple[str, ...], context: dict[str, ContextValue], expected: bool
) -> None:
    assert evaluate(operator, values, context, variables=False)[0] is expected


# -- keys are case-insensitive (§3.1, §3.6) ------------------------------------------------

KEY_SPELLINGS = ["aws:username", "AWS:UserName", "Aws:USERNAME"]


@pytest.mark.parametrize("key", KEY_SPELLINGS)
def test_condition_keys_are_case_insensitive(key: str) -> None:
    assert evaluate("StringEquals", ("alice",), {"aws:username": "alice"}, key=key)[0]


def test_tag_keys_are_case_insensitive() -> None:
    context: Context = {"aws:principaltag/team": "red"}
    assert evaluate("StringEquals", ("red",), context, key="aws:PrincipalTag/TEAM")[0]
    assert evaluate("Null", ("false",), context, key="aws:PrincipalTag/Team")[0]


# -- the same through parsed policies ------------------------------------------------------


def _conditions_of(document: dict[str, object]) -> list[tuple[bool, ConditionClause]]:
    parsed = parse_policy(document, kind=PolicyKind.IDENTITY, name="p")
    return [(parsed.has_variables, c) for s in parsed.statements for c in s.conditions]


@pytest.mark.parametrize(
    ("version", "expected"), [("2012-10-17", True), ("2008-10-17", False), (None, False)]
)
def test_parsed_policy_version_decides_variables(version: str | None, expected: bool) -> None:
    statement = {
        "Effect": "Deny",
        "Action": "ecr:*",
        "Resource": "*",
        "Condition": {"StringEquals": {"ecr:ResourceTag/Owner": "${aws:username}"}},
    }
    document: dict[str, object] = {"Statement": [statement]}
    if version is not None:
        document["Version"] = version
    ((variables, clause),) = _conditions_of(document)
    compiled = compile_condition(clause, variables)
    context: Context = {"aws:username": "alice", "ecr:resourcetag/owner": "alice"}
    assert evaluate_condition(compiled, context, []) is expected


def test_parsed_guide_example_denies_a_principal_without_the_tag() -> None:
    # §5.3: Deny + StringNotEquals against a missing variable denies
    document: dict[str, object] = {
        "Version": "2012-10-17",
        "Statement": {
            "Effect": "Deny",
            "Action": "ecr:*",
            "Resource": "*",
            "Condition": {"stringnotequals": {"ecr:ResourceTag/Team": "${aws:PrincipalTag/Team}"}},
        },
    }
    ((variables, clause),) = _conditions_of(document)
    compiled = compile_condition(clause, variables)
    assert evaluate_condition(compiled, {"ecr:resourcetag/team": "red"}, [])
    tagged: Context = {"ecr:resourcetag/team": "red", "aws:principaltag/team": "red"}
    assert not evaluate_condition(compiled, tagged, [])


def test_parsed_scalars_compare_as_their_types() -> None:
    document: dict[str, object] = {
        "Version": "2012-10-17",
        "Statement": {
            "Effect": "Allow",
            "Action": "ecr:*",
            "Resource": "*",
            "Condition": {
                "Bool": {"aws:SecureTransport": True},
                "NumericLessThan": {"aws:MultiFactorAuthAge": 3600},
            },
        },
    }
    context: Context = {"aws:securetransport": "TRUE", "aws:multifactorauthage": "3599.5"}
    results = [
        evaluate_condition(compile_condition(clause, variables), context, [])
        for variables, clause in _conditions_of(document)
    ]
    assert results == [True, True]


# -- set qualifiers stop at the deciding value ------------------------------------------------


@pytest.mark.parametrize(
    ("qualifier", "values", "expected", "reported"),
    [
        (ANY, ("5", "five"), True, []),  # the first value decides: the second is never read
        (ANY, ("five", "5"), True, ["five"]),
        (ALL, ("4", "five"), False, []),  # the first value fails: the second is never read
        (ALL, ("5", "five"), False, ["five"]),
    ],
)
def test_a_set_qualifier_reads_values_until_one_decides(
    qualifier: SetQualifier, values: tuple[str, ...], expected: bool, reported: list[str]
) -> None:
    """Only the values read report a conversion error (compiled or not: the evaluator is
    compiled with mypyc, which must keep `any`/`all` lazy)."""
    result, errors = evaluate("NumericEquals", ("5",), {"k": values}, qualifier=qualifier)
    assert result is expected
    assert [value for value in reported if any(f"`{value}`" in e for e in errors)] == reported
    assert len(errors) == len(reported)
