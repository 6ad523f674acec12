"""build_request: context bounds counted over values and bytes, repository names checked as ECR
checks them, and the keys a store defines taken from the store."""

from __future__ import annotations

import pytest

from dockgate_server.engine.request import (
    MAX_CONTEXT_BYTES,
    MAX_CONTEXT_KEYS,
    MAX_CONTEXT_VALUES,
    ContextTooLargeError,
    RequestError,
    build_request,
    check_target,
    is_store_key,
    normalize_context,
)

A = "111122223333"
ALICE = f"arn:aws:iam::{A}:user/alice"
SESSION = f"arn:aws:sts::{A}:assumed-role/deploy/run-1"
PULL = "ecr:BatchGetImage"
REPOSITORY = f"arn:aws:ecr:us-east-1:{A}:repository/"


# -- context bounds -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("context", "message"),
    [
        ({"k": [""] * 4_000_000}, f"more than {MAX_CONTEXT_VALUES} values"),
        ({"k": [""] * (MAX_CONTEXT_VALUES + 1)}, f"more than {MAX_CONTEXT_VALUES} values"),
        (
            {f"k{i}": [""] * 200 for i in range(6)},  # 1,200 values over six keys
            f"more than {MAX_CONTEXT_VALUES} values",
        ),
        ({f"k{i}": "" for i in range(MAX_CONTEXT_KEYS + 1)}, f"more than {MAX_CONTEXT_KEYS} keys"),
        ({"k": "x" * MAX_CONTEXT_BYTES}, f"larger than {MAX_CONTEXT_BYTES} bytes"),
        # 30,000 characters, 90,000 UTF-8 bytes: bytes are what is counted
        ({"k": "€" * 30_000}, f"larger than {MAX_CONTEXT_BYTES} bytes"),
        ({"k": ["€" * 10_000] * 3}, f"larger than {MAX_CONTEXT_BYTES} bytes"),
    ],
    ids=["4M-empty", "one-past", "over-keys", "keys", "ascii-bytes", "utf8-bytes", "list-bytes"],
)
def test_a_context_past_a_bound_is_refused(context: dict[str, object], message: str) -> None:
    with pytest.raises(ContextTooLargeError, match=message) as raised:
        normalize_context(context)  # type: ignore[arg-type]
    assert raised.value.field == "context"
    with pytest.raises(ContextTooLargeError):
        build_request(ALICE, PULL, REPOSITORY + "app", context)  # type: ignore[arg-type]


def test_a_context_at_the_bounds_is_accepted() -> None:
    at_values = {"k": [""] * MAX_CONTEXT_VALUES}
    assert normalize_context(at_values)["k"] == ("",) * MAX_CONTEXT_VALUES
    wide = "€" * ((MAX_CONTEXT_BYTES - 1) // 3)  # one ASCII byte of key, the rest in € (3 bytes)
    assert normalize_context({"k": wide})["k"] == wide


def test_a_list_of_non_strings_is_still_a_malformed_context() -> None:
    with pytest.raises(RequestError, match="string or a list of strings") as raised:
        normalize_context({"k": ["a", 1]})  # type: ignore[list-item]
    assert not isinstance(raised.value, ContextTooLargeError)


# -- repository names -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "Team-a/app",
        "team-a/../app",
        "team-a/./app",
        "..",
        "team-a//app",
        "/team-a",
        "team-a/",
        "a",
        "app\x00",
        "app\ttab",
        "app\x7f",
        "app name",
        "app--",
        "-app",
        "app_.x",
        "café",
        "a" * 257,
        "",
    ],
)
def test_a_repository_arn_must_name_an_ecr_repository(name: str) -> None:
    with pytest.raises(RequestError, match="is not a repository name") as raised:
        build_request(ALICE, PULL, REPOSITORY + name)
    assert raised.value.field == "resource"
    with pytest.raises(RequestError):
        check_target(PULL, REPOSITORY + name)


@pytest.mark.parametrize(
    "name", ["team-a/app", "ab", "a-b_c.d/e_f", "0day/x", "a" * 256, "a/b/c/d", "a-" * 127 + "a"]
)
def test_a_valid_repository_name_is_accepted(name: str) -> None:
    assert build_request(ALICE, PULL, REPOSITORY + name).resource_arn is not None


@pytest.mark.parametrize(
    "resource",
    ["*", "arn:aws:s3:::bucket/Key With Spaces/../x", f"arn:aws:iam::{A}:role/Deploy"],
)
def test_other_resources_keep_their_own_names(resource: str) -> None:
    build_request(ALICE, PULL, resource)


# -- keys the store defines -----------------------------------------------------------------------

GIVEN = {
    "ecr:ResourceTag/env": "dev",
    "aws:ResourceTag/env": "dev",
    "aws:PrincipalTag/team": "admins",
    "aws:PrincipalOrgID": "o-evil",
    "aws:PrincipalOrgPaths": ["o-evil/r-1/"],
    "aws:PrincipalAccount": "999999999999",
    "aws:ResourceAccount": "999999999999",
    "aws:ResourceOrgID": "o-evil",
    "aws:PrincipalArn": f"arn:aws:iam::{A}:user/admin",
    "aws:SourceIp": "203.0.113.7",
}


def test_against_the_store_the_store_keys_win_and_are_listed() -> None:
    request = build_request(
        ALICE,
        PULL,
        REPOSITORY + "app",
        GIVEN,
        principal_tags={"team": "a"},
        resource_tags={"env": "prod"},
        from_store=True,
    )
    context = request.context
    assert context["ecr:resourcetag/env"] == context["aws:resourcetag/env"] == "prod"
    assert context["aws:principaltag/team"] == "a"
    assert context["aws:principalaccount"] == A
    assert context["aws:resourceaccount"] == A
    assert context["aws:principalarn"] == ALICE
    for absent in ("aws:principalorgid", "aws:principalorgpaths", "aws:resourceorgid"):
        assert absent not in context  # the store says: no organization
    assert context["aws:sourceip"] == "203.0.113.7"  # the request's own key is the caller's
    assert set(request.ignored) == {key.lower() for key in GIVEN} - {"aws:sourceip"}


def test_a_simulation_keeps_the_case_context_winning() -> None:
    request = build_request(ALICE, PULL, REPOSITORY + "app", GIVEN, resource_tags={"env": "prod"})
    assert request.context["ecr:resourcetag/env"] == "dev"
    assert request.context["aws:principalaccount"] == "999999999999"
    assert request.ignored == ()


def test_a_session_dockgate_did_not_issue_takes_its_session_tags_from_the_context() -> None:
    given = {"aws:PrincipalTag/team": "b", "aws:TokenIssueTime": "2026-01-01T00:00:00Z"}
    role_tags = {"team": "a", "tier": "1"}
    foreign = build_request(
        SESSION, PULL, REPOSITORY + "app", given, principal_tags=role_tags, from_store=True
    )
    assert foreign.context["aws:principaltag/team"] == "b"
    assert foreign.context["aws:principaltag/tier"] == "1"
    assert foreign.context["aws:tokenissuetime"] == "2026-01-01T00:00:00Z"
    assert foreign.ignored == ()
    issued = build_request(
        SESSION,
        PULL,
        REPOSITORY + "app",
        given,
        principal_tags=role_tags,
        store_keys={"aws:tokenissuetime": "2025-06-01T00:00:00Z"},
        from_store=True,
        issued_session=True,
    )
    assert issued.context["aws:principaltag/team"] == "a"
    assert issued.context["aws:tokenissuetime"] == "2025-06-01T00:00:00Z"
    assert set(issued.ignored) == {"aws:principaltag/team", "aws:tokenissuetime"}


def test_a_role_principal_takes_its_tags_from_the_store() -> None:
    role = f"arn:aws:iam::{A}:role/deploy"
    request = build_request(
        role,
        PULL,
        REPOSITORY + "app",
        {"aws:PrincipalTag/team": "b"},
        principal_tags={"team": "a"},
        from_store=True,
    )
    assert request.context["aws:principaltag/team"] == "a"
    assert request.ignored == ("aws:principaltag/team",)


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("ecr:resourcetag/env", True),
        ("aws:principaltag/x", True),
        ("aws:principalorgpaths", True),
        ("aws:tokenissuetime", True),
        ("aws:sourceip", False),
        ("aws:requesttag/env", False),
        ("aws:currenttime", False),
    ],
)
def test_is_store_key(key: str, expected: bool) -> None:
    assert is_store_key(key) is expected
