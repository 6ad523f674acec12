"""Condition operators, one table per family (semantics §4.4), each row run through the evaluator.

A row is (operator, policy values, request value, expected): the request value is the only value of
a single-valued key `k`, so each row exercises one operator and the OR / NOR of §4.1.
"""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dockgate_server.conditions.evaluate import compile_condition, evaluate_condition
from dockgate_server.conditions.operators import NULL, OPERATORS, lookup_operator
from dockgate_server.policy.model import ConditionClause

Row = tuple[str, tuple[str, ...], str, bool]


def run(operator: str, values: tuple[str, ...], request: str) -> tuple[bool, list[str]]:
    clause = ConditionClause(operator, None, False, "k", values, operator)
    errors: list[str] = []
    result = evaluate_condition(compile_condition(clause, True), {"k": request}, errors)
    return result, errors


def check(operator: str, values: tuple[str, ...], request: str, expected: bool) -> None:
    result, _ = run(operator, values, request)
    assert result is expected


STRING: list[Row] = [
    ("StringEquals", ("a",), "a", True),
    ("StringEquals", ("a",), "A", False),
    ("StringEquals", ("a",), "ab", False),
    ("StringEquals", ("a", "b"), "b", True),
    ("StringEquals", ("a", "b"), "c", False),
    ("StringEquals", ("",), "", True),
    ("StringEquals", ("",), "a", False),
    ("StringEquals", ("café",), "café", True),
    # `*` and `?` are literal outside the Like operators (§3.2)
    ("StringEquals", ("a*",), "abc", False),
    ("StringEquals", ("a*",), "a*", True),
    ("StringEquals", ("a?",), "ab", False),
    ("StringEquals", ("10",), "10.0", False),
    ("StringNotEquals", ("a",), "a", False),
    ("StringNotEquals", ("a",), "b", True),
    ("StringNotEquals", ("a",), "A", True),
    # NOR: "neither A nor B" (§4.1)
    ("StringNotEquals", ("111122223333", "444455556666"), "444455556666", False),
    ("StringNotEquals", ("111122223333", "444455556666"), "111122223333", False),
    ("StringNotEquals", ("111122223333", "444455556666"), "999999999999", True),
    ("StringNotEquals", ("a*",), "abc", True),
]


@pytest.mark.parametrize(("operator", "values", "request_value", "expected"), STRING)
def test_string(operator: str, values: tuple[str, ...], request_value: str, expected: bool) -> None:
    check(operator, values, request_value, expected)


STRING_IGNORE_CASE: list[Row] = [
    ("StringEqualsIgnoreCase", ("Team-A",), "team-a", True),
    ("StringEqualsIgnoreCase", ("Team-A",), "TEAM-A", True),
    ("StringEqualsIgnoreCase", ("Team-A",), "team-b", False),
    ("StringEqualsIgnoreCase", ("ÉCOLE",), "école", True),
    ("StringEqualsIgnoreCase", ("x", "Prod"), "pROD", True),
    ("StringEqualsIgnoreCase", ("a*",), "ABC", False),
    ("StringEqualsIgnoreCase", ("a*",), "A*", True),
    ("StringNotEqualsIgnoreCase", ("Prod",), "PROD", False),
    ("StringNotEqualsIgnoreCase", ("Prod",), "dev", True),
    ("StringNotEqualsIgnoreCase", ("Prod", "Dev"), "DEV", False),
    ("StringNotEqualsIgnoreCase", ("Prod", "Dev"), "test", True),
]


@pytest.mark.parametrize(("operator", "values", "request_value", "expected"), STRING_IGNORE_CASE)
def test_string_ignore_case(
    operator: str, values: tuple[str, ...], request_value: str, expected: bool
) -> None:
    check(operator, values, request_value, expected)


STRING_LIKE: list[Row] = [
    ("StringLike", ("repo/*",), "repo/a/b", True),
    ("StringLike", ("repo/*",), "repo", False),
    ("StringLike", ("a?c",), "abc", True),
    ("StringLike", ("a?c",), "ac", False),
    # case-sensitive, anchored at both ends
    ("StringLike", ("a?c",), "ABC", False),
    ("StringLike", ("b",), "abc", False),
    ("StringLike", ("*",), "", True),
    ("StringLike", ("*",), "anything", True),
    ("StringLike", ("a*",), "b", False),
    ("StringLike", ("x", "y*"), "yz", True),
    ("StringLike", ("x", "y*"), "zy", False),
    ("StringLike", ("*:role/ci-*",), "arn:aws:iam::111122223333:role/ci-build", True),
    ("StringNotLike", ("key1*",), "key1x", False),
    ("StringNotLike", ("key1*",), "key2", True),
    ("StringNotLike", ("a*", "b*"), "bz", False),
    ("StringNotLike", ("a*", "b*"), "cz", True),
    ("StringNotLike", ("?",), "", True),
]


@pytest.mark.parametrize(("operator", "values", "request_value", "expected"), STRING_LIKE)
def test_string_like(
    operator: str, values: tuple[str, ...], request_value: str, expected: bool
) -> None:
    check(operator, values, request_value, expected)


NUMERIC: list[Row] = [
    ("NumericEquals", ("10",), "10", True),
    ("NumericEquals", ("10",), "10.0", True),
    ("NumericEquals", ("10.0",), "10", True),
    ("NumericEquals", ("10",), "10.5", False),
    ("NumericEquals", ("10",), "9", False),
    ("NumericEquals", ("-1",), "-1.0", True),
    ("NumericEquals", ("0.1",), "0.10", True),
    ("NumericEquals", ("1", "2"), "2", True),
    ("NumericEquals", ("12345678901234567890",), "12345678901234567890.0", True),
    ("NumericEquals", ("12345678901234567890",), "12345678901234567891", False),
    # trailing text does not convert (§4.4, §12 item 8): false
    ("NumericEquals", ("10",), "10abc", False),
    ("NumericEquals", ("10abc",), "10", False),
    ("NumericEquals", ("10",), "ten", False),
    ("NumericEquals", ("10",), "", False),
    ("NumericNotEquals", ("10",), "10.0", False),
    ("NumericNotEquals", ("10",), "11", True),
    ("NumericNotEquals", ("10", "11"), "11", False),
    ("NumericNotEquals", ("10",), "10abc", False),
    ("NumericLessThan", ("10",), "9.99", True),
    ("NumericLessThan", ("10",), "10", False),
    ("NumericLessThan", ("10",), "-20", True),
    ("NumericLessThan", ("3600",), "3601", False),
    ("NumericLessThanEquals", ("10",), "10.0", True),
    ("NumericLessThanEquals", ("10",), "10.5", False),
    ("NumericGreaterThan", ("10",), "10.01", True),
    ("NumericGreaterThan", ("10",), "10", False),
    ("NumericGreaterThan", ("9",), "10", True),
    ("NumericGreaterThanEquals", ("10",), "10", True),
    ("NumericGreaterThanEquals", ("10",), "9", False),
    # several values: any satisfies
    ("NumericLessThan", ("5", "20"), "10", True),
]


@pytest.mark.parametrize(("operator", "values", "request_value", "expected"), NUMERIC)
def test_numeric(
    operator: str, values: tuple[str, ...], request_value: str, expected: bool
) -> None:
    check(operator, values, request_value, expected)


NEW_YEAR = "2024-01-01T00:00:00Z"
NEW_YEAR_EPOCH = "1704067200"

DATE: list[Row] = [
    ("DateEquals", (NEW_YEAR,), NEW_YEAR, True),
    # epoch seconds and ISO 8601 are the same instant (§4.4, §12 item 7)
    ("DateEquals", (NEW_YEAR,), NEW_YEAR_EPOCH, True),
    ("DateEquals", (NEW_YEAR_EPOCH,), NEW_YEAR, True),
    ("DateEquals", (NEW_YEAR_EPOCH,), NEW_YEAR_EPOCH, True),
    ("DateEquals", (NEW_YEAR,), "1704067201", False),
    ("DateLessThan", (NEW_YEAR,), "1704067199", True),
    ("DateLessThan", (NEW_YEAR,), NEW_YEAR_EPOCH, False),
    ("DateLessThan", (NEW_YEAR_EPOCH,), "2023-12-31T23:59:59Z", True),
    ("DateLessThan", (NEW_YEAR_EPOCH,), "2024-01-01T00:00:01Z", False),
    ("DateGreaterThan", (NEW_YEAR,), "1800000000", True),
    ("DateGreaterThan", ("1800000000",), "2025-06-01T00:00:00Z", False),
    ("DateGreaterThan", (NEW_YEAR_EPOCH,), "2024-01-01T00:00:00.5Z", True),
    # time zones: all compared as instants
    ("DateEquals", ("2024-01-01T01:00:00+01:00",), NEW_YEAR, True),
    ("DateEquals", ("2023-12-31T19:00:00-05:00",), NEW_YEAR, True),
    ("DateEquals", ("2024-01-01T05:30:00+05:30",), NEW_YEAR_EPOCH, True),
    ("DateEquals", ("2024-01-01T00:00:00+01:00",), NEW_YEAR, False),
    ("DateLessThan", ("2024-01-01T00:00:00+01:00",), "2023-12-31T23:30:00Z", False),
    ("DateLessThan", ("2024-01-01T00:00:00-01:00",), "2024-01-01T00:30:00Z", True),
    # the W3C forms: year, month, day (00:00:00Z that day), minutes, seconds, fractions
    # (a bare `YYYY` is also an integer of epoch seconds; §4.4 does not say which reading wins)
    ("DateEquals", ("2024-02",), "2024-02-01T00:00:00Z", True),
    ("DateEquals", ("2024-01-01",), NEW_YEAR, True),
    ("DateEquals", ("2024-01-01",), NEW_YEAR_EPOCH, True),
    ("DateGreaterThan", ("2024-01-01",), "2024-01-01T00:00:01Z", True),
    ("DateLessThan", ("2024-01-02",), "2024-01-01T23:59:59Z", True),
    ("DateLessThan", ("2024-01-02",), "2024-01-02T00:00:00Z", False),
    ("DateEquals", ("2024-01-01T10:30Z",), "2024-01-01T10:30:00Z", True),
    ("DateEquals", ("2024-01-01T10:30:00.000Z",), "2024-01-01T10:30:00Z", True),
    ("DateLessThanEquals", ("2024-01-01T10:30:00.25Z",), "2024-01-01T10:30:00.2Z", True),
    ("DateGreaterThanEquals", (NEW_YEAR,), NEW_YEAR_EPOCH, True),
    ("DateGreaterThanEquals", (NEW_YEAR,), "1704067199", False),
    ("DateNotEquals", ("2024-01-01",), "2024-01-02", True),
    ("DateNotEquals", ("2024-01-01",), NEW_YEAR_EPOCH, False),
    ("DateNotEquals", ("2024-01-01", "2024-01-02"), "2024-01-02T00:00:00Z", False),
    # not dates: false
    ("DateEquals", (NEW_YEAR,), "not-a-date", False),
    ("DateEquals", (NEW_YEAR,), "2024-13-01", False),
    ("DateEquals", (NEW_YEAR,), "2024-02-30", False),
    ("DateEquals", (NEW_YEAR,), "2024-01-01T25:00Z", False),
    ("DateEquals", (NEW_YEAR,), "2024/01/01", False),
    ("DateEquals", (NEW_YEAR,), "01-01-2024", False),
    ("DateEquals", (NEW_YEAR,), "2024-01-01T10Z", False),
    ("DateEquals", (NEW_YEAR,), "", False),
    ("DateNotEquals", (NEW_YEAR,), "yesterday", False),
    ("DateLessThan", ("soon",), NEW_YEAR, False),
]


@pytest.mark.parametrize(("operator", "values", "request_value", "expected"), DATE)
def test_date(operator: str, values: tuple[str, ...], request_value: str, expected: bool) -> None:
    check(operator, values, request_value, expected)


DATE_WITHOUT_ZONE: list[Row] = [
    # §4.4: a time of day must carry its zone designator (TZD = `Z` or `±hh:mm`)
    ("DateEquals", ("2024-01-01T10:00:00Z",), "2024-01-01T10:00:00", False),
    ("DateNotEquals", ("2024-01-01T10:00:00Z",), "2024-01-01T10:00", False),
]


@pytest.mark.parametrize(("operator", "values", "request_value", "expected"), DATE_WITHOUT_ZONE)
def test_date_time_without_zone_does_not_convert(
    operator: str, values: tuple[str, ...], request_value: str, expected: bool
) -> None:
    result, errors = run(operator, values, request_value)
    assert result is expected
    assert errors


BOOL: list[Row] = [
    ("Bool", ("true",), "true", True),
    ("Bool", ("true",), "TRUE", True),
    ("Bool", ("true",), "True", True),
    ("Bool", ("true",), "false", False),
    ("Bool", ("false",), "FALSE", True),
    ("Bool", ("false",), "true", False),
    ("Bool", ("TRUE",), "true", True),
    ("Bool", ("False",), "false", True),
    ("Bool", ("true", "false"), "false", True),
    # anything else does not convert
    ("Bool", ("true",), "yes", False),
    ("Bool", ("true",), "1", False),
    ("Bool", ("true",), "", False),
    ("Bool", ("true",), " true", False),
    ("Bool", ("yes",), "true", False),
]


@pytest.mark.parametrize(("operator", "values", "request_value", "expected"), BOOL)
def test_bool(operator: str, values: tuple[str, ...], request_value: str, expected: bool) -> None:
    check(operator, values, request_value, expected)


BINARY: list[Row] = [
    ("BinaryEquals", ("QmluYXJ5VmFsdWU=",), "QmluYXJ5VmFsdWU=", True),
    ("BinaryEquals", ("QmluYXJ5VmFsdWU=",), "QmluYXJ5VmFsdWF=", False),
    ("BinaryEquals", ("QQ==",), "Qg==", False),
    ("BinaryEquals", ("QQ==", "Qg=="), "Qg==", True),
    ("BinaryEquals", ("",), "", True),
    ("BinaryEquals", ("QQ==",), "A", False),
    ("BinaryEquals", ("QQ==",), "!!!!", False),
    ("BinaryEquals", ("not base64!",), "QQ==", False),
]


@pytest.mark.parametrize(("operator", "values", "request_value", "expected"), BINARY)
def test_binary(operator: str, values: tuple[str, ...], request_value: str, expected: bool) -> None:
    check(operator, values, request_value, expected)


IP: list[Row] = [
    ("IpAddress", ("203.0.113.0/24",), "203.0.113.7", True),
    ("IpAddress", ("203.0.113.0/24",), "203.0.113.255", True),
    ("IpAddress", ("203.0.113.0/24",), "203.0.114.1", False),
    ("IpAddress", ("0.0.0.0/0",), "198.51.100.1", True),
    ("IpAddress", ("203.0.113.0/24", "198.51.100.0/24"), "198.51.100.9", True),
    # a bare address is a /32 or /128
    ("IpAddress", ("203.0.113.7",), "203.0.113.7", True),
    ("IpAddress", ("203.0.113.7",), "203.0.113.8", False),
    ("IpAddress", ("2001:DB8:1234:5678::/64",), "2001:db8:1234:5678::1", True),
    ("IpAddress", ("2001:DB8:1234:5678::/64",), "2001:db8:1234:5678:ffff:ffff:ffff:ffff", True),
    ("IpAddress", ("2001:DB8:1234:5678::/64",), "2001:db8:1234:5679::1", False),
    # compared as numbers, not as text
    ("IpAddress", ("2001:db8::1",), "2001:DB8:0:0:0:0:0:1", True),
    ("IpAddress", ("2001:DB8:0:0:0:0:0:1",), "2001:db8::1", True),
    ("IpAddress", ("2001:db8::1",), "2001:db8::2", False),
    # versions never mix
    ("IpAddress", ("203.0.113.0/24",), "2001:db8::1", False),
    ("IpAddress", ("::/0",), "203.0.113.7", False),
    ("IpAddress", ("0.0.0.0/0",), "::1", False),
    ("NotIpAddress", ("203.0.113.0/24",), "2001:db8::1", True),
    ("NotIpAddress", ("203.0.113.0/24", "198.51.100.0/24"), "2001:db8::1", True),
    ("NotIpAddress", ("2001:db8::/32",), "203.0.113.7", True),
    ("NotIpAddress", ("203.0.113.0/24",), "203.0.113.7", False),
    ("NotIpAddress", ("203.0.113.0/24", "198.51.100.0/24"), "198.51.100.1", False),
    ("NotIpAddress", ("203.0.113.0/24", "198.51.100.0/24"), "192.0.2.1", True),
    # a request value that is not an address: false, negated too
    ("IpAddress", ("0.0.0.0/0",), "not-an-ip", False),
    ("IpAddress", ("203.0.113.0/24",), "203.0.113.0/24", False),
    ("IpAddress", ("0.0.0.0/0",), "", False),
    ("NotIpAddress", ("203.0.113.0/24",), "not-an-ip", False),
    ("IpAddress", ("bogus",), "203.0.113.7", False),
]


@pytest.mark.parametrize(("operator", "values", "request_value", "expected"), IP)
def test_ip(operator: str, values: tuple[str, ...], request_value: str, expected: bool) -> None:
    check(operator, values, request_value, expected)


ACCOUNT = "111122223333"
FINANCE_PATTERN = f"arn:aws:someservice:*:{ACCOUNT}:finance/*"
FINANCE_VALUE = (
    f"arn:aws:someservice:us-east-2:999999999999:store/abc:{ACCOUNT}:finance/document.txt"
)
ROLE_CI = f"arn:aws:iam::{ACCOUNT}:role/ci"

ARN: list[Row] = [
    # the documented difference between StringLike and ArnLike (§4.4)
    ("StringLike", (FINANCE_PATTERN,), FINANCE_VALUE, True),
    ("ArnLike", (FINANCE_PATTERN,), FINANCE_VALUE, False),
    ("ArnEquals", (FINANCE_PATTERN,), FINANCE_VALUE, False),
    ("ArnNotLike", (FINANCE_PATTERN,), FINANCE_VALUE, True),
    ("ArnLike", (FINANCE_PATTERN,), f"arn:aws:someservice:us-east-2:{ACCOUNT}:finance/x", True),
    # ArnEquals honours wildcards like ArnLike
    (
        "ArnLike",
        (f"arn:aws:ecr:*:{ACCOUNT}:repository/*",),
        f"arn:aws:ecr:us-east-1:{ACCOUNT}:repository/team/app",
        True,
    ),
    (
        "ArnEquals",
        (f"arn:aws:ecr:*:{ACCOUNT}:repository/*",),
        f"arn:aws:ecr:us-east-1:{ACCOUNT}:repository/team/app",
        True,
    ),
    (
        "ArnLike",
        (f"arn:aws:ecr:*:{ACCOUNT}:repository/*",),
        "arn:aws:ecr:us-east-1:444455556666:repository/app",
        False,
    ),
    (
        "ArnLike",
        (f"arn:aws:ecr:us-east-?:{ACCOUNT}:repository/app",),
        f"arn:aws:ecr:us-east-1:{ACCOUNT}:repository/app",
        True,
    ),
    (
        "ArnLike",
        (f"arn:aws:ecr:us-east-?:{ACCOUNT}:repository/app",),
        f"arn:aws:ecr:us-east-10:{ACCOUNT}:repository/app",
        False,
    ),
    ("ArnLike", ("arn:aws:*:*:*:*",), ROLE_CI, True),
    # case-sensitive
    (
        "ArnLike",
        (f"arn:aws:ecr:us-east-1:{ACCOUNT}:repository/App",),
        f"arn:aws:ecr:us-east-1:{ACCOUNT}:repository/app",
        False,
    ),
    ("ArnEquals", (f"arn:aws:IAM::{ACCOUNT}:role/ci",), ROLE_CI, False),
    # the remainder is one pattern: its `*` crosses `/` and `:`
    ("ArnLike", ("arn:aws:s3:::bucket/*",), "arn:aws:s3:::bucket/a:b/c", True),
    (
        "ArnLike",
        ("arn:aws:logs:*:*:log-group:/ecs/*",),
        f"arn:aws:logs:us-east-1:{ACCOUNT}:log-group:/ecs/app:*",
        True,
    ),
    # empty parts: an empty part matches only an empty part; `*` matches empty too
    ("ArnEquals", (f"arn:aws:iam::{ACCOUNT}:root",), f"arn:aws:iam::{ACCOUNT}:root", True),
    (
        "ArnEquals",
        (f"arn:aws:iam::{ACCOUNT}:root",),
        f"arn:aws:iam:us-east-1:{ACCOUNT}:root",
        False,
    ),
    ("ArnLike", (f"arn:aws:iam:*:{ACCOUNT}:root",), f"arn:aws:iam::{ACCOUNT}:root", True),
    ("ArnEquals", (ROLE_CI,), ROLE_CI, True),
    ("ArnEquals", (ROLE_CI,), f"{ROLE_CI}-2", False),
    ("ArnNotEquals", (ROLE_CI,), ROLE_CI, False),
    ("ArnNotEquals", (ROLE_CI,), f"arn:aws:iam::{ACCOUNT}:role/other", True),
    ("ArnNotLike", (f"arn:aws:iam::{ACCOUNT}:role/*",), f"arn:aws:iam::{ACCOUNT}:user/x", True),
    ("ArnNotLike", (f"arn:aws:iam::{ACCOUNT}:role/*",), ROLE_CI, False),
    (
        "ArnNotLike",
        (f"arn:aws:iam::{ACCOUNT}:user/*", f"arn:aws:iam::{ACCOUNT}:role/*"),
        ROLE_CI,
        False,
    ),
    # fewer than six parts does not convert: false, negated too
    ("ArnLike", ("arn:aws:iam::*",), f"arn:aws:iam::{ACCOUNT}", False),
    ("ArnLike", ("*",), ROLE_CI, False),
    ("ArnNotLike", ("arn:aws:iam::*:*",), f"arn:aws:iam::{ACCOUNT}", False),
    ("ArnNotEquals", (ROLE_CI,), "ci", False),
]


@pytest.mark.parametrize(("operator", "values", "request_value", "expected"), ARN)
def test_arn(operator: str, values: tuple[str, ...], request_value: str, expected: bool) -> None:
    check(operator, values, request_value, expected)


UNCONVERTIBLE_REQUESTS = [
    ("NumericEquals", ("10",), "10abc"),
    ("NumericNotEquals", ("10",), "ten"),
    ("DateEquals", (NEW_YEAR,), "not-a-date"),
    ("DateNotEquals", (NEW_YEAR,), "2024-13-01"),
    ("Bool", ("true",), "yes"),
    ("BinaryEquals", ("QQ==",), "!!!!"),
    ("IpAddress", ("0.0.0.0/0",), "not-an-ip"),
    ("NotIpAddress", ("0.0.0.0/0",), "not-an-ip"),
    ("ArnLike", ("arn:*:*:*:*:*",), "not-an-arn"),
    ("ArnNotEquals", ("arn:*:*:*:*:*",), "not-an-arn"),
]


@pytest.mark.parametrize(("operator", "values", "request_value"), UNCONVERTIBLE_REQUESTS)
def test_unconvertible_request_value_is_reported(
    operator: str, values: tuple[str, ...], request_value: str
) -> None:
    result, errors = run(operator, values, request_value)
    assert result is False
    assert len(errors) == 1
    assert request_value in errors[0]


def test_every_operator_of_section_4_4_is_known() -> None:
    expected = {
        "StringEquals", "StringNotEquals", "StringEqualsIgnoreCase", "StringNotEqualsIgnoreCase",
        "StringLike", "StringNotLike",
        "NumericEquals", "NumericNotEquals", "NumericLessThan", "NumericLessThanEquals",
        "NumericGreaterThan", "NumericGreaterThanEquals",
        "DateEquals", "DateNotEquals", "DateLessThan", "DateLessThanEquals",
        "DateGreaterThan", "DateGreaterThanEquals",
        "Bool", "BinaryEquals", "IpAddress", "NotIpAddress",
        "ArnEquals", "ArnLike", "ArnNotEquals", "ArnNotLike",
    }  # fmt: skip
    assert set(OPERATORS) == expected
    assert lookup_operator("null") == NULL


NEGATED = {
    "StringNotEquals",
    "StringNotEqualsIgnoreCase",
    "StringNotLike",
    "NumericNotEquals",
    "DateNotEquals",
    "NotIpAddress",
    "ArnNotEquals",
    "ArnNotLike",
}


@pytest.mark.parametrize("name", sorted(OPERATORS))
def test_negated_operators_are_those_of_section_4_1(name: str) -> None:
    assert OPERATORS[name].negated is (name in NEGATED)


@pytest.mark.parametrize("name", sorted(OPERATORS))
def test_variables_only_in_string_and_arn(name: str) -> None:
    # semantics §4.4 / §5.2: variables in String* and Arn* values only, never in Bool
    takes_variables = name.startswith(("String", "Arn"))
    assert OPERATORS[name].variables is takes_variables


@pytest.mark.parametrize(
    ("spelled", "canonical"),
    [
        ("stringequals", "StringEquals"),
        ("STRINGLIKE", "StringLike"),
        ("ArnEquals", "ArnEquals"),
        ("notipaddress", "NotIpAddress"),
        ("NULL", NULL),
        ("StringEqualz", None),
        ("StringEqualsIfExists", None),
        ("", None),
    ],
)
def test_lookup_operator(spelled: str, canonical: str | None) -> None:
    assert lookup_operator(spelled) == canonical


@settings(max_examples=300, deadline=None)
@given(
    version=st.sampled_from([4, 6]),
    request_bits=st.integers(min_value=0, max_value=2**128 - 1),
    network_bits=st.integers(min_value=0, max_value=2**128 - 1),
    prefix=st.integers(min_value=0, max_value=128),
    request_version=st.sampled_from([4, 6]),
)
def test_ip_ranges_agree_with_the_standard_library(
    version: int, request_bits: int, network_bits: int, prefix: int, request_version: int
) -> None:
    """`IpAddress` compares integers and masks: exactly `ipaddress`'s membership, versions apart."""
    width = 32 if version == 4 else 128
    network = ipaddress.ip_network((network_bits % 2**width, min(prefix, width)), strict=False)
    request_width = 32 if request_version == 4 else 128
    request = ipaddress.ip_address(request_bits % 2**request_width)
    expected = request.version == network.version and request in network
    check("IpAddress", (str(network),), str(request), expected)
    check("NotIpAddress", (str(network),), str(request), not expected)
