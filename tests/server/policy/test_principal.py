"""Principals (semantics §3.5, §5.4, §7.1, §7.6): callers, `Principal` entries, how they relate."""

from __future__ import annotations

import pytest

from dockgate_server.policy.principal import (
    PARTITIONS,
    Caller,
    CallerKind,
    EntryKind,
    PrincipalMatch,
    classify_principal,
    exempts_caller,
    parse_caller,
    parse_principal_entry,
)

OWNER = "111122223333"
OTHER = "444455556666"

USER = f"arn:aws:iam::{OWNER}:user/alice"
USER_WITH_PATH = f"arn:aws:iam::{OWNER}:user/division/team/alice"
ROLE = f"arn:aws:iam::{OWNER}:role/Builder"
ROLE_WITH_PATH = f"arn:aws:iam::{OWNER}:role/ci/Builder"
SESSION = f"arn:aws:sts::{OWNER}:assumed-role/Builder/run-42"
FEDERATED = f"arn:aws:sts::{OWNER}:federated-user/bob"
ROOT = f"arn:aws:iam::{OWNER}:root"
SERVICE = "codebuild.amazonaws.com"

CALLER_CASES = [
    (USER, Caller(CallerKind.USER, USER, "aws", OWNER, "alice")),
    (USER_WITH_PATH, Caller(CallerKind.USER, USER_WITH_PATH, "aws", OWNER, "alice")),
    (ROLE, Caller(CallerKind.ROLE, ROLE, "aws", OWNER, "Builder")),
    (ROLE_WITH_PATH, Caller(CallerKind.ROLE, ROLE_WITH_PATH, "aws", OWNER, "Builder")),
    (SESSION, Caller(CallerKind.SESSION, SESSION, "aws", OWNER, "Builder", "run-42")),
    (FEDERATED, Caller(CallerKind.FEDERATED_USER, FEDERATED, "aws", OWNER, "bob")),
    (ROOT, Caller(CallerKind.ROOT, ROOT, "aws", OWNER, OWNER)),
    (SERVICE, Caller(CallerKind.SERVICE, SERVICE, name=SERVICE)),
    (
        f"arn:aws-cn:iam::{OWNER}:user/alice",
        Caller(CallerKind.USER, f"arn:aws-cn:iam::{OWNER}:user/alice", "aws-cn", OWNER, "alice"),
    ),
]


@pytest.mark.parametrize(("text", "expected"), CALLER_CASES)
def test_parse_caller(text: str, expected: Caller) -> None:
    assert parse_caller(text) == expected


def test_service_linked_role_is_recognised_by_its_path() -> None:
    linked = parse_caller(
        f"arn:aws:iam::{OWNER}:role/aws-service-role/replication.ecr.amazonaws.com/"
        "AWSServiceRoleForECRReplication"
    )
    assert linked.kind is CallerKind.ROLE
    assert linked.service_linked
    assert linked.name == "AWSServiceRoleForECRReplication"
    assert not parse_caller(ROLE_WITH_PATH).service_linked
    # semantics §9: the name alone does not make a role service-linked
    assert not parse_caller(
        f"arn:aws:iam::{OWNER}:role/AWSServiceRoleForECRReplication"
    ).service_linked


MALFORMED_CALLERS = [
    "",
    "alice",
    "arn",
    "arn:aws:iam::1111:user/alice",
    f"arn:aws:iam::{OWNER}1:user/alice",
    f"arn:aws:iam:us-east-1:{OWNER}:user/alice",
    f"arn::iam::{OWNER}:user/alice",
    f"arn:aws:iam::{OWNER}",
    f"arn:aws:iam::{OWNER}:user/",
    f"arn:aws:iam::{OWNER}:user",
    f"arn:aws:iam::{OWNER}:role/",
    f"arn:aws:iam::{OWNER}:group/devs",
    f"arn:aws:sts::{OWNER}:assumed-role/Builder",
    f"arn:aws:sts::{OWNER}:assumed-role/Builder/",
    f"arn:aws:sts::{OWNER}:assumed-role//run-42",
    f"arn:aws:sts::{OWNER}:federated-user/",
    f"arn:aws:sts::{OWNER}:root",
    f"arn:aws:iam::{OWNER}:federated-user/bob",
    f"arn:aws:sts::{OWNER}:user/alice",
    "arn:aws:s3:::bucket",
    f"arn:aws:ecr:us-east-1:{OWNER}:repository/app",
    "not a service.amazonaws.com",
    ".amazonaws.com",
    # no AWS partition of that name: not a principal of any account (issue 11 item 14)
    f"arn:bogus:sts::{OWNER}:assumed-role/deploy/x",
    f"arn:bogus:iam::{OWNER}:root",
    f"arn:AWS:iam::{OWNER}:user/alice",
    f"arn:aws-cn-north:iam::{OWNER}:user/alice",
]


@pytest.mark.parametrize("partition", sorted(PARTITIONS))
def test_every_aws_partition_names_principals(partition: str) -> None:
    caller = parse_caller(f"arn:{partition}:sts::{OWNER}:assumed-role/deploy/x")
    assert (caller.partition, caller.kind) == (partition, CallerKind.SESSION)


def test_an_unknown_partition_is_named() -> None:
    with pytest.raises(ValueError, match="unknown partition `bogus`"):
        parse_caller(f"arn:bogus:iam::{OWNER}:root")


@pytest.mark.parametrize("text", MALFORMED_CALLERS)
def test_parse_caller_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="principal"):
        parse_caller(text)


PRINCIPAL_KEY_CASES = [
    # semantics §5.4: aws:PrincipalArn and aws:PrincipalType by caller
    (ROOT, ROOT, "Account"),
    (USER_WITH_PATH, USER_WITH_PATH, "User"),
    (FEDERATED, FEDERATED, "FederatedUser"),
    (SESSION, f"arn:aws:iam::{OWNER}:role/Builder", "AssumedRole"),
    (SERVICE, None, None),
]


@pytest.mark.parametrize(("text", "principal_arn", "principal_type"), PRINCIPAL_KEY_CASES)
def test_principal_keys(text: str, principal_arn: str | None, principal_type: str | None) -> None:
    caller = parse_caller(text)
    assert caller.principal_arn == principal_arn
    assert caller.principal_type == principal_type
    assert caller.is_iam_principal is (principal_type is not None)


ENTRY_CASES = [
    ("AWS", "*", EntryKind.WILDCARD),
    ("AWS", OWNER, EntryKind.ACCOUNT),
    ("AWS", ROOT, EntryKind.ACCOUNT),
    ("AWS", USER_WITH_PATH, EntryKind.USER),
    ("AWS", ROLE_WITH_PATH, EntryKind.ROLE),
    ("AWS", SESSION, EntryKind.SESSION),
    ("AWS", FEDERATED, EntryKind.FEDERATED_USER),
    ("AWS", "AIDAJQABLZS4A3QDU576Q", EntryKind.NOTHING),
    ("Service", SERVICE, EntryKind.SERVICE),
    ("Federated", "cognito-identity.amazonaws.com", EntryKind.NOTHING),
    ("Federated", f"arn:aws:iam::{OWNER}:saml-provider/corp", EntryKind.NOTHING),
    (
        "CanonicalUser",
        "79a59df900b949e55d96a1e698fbacedfd6e09d98eacf8f8d5218e7cd47ef2be",
        EntryKind.NOTHING,
    ),
]


@pytest.mark.parametrize(("key", "value", "kind"), ENTRY_CASES)
def test_parse_principal_entry(key: str, value: str, kind: EntryKind) -> None:
    assert parse_principal_entry(key, value).kind is kind


BAD_ENTRIES = [
    # semantics §2.3: "Unsupported wildcard in principal"
    ("AWS", f"arn:aws:iam::{OWNER}:user/*"),
    ("AWS", f"arn:aws:iam::{OWNER}:role/ci-?"),
    ("AWS", "1111222233*"),
    ("AWS", f"arn:aws:sts::{OWNER}:assumed-role/Builder/*"),
    ("Service", "*.amazonaws.com"),
    ("AWS", "alice"),
    ("AWS", "arn:aws:iam::1111:user/alice"),
]


@pytest.mark.parametrize(("key", "value"), BAD_ENTRIES)
def test_parse_principal_entry_rejects(key: str, value: str) -> None:
    with pytest.raises(ValueError, match="principal"):
        parse_principal_entry(key, value)


D = PrincipalMatch.DIRECT
W = PrincipalMatch.WILDCARD
R = PrincipalMatch.ROLE_OF_SESSION
F = PrincipalMatch.USER_OF_FEDERATED_SESSION
A = PrincipalMatch.ACCOUNT
N = PrincipalMatch.NONE

CLASSIFY_CASES = [
    # Wildcard: `*` names every caller
    ("AWS", "*", USER, W),
    ("AWS", "*", SESSION, W),
    ("AWS", "*", ROOT, W),
    ("AWS", "*", f"arn:aws:iam::{OTHER}:user/eve", W),
    # Direct: the caller's own ARN
    ("AWS", USER, USER, D),
    ("AWS", USER_WITH_PATH, USER_WITH_PATH, D),
    ("AWS", SESSION, SESSION, D),
    ("AWS", FEDERATED, FEDERATED, D),
    ("AWS", ROOT, ROOT, D),
    ("Service", SERVICE, SERVICE, D),
    # a user is named with its path, and its name is case-sensitive
    ("AWS", USER, USER_WITH_PATH, N),
    ("AWS", USER_WITH_PATH, USER, N),
    ("AWS", f"arn:aws:iam::{OWNER}:user/Alice", USER, N),
    ("AWS", f"arn:aws:iam::{OWNER}:user/bob", USER, N),
    # RoleOfSession: the role of the calling session, name ignoring case, path ignored
    ("AWS", ROLE, SESSION, R),
    ("AWS", ROLE_WITH_PATH, SESSION, R),
    ("AWS", f"arn:aws:iam::{OWNER}:role/BUILDER", SESSION, R),
    ("AWS", f"arn:aws:iam::{OWNER}:role/x/y/builder", SESSION, R),
    ("AWS", f"arn:aws:iam::{OWNER}:role/Deployer", SESSION, N),
    ("AWS", f"arn:aws:iam::{OTHER}:role/Builder", SESSION, N),
    ("AWS", f"arn:aws-cn:iam::{OWNER}:role/Builder", SESSION, N),
    # ... and of a bare role ARN, evaluated as a session whose name is unknown (§7.1)
    ("AWS", ROLE_WITH_PATH, ROLE, R),
    ("AWS", ROLE, ROLE_WITH_PATH, R),
    ("AWS", SESSION, ROLE, N),
    # another session of the same role is not this session
    ("AWS", f"arn:aws:sts::{OWNER}:assumed-role/Builder/run-43", SESSION, N),
    ("AWS", f"arn:aws:sts::{OWNER}:assumed-role/Deployer/run-42", SESSION, N),
    # a role entry never names a user, nor a user entry a session
    ("AWS", f"arn:aws:iam::{OWNER}:role/alice", USER, N),
    ("AWS", f"arn:aws:iam::{OWNER}:user/Builder", SESSION, N),
    # UserOfFederatedSession: the IAM user of the same name and account
    ("AWS", f"arn:aws:iam::{OWNER}:user/bob", FEDERATED, F),
    ("AWS", f"arn:aws:iam::{OWNER}:user/alice", FEDERATED, N),
    ("AWS", f"arn:aws:iam::{OTHER}:user/bob", FEDERATED, N),
    ("AWS", f"arn:aws:sts::{OWNER}:federated-user/carol", FEDERATED, N),
    # Account: the caller's account, by ID or root ARN, when the caller is not root
    ("AWS", OWNER, USER, A),
    ("AWS", ROOT, USER, A),
    ("AWS", OWNER, SESSION, A),
    ("AWS", ROOT, SESSION, A),
    ("AWS", OWNER, ROLE, A),
    ("AWS", OWNER, FEDERATED, A),
    ("AWS", ROOT, FEDERATED, A),
    # ... and for the root user an account entry names the caller itself
    ("AWS", OWNER, ROOT, D),
    ("AWS", ROOT, ROOT, D),
    # None: another account, other principal kinds, names an evaluator cannot resolve
    ("AWS", OTHER, USER, N),
    ("AWS", f"arn:aws:iam::{OTHER}:root", USER, N),
    ("AWS", OTHER, ROOT, N),
    ("AWS", f"arn:aws:iam::{OTHER}:root", ROOT, N),
    ("AWS", f"arn:aws-cn:iam::{OWNER}:root", USER, N),
    ("AWS", OWNER, SERVICE, N),
    ("AWS", ROOT, SERVICE, N),
    ("Service", "ecs.amazonaws.com", SERVICE, N),
    ("Service", SERVICE, USER, N),
    ("Service", SERVICE, ROOT, N),
    ("AWS", "AROADBQP57FF2AEXAMPLE", SESSION, N),
    ("Federated", "cognito-identity.amazonaws.com", SESSION, N),
    ("Federated", "accounts.google.com", FEDERATED, N),
    ("CanonicalUser", "79a59df900b949e55d96a1e698fbacedfd6e09d98eacf8f8d5218e7cd47ef2be", ROOT, N),
]


@pytest.mark.parametrize(("key", "value", "caller", "expected"), CLASSIFY_CASES)
def test_classify_principal(key: str, value: str, caller: str, expected: PrincipalMatch) -> None:
    assert classify_principal(parse_principal_entry(key, value), parse_caller(caller)) is expected


def test_principal_match_strength() -> None:
    # semantics §3.5: Direct = Wildcard > RoleOfSession / UserOfFederatedSession > Account > None
    assert D.rank == W.rank
    assert R.rank == F.rank
    assert D.rank > R.rank > A.rank > N.rank


EXEMPT_CASES = [
    # semantics §7.6: only the caller's own identity exempts it
    ("AWS", USER, USER, True),
    ("AWS", USER_WITH_PATH, USER_WITH_PATH, True),
    ("AWS", USER, USER_WITH_PATH, False),
    ("AWS", f"arn:aws:iam::{OWNER}:user/Alice", USER, False),
    ("AWS", SESSION, SESSION, True),
    ("AWS", FEDERATED, FEDERATED, True),
    ("AWS", ROOT, ROOT, True),
    ("AWS", OWNER, ROOT, True),
    ("Service", SERVICE, SERVICE, True),
    ("Service", "ecs.amazonaws.com", SERVICE, False),
    # an account entry does not exempt the account's other principals
    ("AWS", OWNER, USER, False),
    ("AWS", ROOT, USER, False),
    ("AWS", OWNER, SESSION, False),
    ("AWS", ROOT, FEDERATED, False),
    ("AWS", OTHER, ROOT, False),
    # a role entry does not exempt the role's sessions
    ("AWS", ROLE, SESSION, False),
    ("AWS", ROLE_WITH_PATH, SESSION, False),
    # a bare role ARN as the caller stands for a session of that role (§7.1): not exempt either
    ("AWS", ROLE, ROLE, False),
    # another session of the role, or the federating user, is not the caller
    ("AWS", f"arn:aws:sts::{OWNER}:assumed-role/Builder/run-43", SESSION, False),
    ("AWS", f"arn:aws:iam::{OWNER}:user/bob", FEDERATED, False),
    ("AWS", OWNER, SERVICE, False),
    ("AWS", USER, SERVICE, False),
    ("Federated", "cognito-identity.amazonaws.com", SESSION, False),
]


@pytest.mark.parametrize(("key", "value", "caller", "expected"), EXEMPT_CASES)
def test_exempts_caller(key: str, value: str, caller: str, expected: bool) -> None:
    assert exempts_caller(parse_principal_entry(key, value), parse_caller(caller)) is expected
