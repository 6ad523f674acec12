"""IAM wildcards (semantics §3.2, §10.2): tables, literal chunks, and a reference matcher."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dockgate_server.policy.glob import Chunk, compile_chunks, compile_glob

GLOB_CASES = [
    # exact: anchored at both ends, case-sensitive
    ("abc", "abc", True),
    ("abc", "abcd", False),
    ("abc", "xabc", False),
    ("abc", "ab", False),
    ("abc", "ABC", False),
    # prefix
    ("ab*", "ab", True),
    ("ab*", "abxyz", True),
    ("ab*", "a", False),
    ("ab*", "xab", False),
    # suffix
    ("*yz", "yz", True),
    ("*yz", "xxyz", True),
    ("*yz", "yzx", False),
    ("*yz", "z", False),
    # `*` alone matches everything, the empty text included
    ("*", "", True),
    ("*", "anything/at:all", True),
    ("**", "", True),
    ("***", "x", True),
    # `?` is exactly one character
    ("?", "a", True),
    ("?", "", False),
    ("?", "ab", False),
    ("a?c", "abc", True),
    ("a?c", "ac", False),
    ("a?c", "abbc", False),
    ("???", "abc", True),
    ("???", "ab", False),
    ("???", "abcd", False),
    # several stars
    ("a*b*c", "abc", True),
    ("a*b*c", "aXbYc", True),
    ("a*b*c", "acb", False),
    ("a*b*c", "abcab", False),
    ("*a*a*a*", "aaa", True),
    ("*a*a*a*", "xaxaxax", True),
    ("*a*a*a*", "aa", False),
    ("a*a", "a", False),
    ("a*a", "aa", True),
    ("*ab*ab*", "abab", True),
    ("*ab*ab*", "aba", False),
    ("*aab", "aaab", True),
    ("*aab*", "aaab", True),
    ("a*a*a*a*a*a*a*a*b", "a" * 200, False),
    ("a*a*a*a*a*a*a*a*b", "a" * 200 + "b", True),
    # `?` inside pieces between stars
    ("*a?c*", "xxabcxx", True),
    ("*a?c*", "xxacxx", False),
    ("*a?c", "aXc", True),
    ("*a?c", "aXcd", False),
    ("a*?", "a", False),
    ("a*?", "ab", True),
    ("?*", "", False),
    ("*?", "x", True),
    ("*?*", "", False),
    ("*?b?*", "aabaa", True),
    ("*?b?*", "ba", False),
    ("a*b?d*e", "axxbcdxe", True),
    ("a*b?d*e", "axxbde", False),
    ("*a?a*", "aaa", True),
    ("*ab?b*", "abab", True),
    ("*ab?b*", "abba", False),
    # empty strings
    ("", "", True),
    ("", "a", False),
    ("a", "", False),
    # `/` and `:` are ordinary characters (semantics §10.2)
    ("repository/team-a/*", "repository/team-a/web-app", True),
    ("repository/team-a/*", "repository/team-a/x/y", True),
    ("repository/team-a/*", "repository/team-a", False),
    ("repository/team-a*", "repository/team-a", True),
    ("repository/team-a*", "repository/team-abc", True),
    ("repository/*", "repository/a:b/c", True),
    ("us-*-1", "us-east-1", True),
    # unicode: `?` is one code point
    ("caf?", "café", True),
    ("*é", "résumé", True),
    ("?", "é", True),
    ("日本*", "日本語", True),
    ("?", "\U0001f600", True),
    ("??", "\U0001f600", False),
    # no case folding unless asked for
    ("ECR*", "ecr:x", False),
    ("ecr:Batch*", "ecr:batchGetImage", False),
]


@pytest.mark.parametrize(("pattern", "text", "expected"), GLOB_CASES)
def test_compile_glob(pattern: str, text: str, expected: bool) -> None:
    assert compile_glob(pattern).matches(text) is expected


FOLDED_CASES = [
    ("ecr:BatchGetImage", "ECR:batchgetimage", True),
    ("ecr:batch*", "ECR:BatchGetImage", True),
    ("ECR:*Image", "ecr:batchgetimage", True),
    ("ecr:Get?uthorizationToken", "ECR:GETAUTHORIZATIONTOKEN", True),
    ("*LAYER*", "ecr:GetDownloadUrlForLayer", True),
    ("ecr:Put*", "ecr:GetImage", False),
    ("CAFÉ", "café", True),
    ("?", "É", True),
]


@pytest.mark.parametrize(("pattern", "text", "expected"), FOLDED_CASES)
def test_compile_glob_folding_case(pattern: str, text: str, expected: bool) -> None:
    assert compile_glob(pattern, fold_case=True).matches(text) is expected


CHUNK_CASES = [
    # a `*` in a literal chunk (a `${*}` escape or a variable's value) is just a star
    ((Chunk("a", True), Chunk("*", False)), "a*", True),
    ((Chunk("a", True), Chunk("*", False)), "ab", False),
    ((Chunk("a", True), Chunk("*", False), Chunk("*", True)), "a*xyz", True),
    ((Chunk("a", True), Chunk("*", False), Chunk("*", True)), "abc", False),
    ((Chunk("x*y", False),), "x*y", True),
    ((Chunk("x*y", False),), "xzzy", False),
    ((Chunk("?", False),), "?", True),
    ((Chunk("?", False),), "a", False),
    ((Chunk("*", False),), "", False),
    ((Chunk("*", False),), "*", True),
    (
        (Chunk("repository/", True), Chunk("te*m", False), Chunk("/*", True)),
        "repository/te*m/app",
        True,
    ),
    (
        (Chunk("repository/", True), Chunk("te*m", False), Chunk("/*", True)),
        "repository/team/app",
        False,
    ),
    ((Chunk("*", True), Chunk("a?", False), Chunk("*", True)), "xxa?yy", True),
    ((Chunk("*", True), Chunk("a?", False), Chunk("*", True)), "xxabyy", False),
    ((Chunk("*", True), Chunk("", False), Chunk("b", True)), "ab", True),
    ((Chunk("a", True), Chunk("b", True)), "ab", True),
    ((), "", True),
    ((), "a", False),
]


@pytest.mark.parametrize(("chunks", "text", "expected"), CHUNK_CASES)
def test_compile_chunks(chunks: tuple[Chunk, ...], text: str, expected: bool) -> None:
    assert compile_chunks(chunks).matches(text) is expected


def test_literal_chunk_folds_case_when_asked() -> None:
    glob = compile_chunks((Chunk("ABC*", False),), fold_case=True)
    assert glob.matches("abc*")
    assert not glob.matches("abcd")


PREFIX_CASES = [
    ("abc", "abc"),
    ("ab*", "ab"),
    ("ab?c*", "ab"),
    ("ab*c", "ab"),
    ("*ab", ""),
    ("?ab", ""),
    ("*", ""),
]


@pytest.mark.parametrize(("pattern", "prefix"), PREFIX_CASES)
def test_literal_prefix(pattern: str, prefix: str) -> None:
    assert compile_glob(pattern).literal_prefix == prefix


# -- a reference matcher: dynamic programming over (pattern position, text position) ----------


def reference_matches(tokens: Sequence[tuple[str, bool]], text: str) -> bool:
    """`tokens` are (character, is_wildcard); `reachable[i]`: the tokens so far can end at `i`."""
    reachable = [True] + [False] * len(text)
    for char, wild in tokens:
        if wild and char == "*":
            seen = False
            stepped = []
            for here in reachable:
                seen = seen or here
                stepped.append(seen)
            reachable = stepped
        elif wild and char == "?":
            reachable = [False, *reachable[:-1]]
        else:
            reachable = [False] + [reachable[i] and text[i] == char for i in range(len(text))]
    return reachable[-1]


def tokens_of(chunks: Sequence[Chunk]) -> list[tuple[str, bool]]:
    return [(char, chunk.wild and char in "*?") for chunk in chunks for char in chunk.text]


@pytest.mark.parametrize(("pattern", "text", "expected"), GLOB_CASES)
def test_reference_agrees_with_the_table(pattern: str, text: str, expected: bool) -> None:
    assert reference_matches(tokens_of([Chunk(pattern, True)]), text) is expected


@given(st.text(alphabet="ab*?", max_size=10), st.text(alphabet="ab", max_size=12))
def test_glob_agrees_with_reference(pattern: str, text: str) -> None:
    expected = reference_matches(tokens_of([Chunk(pattern, True)]), text)
    assert compile_glob(pattern).matches(text) is expected


@given(
    st.lists(st.builds(Chunk, st.text(alphabet="ab*?", max_size=4), st.booleans()), max_size=5),
    st.text(alphabet="ab*?", max_size=10),
)
def test_chunks_agree_with_reference(chunks: list[Chunk], text: str) -> None:
    expected = reference_matches(tokens_of(chunks), text)
    assert compile_chunks(chunks).matches(text) is expected


@given(st.text(alphabet="aAb*?", max_size=10), st.text(alphabet="aAbB", max_size=12))
def test_folded_glob_agrees_with_reference(pattern: str, text: str) -> None:
    expected = reference_matches(tokens_of([Chunk(pattern.lower(), True)]), text.lower())
    assert compile_glob(pattern, fold_case=True).matches(text) is expected


@given(st.text(alphabet="ab*?", max_size=10), st.text(alphabet="ab", max_size=12))
def test_every_match_starts_with_the_literal_prefix(pattern: str, text: str) -> None:
    glob = compile_glob(pattern)
    if glob.matches(text):
        assert text.startswith(glob.literal_prefix)
