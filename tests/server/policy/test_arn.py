"""ARN patterns: the resource-type word that wildcards may not stand in (semantics §2.5)."""

from __future__ import annotations

import pytest

from dockgate_server.policy.arn import has_wildcard_type, split_arn_pattern
from dockgate_server.policy.variables import literal_template, parse_template

TYPE_WORDS = [
    ("*/team-a/app", True),
    ("repo*/team-a/app", True),
    ("reposit?ry/team-a/app", True),
    ("*:x", True),
    ("repo*/${aws:username}", True),
    ("${aws:username}*/x", True),
    ("repository/*", False),
    ("repository/team-a*", False),
    ("repository/*/app", False),
    ("repository/${aws:username}/*", False),
    ("${aws:username}/x", False),
    ("${*}/x", False),  # an escape is a literal `*`, not a wildcard
    ("*", False),  # no separator: one pattern over the whole remainder, no type word
    ("repo*", False),
    ("", False),
]


@pytest.mark.parametrize(("remainder", "wild"), TYPE_WORDS)
def test_wildcard_in_the_type_word(remainder: str, wild: bool) -> None:
    assert has_wildcard_type(parse_template(remainder)) is wild


def test_without_variables_the_text_is_read_as_written() -> None:
    # 2008-10-17: `${aws:username}` is text; its colon ends a type word that holds no wildcard
    assert not has_wildcard_type(literal_template("${aws:user*}/x"))
    assert has_wildcard_type(literal_template("re*${x}/app"))


def test_split_arn_pattern_keeps_variable_colons_in_the_remainder() -> None:
    parts = split_arn_pattern("arn:aws:ecr:*:*:repository/${aws:username}/*")
    assert parts == ("arn", "aws", "ecr", "*", "*", "repository/${aws:username}/*")
