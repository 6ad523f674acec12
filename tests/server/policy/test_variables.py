"""Policy variables (semantics §5): parsing `${…}` templates and resolving them per request."""

from __future__ import annotations

import pytest

from dockgate_server.conditions.keys import Context, single_value
from dockgate_server.policy.glob import Chunk, compile_chunks
from dockgate_server.policy.variables import (
    Template,
    Variable,
    VariableSyntaxError,
    fixed_chunks,
    has_variables,
    literal_template,
    parse_template,
    resolve_template,
)

PARSE_CASES: list[tuple[str, Template]] = [
    ("plain", (Chunk("plain", True),)),
    ("", (Chunk("", True),)),
    ("repo*?", (Chunk("repo*?", True),)),
    # a lone `$` or `{` is text
    ("a$b{c}", (Chunk("a$b{c}", True),)),
    ("$", (Chunk("$", True),)),
    (
        "repository/${aws:username}/*",
        (
            Chunk("repository/", True),
            Variable("aws:username", None, "${aws:username}"),
            Chunk("/*", True),
        ),
    ),
    # key names are case-insensitive: kept lower-cased, spelled as written
    ("${AWS:UserName}", (Variable("aws:username", None, "${AWS:UserName}"),)),
    (
        "${aws:PrincipalTag/Team}",
        (Variable("aws:principaltag/team", None, "${aws:PrincipalTag/Team}"),),
    ),
    (
        "${aws:PrincipalTag/team, 'none'}",
        (Variable("aws:principaltag/team", "none", "${aws:PrincipalTag/team, 'none'}"),),
    ),
    ("${aws:username, ''}", (Variable("aws:username", "", "${aws:username, ''}"),)),
    ("${k, 'a, b'}", (Variable("k", "a, b", "${k, 'a, b'}"),)),
    ("${k, 'two words'}", (Variable("k", "two words", "${k, 'two words'}"),)),
    (
        "${a}${b}",
        (Variable("a", None, "${a}"), Variable("b", None, "${b}")),
    ),
    # escapes are literal characters, never wildcards
    ("a${*}b", (Chunk("a", True), Chunk("*", False), Chunk("b", True))),
    ("${?}", (Chunk("?", False),)),
    ("${$}", (Chunk("$", False),)),
    ("${$}{x}", (Chunk("$", False), Chunk("{x}", True))),
    (
        "x${*}${?}${$}*",
        (
            Chunk("x", True),
            Chunk("*", False),
            Chunk("?", False),
            Chunk("$", False),
            Chunk("*", True),
        ),
    ),
]


@pytest.mark.parametrize(("text", "expected"), PARSE_CASES)
def test_parse_template(text: str, expected: Template) -> None:
    assert parse_template(text) == expected


SYNTAX_ERRORS = [
    # "Missing brace in variable"
    "repository/${aws:username",
    "${",
    "${aws:username, 'x'",
    # "Empty variable"
    "${}",
    "${ }",
    "a${}b",
    # default: a comma, exactly one space, then the text in single quotes
    "${aws:username, default}",
    "${aws:username,'x'}",
    "${aws:username,  'x'}",
    "${aws:username, 'x}",
    "${aws:username, x'}",
    '${aws:username, "x"}',
    "${aws:username,}",
    # "Unsupported space in variable"
    "${aws: username}",
    "${ aws:username}",
    "${aws:username }",
    "${aws:username , 'x'}",
]


@pytest.mark.parametrize("text", SYNTAX_ERRORS)
def test_parse_template_rejects(text: str) -> None:
    with pytest.raises(VariableSyntaxError):
        parse_template(text)


def test_syntax_error_is_a_value_error_naming_the_variable() -> None:
    with pytest.raises(ValueError, match=r"\$\{\}"):
        parse_template("a${}b")


RESOLVE_CASES: list[tuple[str, dict[str, str], tuple[Chunk, ...] | None]] = [
    ("plain*", {}, (Chunk("plain*", True),)),
    (
        "repository/${aws:username}/*",
        {"aws:username": "alice"},
        (Chunk("repository/", True), Chunk("alice", False), Chunk("/*", True)),
    ),
    # a missing value with no default: the whole template has no value
    ("repository/${aws:username}/*", {}, None),
    ("${a}${b}", {"a": "x"}, None),
    # the default stands in for a missing value, and only then
    ("${aws:principaltag/team, 'none'}", {}, (Chunk("none", False),)),
    ("${aws:principaltag/team, 'none'}", {"aws:principaltag/team": "red"}, (Chunk("red", False),)),
    ("${k, ''}", {}, (Chunk("", False),)),
    # an empty value is a value
    ("${k, 'd'}", {"k": ""}, (Chunk("", False),)),
    # a substituted value is literal: a `*` from a tag widens nothing
    ("${k}", {"k": "a*?"}, (Chunk("a*?", False),)),
    # looked up lower-cased
    ("${AWS:PrincipalTag/Team}", {"aws:principaltag/team": "red"}, (Chunk("red", False),)),
    # escapes survive resolution
    ("${*}${k}", {"k": "v"}, (Chunk("*", False), Chunk("v", False))),
]


@pytest.mark.parametrize(("text", "values", "expected"), RESOLVE_CASES)
def test_resolve_template(
    text: str, values: dict[str, str], expected: tuple[Chunk, ...] | None
) -> None:
    assert resolve_template(parse_template(text), values.get) == expected


def test_multivalued_keys_give_a_variable_no_value() -> None:
    context: Context = {"aws:tagkeys": ("a",), "aws:username": "alice"}

    def lookup(key: str) -> str | None:
        return single_value(context, key)

    assert resolve_template(parse_template("${aws:TagKeys}"), lookup) is None
    assert resolve_template(parse_template("${aws:TagKeys, 'd'}"), lookup) == (Chunk("d", False),)
    assert resolve_template(parse_template("${aws:username}"), lookup) == (Chunk("alice", False),)


SUBSTITUTED_MATCH_CASES = [
    # semantics §5.2: substitution first, then wildcard matching of the pattern text only
    ("repository/${aws:username}/*", "alice", "repository/alice/app", True),
    ("repository/${aws:username}/*", "alice", "repository/bob/app", False),
    ("repository/${aws:username}/*", "a*", "repository/a*/app", True),
    ("repository/${aws:username}/*", "a*", "repository/ab/app", False),
    ("repository/${aws:username}", "?", "repository/x", False),
    ("repository/${aws:username}", "?", "repository/?", True),
    ("repository/a${*}", "unused", "repository/a*", True),
    ("repository/a${*}", "unused", "repository/ab", False),
    ("repository/a${?}", "unused", "repository/ab", False),
]


@pytest.mark.parametrize(("template", "username", "text", "expected"), SUBSTITUTED_MATCH_CASES)
def test_substituted_text_is_literal_when_matching(
    template: str, username: str, text: str, expected: bool
) -> None:
    chunks = resolve_template(parse_template(template), {"aws:username": username}.get)
    assert chunks is not None
    assert compile_chunks(chunks).matches(text) is expected


def test_literal_template_keeps_variable_syntax_as_text() -> None:
    template = literal_template("${aws:username}*")
    assert template == (Chunk("${aws:username}*", True),)
    assert not has_variables(template)


def test_has_variables_and_fixed_chunks() -> None:
    assert has_variables(parse_template("a${k}"))
    assert not has_variables(parse_template("a${*}b"))
    assert fixed_chunks(parse_template("a${*}b")) == (
        Chunk("a", True),
        Chunk("*", False),
        Chunk("b", True),
    )
