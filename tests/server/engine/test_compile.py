"""Compiling policies: equal parts compiled once and shared, a document renamed without
recompiling, and either way the same compiled policy as compiling it afresh."""

from __future__ import annotations

from typing import Any

from dockgate_server.engine.compile import CompiledPolicy, compile_policy, renamed
from dockgate_server.policy.model import PolicyKind
from dockgate_server.policy.parse import parse_policy

STATEMENTS: list[dict[str, Any]] = [
    {
        "Effect": "Allow",
        "Action": ["ecr:BatchGetImage", "ecr:PutImage"],
        "Resource": "arn:aws:ecr:*:*:repository/${aws:PrincipalTag/team}/*",
        "Condition": {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}},
    },
    {"Sid": "Login", "Effect": "Allow", "Action": "ecr:GetAuthorizationToken", "Resource": "*"},
]


def compiled(name: str, version: str = "2012-10-17") -> CompiledPolicy:
    document = {"Version": version, "Statement": STATEMENTS}
    return compile_policy(parse_policy(document, kind=PolicyKind.IDENTITY, name=name))


def test_equal_parts_of_different_policies_are_one_object() -> None:
    first, second = compiled("first"), compiled("second")
    for mine, theirs in zip(first.statements, second.statements, strict=True):
        assert mine.policy != theirs.policy
        assert mine.actions is theirs.actions
        assert mine.resources is theirs.resources
        assert mine.conditions is theirs.conditions


def test_variables_are_part_of_what_is_shared() -> None:
    """Without `Version` 2012-10-17, `${…}` is text: the same Resource compiles otherwise."""
    with_variables, without = compiled("a"), compiled("b", version="2008-10-17")
    resource, literal = with_variables.statements[0].resources, without.statements[0].resources
    assert resource is not None and literal is not None
    assert resource[0].template is not None
    assert literal[0].template is None


def test_a_renamed_policy_is_the_policy_compiled_under_that_name() -> None:
    original = compiled("original")
    again = renamed(original, "copy")
    assert again == compiled("copy")
    assert [s.policy for s in again.statements] == ["copy", "copy"]
    assert again.statements[1].sid == "Login"
    assert renamed(original, "original") is original
