"""Bundles in and out of the store: AWS CLI shapes, round trips, merge and replace, refusals."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from dockgate_server.policy.findings import PolicyError
from dockgate_server.store import (
    BUNDLE_FORMAT,
    BundleError,
    Fleet,
    FleetStore,
    Repository,
    StoreError,
    User,
    bundle_to_fleet,
    fleet_to_bundle,
    open_store,
)
from tests.server.store.fleet_bundles import (
    ALLOW_ALL,
    APP,
    APP_EU,
    AWS_READ_ONLY,
    BASE,
    ECR_ONLY,
    MAIN,
    NO_DELETES,
    ORG_ID,
    ORG_ONLY,
    OU_ID,
    PARTNER,
    PUSH_TEAM_A,
    REGISTRY_READ,
    REPOSITORY_POLICY,
    SANDBOX,
    TOOLS,
    TRUST_SERVICE,
    document,
    realistic_bundle,
    statement,
    tags,
    url_encoded,
)

Bundle = dict[str, Any]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[FleetStore]:
    with open_store(tmp_path / "store.sqlite3") as opened:
        yield opened


def _import(store: FleetStore, bundle: object, *, replace: bool = False) -> int:
    return store.import_fleet(bundle_to_fleet(bundle), replace=replace).revision


def _details(bundle: Bundle, account: str) -> dict[str, Any]:
    details: dict[str, Any] = bundle["accounts"][account]["authorizationDetails"]
    return details


def _named(items: list[dict[str, Any]], key: str, name: str) -> dict[str, Any]:
    return next(item for item in items if item[key] == name)


def _by_arn(entities: tuple[Any, ...]) -> list[Any]:
    return sorted(entities, key=lambda entity: str(entity.arn))


# -- a realistic bundle imports ------------------------------------------------------------------


def test_a_realistic_bundle_imports_every_part(store: FleetStore) -> None:
    change = store.import_fleet(bundle_to_fleet(realistic_bundle()))
    assert change.revision == store.revision == 1
    assert change.everything
    assert store.accounts() == (MAIN, PARTNER, SANDBOX)

    alice = store.load_user(MAIN, "alice")
    assert alice is not None
    assert alice.groups == ("readers", "pushers")
    assert alice.boundary == ECR_ONLY
    assert alice.tags == {"team": "a", "CostCenter": "1234"}
    assert alice.user_id == "AIDAALICE"
    # the URL-encoded document is decoded, not stored as text
    assert alice.inline == {"push-team-a": PUSH_TEAM_A}
    bob = store.load_user(MAIN, "bob")
    assert bob is not None
    assert bob.arn == f"arn:aws:iam::{MAIN}:user/ci/bob"
    assert bob.attached == (REGISTRY_READ,)
    sandbox = store.load_user(SANDBOX, "sandbox-user")
    assert sandbox is not None
    assert sandbox.inline == {"everything": ALLOW_ALL}

    pushers = store.load_group(MAIN, "pushers")
    assert pushers is not None
    assert pushers.path == "/teams/"
    assert pushers.attached == (AWS_READ_ONLY,)

    deploy = store.load_role(MAIN, "deploy")
    assert deploy is not None
    assert deploy.name == "Deploy"
    assert deploy.tags == {"team": "ops", "env": "prod"}
    assert deploy.max_session_duration == 7200
    assert deploy.trust_policy is not None
    assert deploy.trust_policy["Statement"][0]["Action"] == "sts:AssumeRole"
    builder = store.load_role(MAIN, "ci-builder")
    assert builder is not None
    assert builder.trust_policy == TRUST_SERVICE
    assert builder.boundary == ECR_ONLY
    assert builder.arn == f"arn:aws:iam::{MAIN}:role/service-role/ci-builder"

    read = store.load_policy(REGISTRY_READ)
    assert read is not None
    assert list(read.versions) == ["v1", "v2", "v3"]
    assert read.default_version == "v2"
    assert read.document == read.versions["v2"]
    assert read.policy_id == "ANPAREGISTRYREAD"
    aws_managed = store.load_policy(AWS_READ_ONLY)
    assert aws_managed is not None
    assert aws_managed.account is None

    app = store.load_repository(APP)
    assert app is not None
    assert app.tags == {"env": "prod", "team": "a"}
    # policyText is a JSON string in the bundle, a document in the store
    assert app.policy == REPOSITORY_POLICY
    app_eu = store.load_repository(APP_EU)
    assert app_eu == Repository(APP_EU, {"env": "prod"})
    assert store.load_repository(BASE) is not None

    organization = store.load_organization()
    assert organization is not None
    assert organization.id == ORG_ID
    assert organization.root.id == "r-ab12"
    assert organization.root.service_control == (ALLOW_ALL,)
    path = organization.path_to(PARTNER)
    assert path is not None
    assert [node.id for node in path] == ["r-ab12", OU_ID]
    assert path[-1].service_control == (NO_DELETES,)
    assert path[-1].resource_control == (ORG_ONLY,)
    assert organization.path_to(SANDBOX) is None


def test_the_store_holds_exactly_what_the_bundle_describes(store: FleetStore) -> None:
    described = bundle_to_fleet(realistic_bundle())
    store.import_fleet(described)
    stored = store.load_fleet()
    for part in ("users", "groups", "roles", "policies", "repositories"):
        assert _by_arn(getattr(stored, part)) == _by_arn(getattr(described, part)), part
    assert stored.organization == described.organization
    assert set(stored.accounts) == set(described.accounts)


def test_the_sample_bundle_shipped_with_dockgate_imports(store: FleetStore) -> None:
    sample = (
        Path(__file__).parents[3] / "server" / "dockgate_server" / "data" / "sample-bundle.json"
    )
    assert _import(store, json.loads(sample.read_text(encoding="utf-8"))) == 1
    assert len(store.load_fleet().users) == 2


@pytest.mark.parametrize(
    "value",
    [
        {"Effect": "Allow", "Action": "ecr:*", "Resource": "*"},
        {
            "Effect": "Allow",
            "Action": "ecr:BatchGetImage",
            "Resource": "*",
            "Condition": {"StringLike": {"aws:ResourceTag/ratio": ["50%", "a+b c&d=e", "é/ü"]}},
        },
    ],
    ids=["plain", "special characters"],
)
def test_a_url_encoded_policy_document_decodes_exactly(
    store: FleetStore, value: dict[str, Any]
) -> None:
    policy = document(value)
    bundle: Bundle = {
        "format": BUNDLE_FORMAT,
        "accounts": {
            MAIN: {
                "authorizationDetails": {
                    "UserDetailList": [
                        {
                            "UserName": "u",
                            "UserPolicyList": [
                                {"PolicyName": "p", "PolicyDocument": url_encoded(policy)}
                            ],
                        }
                    ],
                    "Policies": [
                        {
                            "PolicyName": "m",
                            "Arn": f"arn:aws:iam::{MAIN}:policy/m",
                            "DefaultVersionId": "v1",
                            "PolicyVersionList": [
                                {"VersionId": "v1", "Document": url_encoded(policy)}
                            ],
                        }
                    ],
                },
                "repositories": [
                    {
                        "repositoryArn": APP,
                        "policyText": url_encoded(
                            {**policy, "Statement": [{**value, "Principal": "*"}]}
                        ),
                    }
                ],
            }
        },
    }
    _import(store, bundle)
    user = store.load_user(MAIN, "u")
    assert user is not None
    assert user.inline == {"p": policy}
    managed = store.load_policy(f"arn:aws:iam::{MAIN}:policy/m")
    assert managed is not None
    assert managed.document == policy
    repository = store.load_repository(APP)
    assert repository is not None
    assert repository.policy == {**policy, "Statement": [{**value, "Principal": "*"}]}


def test_is_default_version_names_the_default_when_default_version_id_is_absent(
    store: FleetStore,
) -> None:
    bundle = realistic_bundle()
    listed = _named(_details(bundle, MAIN)["Policies"], "Arn", REGISTRY_READ)
    del listed["DefaultVersionId"]
    _import(store, bundle)
    read = store.load_policy(REGISTRY_READ)
    assert read is not None
    assert read.default_version == "v2"


# -- export and round trip -------------------------------------------------------------------


def test_export_then_import_then_export_gives_the_same_bundle(tmp_path: Path) -> None:
    with open_store(tmp_path / "first.sqlite3") as first:
        _import(first, realistic_bundle())
        exported = fleet_to_bundle(first.load_fleet())
        fleet = first.load_fleet()
    # through JSON text, as `dockgate export` prints it
    text = json.dumps(exported, indent=2, ensure_ascii=False)
    with open_store(tmp_path / "second.sqlite3") as second:
        assert _import(second, json.loads(text)) == 1
        assert fleet_to_bundle(second.load_fleet()) == exported
        assert second.load_fleet() == fleet


def test_export_uses_the_aws_cli_shapes(store: FleetStore) -> None:
    _import(store, realistic_bundle())
    exported = fleet_to_bundle(store.load_fleet())
    assert exported["format"] == BUNDLE_FORMAT
    assert exported["partition"] == "aws"
    assert exported["organization"]["id"] == ORG_ID
    assert exported["organization"]["root"]["children"][0]["accounts"] == [MAIN, PARTNER]
    assert set(exported["accounts"]) == {MAIN, PARTNER, SANDBOX}
    main = exported["accounts"][MAIN]
    details = main["authorizationDetails"]
    alice = _named(details["UserDetailList"], "UserName", "alice")
    assert alice["Arn"] == f"arn:aws:iam::{MAIN}:user/alice"
    assert alice["GroupList"] == ["readers", "pushers"]
    assert alice["Tags"] == tags(team="a", CostCenter="1234")
    assert alice["PermissionsBoundary"]["PermissionsBoundaryArn"] == ECR_ONLY
    assert alice["UserPolicyList"] == [{"PolicyName": "push-team-a", "PolicyDocument": PUSH_TEAM_A}]
    deploy = _named(details["RoleDetailList"], "RoleName", "Deploy")
    assert deploy["MaxSessionDuration"] == 7200
    assert deploy["AttachedManagedPolicies"] == [
        {"PolicyName": "registry-read", "PolicyArn": REGISTRY_READ}
    ]
    read = _named(details["Policies"], "Arn", REGISTRY_READ)
    assert read["DefaultVersionId"] == "v2"
    assert [(v["VersionId"], v["IsDefaultVersion"]) for v in read["PolicyVersionList"]] == [
        ("v1", False),
        ("v2", True),
        ("v3", False),
    ]
    # an AWS managed policy is listed in an account that attaches it
    assert AWS_READ_ONLY in [policy["Arn"] for policy in details["Policies"]]
    app = _named(main["repositories"], "repositoryArn", APP)
    assert isinstance(app["policyText"], str)
    assert json.loads(app["policyText"]) == REPOSITORY_POLICY
    assert app["tags"] == tags(env="prod", team="a")
    assert "policyText" not in _named(main["repositories"], "repositoryArn", TOOLS)


# -- merge and replace -----------------------------------------------------------------------


def _main_update() -> Bundle:
    """MAIN as a later bundle sees it: alice changed, carol new, one new repository; the rest
    of MAIN (bob, the roles, groups but `readers`, the policies, other repositories) omitted."""
    return {
        "format": BUNDLE_FORMAT,
        "accounts": {
            MAIN: {
                "authorizationDetails": {
                    "GroupDetailList": [{"GroupName": "readers"}],
                    "UserDetailList": [
                        {"UserName": "alice", "GroupList": ["readers"], "Tags": tags(team="z")},
                        {"UserName": "carol"},
                    ],
                },
                "repositories": [{"repositoryArn": f"arn:aws:ecr:us-east-1:{MAIN}:repository/new"}],
            }
        },
    }


def test_merge_replaces_the_entities_in_the_bundle_and_keeps_the_rest(store: FleetStore) -> None:
    _import(store, realistic_bundle())
    before = store.load_fleet()
    assert _import(store, _main_update()) == 2
    after = store.load_fleet()
    alice = store.load_user(MAIN, "alice")
    assert alice is not None
    assert (alice.groups, alice.tags, alice.boundary, alice.inline) == (
        ("readers",),
        {"team": "z"},
        None,
        {},
    )
    assert store.load_user(MAIN, "carol") is not None
    assert store.load_user(MAIN, "bob") == next(u for u in before.users if u.name == "bob")
    # `readers` was replaced by its bundle version: its inline policy and attachment are gone
    readers = store.load_group(MAIN, "readers")
    assert readers is not None
    assert (readers.inline, readers.attached) == ({}, ())
    assert store.load_group(MAIN, "pushers") is not None
    assert store.load_role(MAIN, "Deploy") is not None
    assert store.load_policy(REGISTRY_READ) is not None
    assert store.load_repository(TOOLS) is not None
    assert len(after.repositories) == len(before.repositories) + 1
    assert after.organization == before.organization


def test_replace_makes_the_bundle_the_whole_truth_for_the_accounts_it_names(
    store: FleetStore,
) -> None:
    _import(store, realistic_bundle())
    before = store.load_fleet()
    assert store.import_fleet(bundle_to_fleet(_main_update()), replace=True).revision == 2
    after = store.load_fleet()
    main_users = sorted(user.name for user in after.users if user.account == MAIN)
    assert main_users == ["alice", "carol"]
    assert [group.name for group in after.groups if group.account == MAIN] == ["readers"]
    assert [role for role in after.roles if role.account == MAIN] == []
    assert [policy for policy in after.policies if policy.account == MAIN] == []
    assert [r.arn for r in after.repositories if r.account == MAIN] == [
        f"arn:aws:ecr:us-east-1:{MAIN}:repository/new"
    ]
    alice = store.load_user(MAIN, "alice")
    assert alice is not None
    assert alice.groups == ("readers",)
    # the accounts the bundle does not name are untouched
    for part in ("users", "groups", "roles", "repositories"):
        kept = [e for e in getattr(before, part) if e.account != MAIN]
        assert [e for e in getattr(after, part) if e.account != MAIN] == kept, part
    assert after.organization == before.organization
    assert set(after.accounts) == {MAIN, PARTNER, SANDBOX}


def test_replace_drops_memberships_of_removed_groups(store: FleetStore) -> None:
    _import(store, realistic_bundle())
    bundle = realistic_bundle()
    details = _details(bundle, MAIN)
    details["GroupDetailList"] = [
        g for g in details["GroupDetailList"] if g["GroupName"] != "pushers"
    ]
    for user in details["UserDetailList"]:
        user["GroupList"] = [group for group in user["GroupList"] if group != "pushers"]
    store.import_fleet(bundle_to_fleet(bundle), replace=True)
    assert store.load_group(MAIN, "pushers") is None
    alice = store.load_user(MAIN, "alice")
    assert alice is not None
    assert alice.groups == ("readers",)


def test_merge_may_refer_to_groups_and_policies_already_stored(store: FleetStore) -> None:
    _import(store, realistic_bundle())
    later: Bundle = {
        "format": BUNDLE_FORMAT,
        "accounts": {
            MAIN: {
                "authorizationDetails": {
                    "UserDetailList": [
                        {
                            "UserName": "erin",
                            "GroupList": ["pushers"],
                            "AttachedManagedPolicies": [
                                {"PolicyName": "registry-read", "PolicyArn": REGISTRY_READ}
                            ],
                        }
                    ]
                }
            }
        },
    }
    assert _import(store, later) == 2
    # under --replace the bundle is the whole truth: what it refers to must be in it
    with pytest.raises(StoreError, match=r"registry-read"):
        store.import_fleet(bundle_to_fleet(later), replace=True)
    assert store.revision == 2


# -- an invalid policy anywhere fails the whole import ---------------------------------------

BAD = document(statement("Allowed", "ecr:*"))


def _bad_repository_policy() -> dict[str, Any]:
    return {**BAD, "Statement": [{**BAD["Statement"][0], "Principal": "*"}]}


def _spoil_user_inline(bundle: Bundle) -> None:
    user = _named(_details(bundle, SANDBOX)["UserDetailList"], "UserName", "sandbox-user")
    user["UserPolicyList"].append({"PolicyName": "broken", "PolicyDocument": BAD})


def _spoil_url_encoded(bundle: Bundle) -> None:
    user = _named(_details(bundle, MAIN)["UserDetailList"], "UserName", "alice")
    user["UserPolicyList"][0]["PolicyDocument"] = url_encoded(BAD)


def _spoil_group_inline(bundle: Bundle) -> None:
    group = _named(_details(bundle, MAIN)["GroupDetailList"], "GroupName", "readers")
    group["GroupPolicyList"][0]["PolicyDocument"] = BAD


def _spoil_role_inline(bundle: Bundle) -> None:
    role = _named(_details(bundle, PARTNER)["RoleDetailList"], "RoleName", "partner-ci")
    role["RolePolicyList"][0]["PolicyDocument"] = BAD


def _spoil_trust(bundle: Bundle) -> None:
    role = _named(_details(bundle, MAIN)["RoleDetailList"], "RoleName", "Deploy")
    role["AssumeRolePolicyDocument"] = _bad_repository_policy()


def _spoil_old_version(bundle: Bundle) -> None:
    policy = _named(_details(bundle, MAIN)["Policies"], "Arn", REGISTRY_READ)
    policy["PolicyVersionList"][0]["Document"] = BAD


def _spoil_repository(bundle: Bundle) -> None:
    repository = bundle["accounts"][PARTNER]["repositories"][0]
    repository["policyText"] = json.dumps(_bad_repository_policy())


def _spoil_scp(bundle: Bundle) -> None:
    bundle["organization"]["root"]["children"][0]["serviceControlPolicies"].append(BAD)


def _spoil_rcp(bundle: Bundle) -> None:
    bundle["organization"]["root"]["resourceControlPolicies"] = [_bad_repository_policy()]


SPOILED: list[tuple[str, Callable[[Bundle], None], tuple[str, ...]]] = [
    ("user inline", _spoil_user_inline, (SANDBOX, "sandbox-user", "broken")),
    ("url-encoded inline", _spoil_url_encoded, (MAIN, "alice", "push-team-a")),
    ("group inline", _spoil_group_inline, (MAIN, "readers", "login")),
    ("role inline", _spoil_role_inline, (PARTNER, "partner-ci", "pull-anything")),
    ("trust policy", _spoil_trust, (MAIN, "Deploy", "trust policy")),
    ("non-default managed version", _spoil_old_version, (REGISTRY_READ, "v1")),
    ("repository policyText", _spoil_repository, (BASE,)),
    ("SCP of an OU", _spoil_scp, (OU_ID, "serviceControlPolicies[1]")),
    ("RCP of the root", _spoil_rcp, ("r-ab12", "resourceControlPolicies[0]")),
]


@pytest.mark.parametrize(
    ("spoil", "location"), [s[1:] for s in SPOILED], ids=[s[0] for s in SPOILED]
)
def test_an_invalid_policy_anywhere_fails_the_whole_import_and_stores_nothing(
    store: FleetStore, spoil: Callable[[Bundle], None], location: tuple[str, ...]
) -> None:
    earlier: Bundle = {
        "format": BUNDLE_FORMAT,
        "accounts": {PARTNER: {"authorizationDetails": {"UserDetailList": [{"UserName": "kept"}]}}},
    }
    _import(store, earlier)
    before = store.load_fleet()
    bundle = realistic_bundle()
    spoil(bundle)
    for replace in (False, True):
        with pytest.raises(PolicyError) as raised:
            store.import_fleet(bundle_to_fleet(bundle), replace=replace)
        message = str(raised.value)
        for fragment in location:
            assert fragment in message
        assert "/Statement/0/Effect" in message
        assert store.revision == 1
        assert store.load_fleet() == before
        assert store.changes_since(1) == []


def test_an_aws_managed_policy_attached_but_not_listed_is_an_error_naming_it(
    store: FleetStore,
) -> None:
    bundle = realistic_bundle()
    details = _details(bundle, MAIN)
    details["Policies"] = [p for p in details["Policies"] if p["Arn"] != AWS_READ_ONLY]
    with pytest.raises(StoreError) as raised:
        _import(store, bundle)
    assert AWS_READ_ONLY in str(raised.value)
    assert "pushers" in str(raised.value)
    assert store.revision == 0
    assert store.load_fleet() == Fleet()


def test_a_customer_managed_policy_attached_but_not_listed_is_an_error(store: FleetStore) -> None:
    bundle = realistic_bundle()
    details = _details(bundle, MAIN)
    details["Policies"] = [p for p in details["Policies"] if p["Arn"] != ECR_ONLY]
    with pytest.raises(StoreError, match=r"boundaries/ecr-only"):
        _import(store, bundle)
    assert store.revision == 0


def test_a_user_in_a_group_the_bundle_does_not_list_is_an_error(store: FleetStore) -> None:
    bundle = realistic_bundle()
    _named(_details(bundle, MAIN)["UserDetailList"], "UserName", "bob")["GroupList"] = ["nobody"]
    with pytest.raises(StoreError, match=r"user `bob` of account 111122223333: group `nobody`"):
        _import(store, bundle)
    assert store.revision == 0


# -- bad shapes --------------------------------------------------------------------------------


def _set(path: str, value: object) -> Callable[[Bundle], None]:
    """Set the value at a JSON pointer of the bundle (list indexes as digits)."""

    def apply(bundle: Bundle) -> None:
        *parents, last = path.strip("/").split("/")
        node: Any = bundle
        for token in parents:
            node = node[int(token)] if isinstance(node, list) else node[token]
        if isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value

    return apply


def _without_default(bundle: Bundle) -> None:
    policy = _details(bundle, MAIN)["Policies"][1]
    del policy["DefaultVersionId"]
    policy["PolicyVersionList"][0]["IsDefaultVersion"] = False


_USERS = f"/accounts/{MAIN}/authorizationDetails/UserDetailList"
_ROLES = f"/accounts/{MAIN}/authorizationDetails/RoleDetailList"
_POLICIES = f"/accounts/{MAIN}/authorizationDetails/Policies"
_REPOSITORIES = f"/accounts/{MAIN}/repositories"

SHAPES: list[tuple[str, Callable[[Bundle], None], str]] = [
    ("wrong format", _set("/format", "dockgate-bundle/2"), "/format"),
    ("empty partition", _set("/partition", ""), "/partition"),
    ("accounts a list", _set("/accounts", []), "/accounts"),
    ("account not an object", _set(f"/accounts/{MAIN}", "x"), f"/accounts/{MAIN}"),
    (
        "details not an object",
        _set(f"/accounts/{MAIN}/authorizationDetails", []),
        f"/accounts/{MAIN}/authorizationDetails",
    ),
    ("user list not a list", _set(_USERS, {}), _USERS),
    ("user not an object", _set(f"{_USERS}/1", "bob"), f"{_USERS}/1"),
    ("user name not a string", _set(f"{_USERS}/0/UserName", 7), f"{_USERS}/0/UserName"),
    ("group list of numbers", _set(f"{_USERS}/0/GroupList", [1]), f"{_USERS}/0/GroupList"),
    ("tag without a value", _set(f"{_USERS}/0/Tags/1", {"Key": "k"}), f"{_USERS}/0/Tags/1/Value"),
    (
        "inline policy without a name",
        _set(f"{_USERS}/0/UserPolicyList/0", {"PolicyDocument": ALLOW_ALL}),
        f"{_USERS}/0/UserPolicyList/0/PolicyName",
    ),
    (
        "inline document not JSON",
        _set(f"{_USERS}/0/UserPolicyList/0/PolicyDocument", "{nope"),
        f"{_USERS}/0/UserPolicyList/0/PolicyDocument",
    ),
    (
        "inline document a list",
        _set(f"{_USERS}/0/UserPolicyList/0/PolicyDocument", [ALLOW_ALL]),
        f"{_USERS}/0/UserPolicyList/0/PolicyDocument",
    ),
    (
        "boundary without an ARN",
        _set(f"{_USERS}/0/PermissionsBoundary", {"PermissionsBoundaryType": "Policy"}),
        f"{_USERS}/0/PermissionsBoundary/PermissionsBoundaryArn",
    ),
    (
        "attachment without an ARN",
        _set(f"{_ROLES}/0/AttachedManagedPolicies/0", {"PolicyName": "x"}),
        f"{_ROLES}/0/AttachedManagedPolicies/0/PolicyArn",
    ),
    (
        "session duration out of range",
        _set(f"{_ROLES}/0/MaxSessionDuration", 60),
        f"{_ROLES}/0/MaxSessionDuration",
    ),
    ("no default version", _without_default, f"{_POLICIES}/1/DefaultVersionId"),
    (
        "version without an id",
        _set(f"{_POLICIES}/0/PolicyVersionList/2", {"Document": ALLOW_ALL}),
        f"{_POLICIES}/0/PolicyVersionList/2/VersionId",
    ),
    (
        "repository in another account",
        _set(f"{_REPOSITORIES}/0/repositoryArn", BASE),
        f"{_REPOSITORIES}/0/repositoryArn",
    ),
    (
        "policyText not JSON",
        _set(f"{_REPOSITORIES}/0/policyText", "not json"),
        f"{_REPOSITORIES}/0/policyText",
    ),
    ("repository tags an object", _set(f"{_REPOSITORIES}/1/tags", {}), f"{_REPOSITORIES}/1/tags"),
    ("organization root missing", _set("/organization/root", None), "/organization/root"),
    (
        "organization accounts of numbers",
        _set("/organization/root/children/0/accounts", [111122223333]),
        "/organization/root/children/0/accounts",
    ),
    (
        "organization child not an object",
        _set("/organization/root/children/0", "ou"),
        "/organization/root/children/0",
    ),
    (
        "SCP a string that is not JSON",
        _set("/organization/root/serviceControlPolicies/0", "allow everything"),
        "/organization/root/serviceControlPolicies/0",
    ),
]


@pytest.mark.parametrize(("spoil", "pointer"), [s[1:] for s in SHAPES], ids=[s[0] for s in SHAPES])
def test_a_bad_shape_is_an_error_starting_with_its_pointer(
    store: FleetStore, spoil: Callable[[Bundle], None], pointer: str
) -> None:
    bundle = realistic_bundle()
    spoil(bundle)
    with pytest.raises(BundleError) as raised:
        _import(store, bundle)
    assert str(raised.value).startswith(f"bundle at {pointer}:"), str(raised.value)
    assert store.revision == 0


@pytest.mark.parametrize(
    "bundle", [[], "bundle", None, 3], ids=["list", "string", "null", "number"]
)
def test_a_bundle_that_is_not_an_object_is_an_error_at_the_root(bundle: object) -> None:
    with pytest.raises(BundleError, match=r"^bundle at /: must be an object"):
        bundle_to_fleet(bundle)


def test_bundle_errors_are_store_errors() -> None:
    assert issubclass(BundleError, StoreError)


# -- what the spec asks that the store does not do yet -----------------------------------------


def test_an_account_key_that_is_not_an_account_id_is_refused(store: FleetStore) -> None:
    bundle: Bundle = {"format": BUNDLE_FORMAT, "accounts": {"team-a": {"repositories": []}}}
    with pytest.raises(StoreError, match=r"team-a"):
        _import(store, bundle)
    assert store.accounts() == ()


def test_two_users_of_one_name_in_an_account_are_refused(store: FleetStore) -> None:
    bundle: Bundle = {
        "format": BUNDLE_FORMAT,
        "accounts": {
            MAIN: {
                "authorizationDetails": {
                    "UserDetailList": [
                        {"UserName": "dup", "Path": "/a/"},
                        {"UserName": "dup", "Path": "/b/"},
                    ]
                }
            }
        },
    }
    with pytest.raises(StoreError, match=r"dup"):
        _import(store, bundle)
    assert store.revision == 0


def test_two_roles_whose_names_differ_only_in_case_are_refused(store: FleetStore) -> None:
    bundle: Bundle = {
        "format": BUNDLE_FORMAT,
        "accounts": {
            MAIN: {
                "authorizationDetails": {
                    "RoleDetailList": [{"RoleName": "Deploy"}, {"RoleName": "deploy"}]
                }
            }
        },
    }
    with pytest.raises(StoreError, match=r"(?i)deploy"):
        _import(store, bundle)
    assert store.revision == 0


def test_importing_into_a_store_that_another_bundle_filled_keeps_unrelated_accounts(
    store: FleetStore,
) -> None:
    _import(store, realistic_bundle())
    store.import_fleet(Fleet(users=(User(SANDBOX, "second"),)), replace=False)
    sandbox_users = sorted(u.name for u in store.load_fleet().users if u.account == SANDBOX)
    assert sandbox_users == ["sandbox-user", "second"]


def test_a_bundle_without_format_says_format_is_missing() -> None:
    bundle = realistic_bundle()
    del bundle["format"]
    with pytest.raises(BundleError) as refused:
        bundle_to_fleet(bundle)
    assert str(refused.value) == f"bundle at /: missing `format` (expected `{BUNDLE_FORMAT}`)"


@pytest.mark.parametrize(("given", "shown"), [(None, "null"), (1, "1"), ("v2", "v2")])
def test_a_wrong_format_is_shown_as_written(given: object, shown: str) -> None:
    bundle = {**realistic_bundle(), "format": given}
    with pytest.raises(BundleError) as refused:
        bundle_to_fleet(bundle)
    assert str(refused.value) == (f"bundle at /format: expected `{BUNDLE_FORMAT}`, got `{shown}`")
