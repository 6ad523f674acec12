"""Properties of snapshots: the index narrows without changing a decision, an incremental rebuild
decides as a fresh compile does, and the decision cache answers as the uncached path does.

Fleets are drawn from small name pools, so writes collide with what is stored (updates, deletes of
entities that are still referenced, groups that do not exist yet) as they would in use. Every
example gets its own SQLite store in a temporary directory.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, event, given, note, settings
from hypothesis import strategies as st

from dockgate_server.engine.cache import DecisionCache
from dockgate_server.engine.decision import Decision
from dockgate_server.engine.snapshot import PrincipalView, Snapshot
from dockgate_server.service.follow import SnapshotFollower
from dockgate_server.store.model import (
    Change,
    Fleet,
    Group,
    ManagedPolicy,
    Organization,
    OrgNode,
    Repository,
    Role,
    User,
)
from dockgate_server.store.port import FleetStore, open_store
from dockgate_server.store.validate import StoreError

Doc = dict[str, Any]

A = "111122223333"
B = "444455556666"
C = "777788889999"
"""an account the store never holds (it may still sit in the organization)"""
STORED = (A, B)

# -- name pools ---------------------------------------------------------------------------------

USER_NAMES = ("alice", "bob", "carol")
USER_PATHS = ("/", "/dev/")
ROLE_NAMES = ("ci", "CI", "Deploy")
ROLE_PATHS = ("/", "/team/", "/aws-service-role/ecr.amazonaws.com/")
GROUP_NAMES = ("devs", "ops")
REPOSITORY_NAMES = ("app", "team-a/app", "alice/tools", "team-b/app")
REGIONS = ("us-east-1", "eu-west-1")
REPOSITORY_SLOTS = tuple((region, name) for region in REGIONS for name in REPOSITORY_NAMES)
AWS_MANAGED = "arn:aws:iam::aws:policy/ECRReadOnly"
POLICY_ARNS = (
    *(f"arn:aws:iam::{account}:policy/{name}" for account in STORED for name in ("p1", "p2")),
    AWS_MANAGED,
)
SERVICES = ("codebuild.amazonaws.com", "ecr.amazonaws.com")


REPOSITORY_PARTITIONS = ("aws", "aws-cn")
"""Two partitions, so same-named repositories in both must coexist on every path."""


def repository_arn(account: str, region: str, name: str, partition: str = "aws") -> str:
    return f"arn:{partition}:ecr:{region}:{account}:repository/{name}"


# -- policies -----------------------------------------------------------------------------------

ACTIONS = (
    "*",
    "ecr:*",
    "ecr:Get*",
    "ecr:BatchGetImage",
    "ecr:PutImage",
    "ecr:*Image*",
    "ECR:batchgetimage",
    "ecr:?etDownloadUrlForLayer",
    "ecr:GetAuthorizationToken",
    "ecr:Describe*",
    "s3:GetObject",
    "s3:*",
)
RESOURCES = (
    "*",
    "arn:aws:ecr:*:*:repository/*",
    f"arn:aws:ecr:us-east-1:{A}:repository/team-a/*",
    f"arn:aws:ecr:us-east-1:{A}:repository/app",
    f"arn:aws:ecr:*:{B}:repository/*",
    "arn:aws:ecr:us-*:*:repository/team-?/app",
    "arn:aws:ecr:eu-west-1:*:repository/*",
    "arn:*:ecr:*:*:*",
    f"arn:aws:ecr:us-east-1:{A}:repository/alice/*",
    "arn:aws:ecr:*:*:repository/${aws:username}/*",
    "arn:aws:ecr:*:*:repository/${aws:PrincipalTag/team}/*",
    "arn:aws:ecr:*:*:repository/${aws:PrincipalTag/team, 'team-a'}/app",
    "arn:aws:ecr:*:${aws:PrincipalAccount}:repository/*",
    "arn:aws:ecr:*:*:repository/${*}",
    "arn:aws:s3:::bucket/*",
)
CONDITIONS: tuple[Doc, ...] = (
    {"StringEquals": {"aws:PrincipalTag/team": "team-a"}},
    {"StringEquals": {"ecr:ResourceTag/env": "prod"}},
    {"StringNotEqualsIfExists": {"aws:ResourceTag/env": "prod"}},
    {"StringLike": {"aws:ResourceTag/team": "${aws:PrincipalTag/team}"}},
    {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}},
    {"NotIpAddress": {"aws:SourceIp": ["192.0.2.0/24", "198.51.100.0/24"]}},
    {"ForAnyValue:StringEquals": {"aws:TagKeys": ["team", "env"]}},
    {"ForAllValues:StringLike": {"aws:TagKeys": "env*"}},
    {"Null": {"aws:PrincipalTag/team": "true"}},
    {"Bool": {"aws:SecureTransport": "false"}},
    {"DateLessThan": {"aws:CurrentTime": "2030-01-01T00:00:00Z"}},
    {"StringEquals": {"aws:ResourceAccount": "${aws:PrincipalAccount}"}},
    {
        "StringEquals": {"aws:PrincipalTag/team": "team-a"},
        "IpAddress": {"aws:SourceIp": "10.0.0.0/8"},
    },
)
PRINCIPAL_ENTRIES: tuple[object, ...] = (
    "*",
    {"AWS": "*"},
    {"AWS": A},
    {"AWS": f"arn:aws:iam::{B}:root"},
    {"AWS": f"arn:aws:iam::{A}:user/alice"},
    {"AWS": f"arn:aws:iam::{B}:user/dev/bob"},
    {"AWS": f"arn:aws:iam::{A}:role/ci"},
    {"AWS": f"arn:aws:iam::{B}:role/team/Deploy"},
    {"AWS": f"arn:aws:sts::{A}:assumed-role/ci/session"},
    {"AWS": f"arn:aws:sts::{B}:federated-user/carol"},
    {"AWS": [A, f"arn:aws:iam::{B}:user/carol"]},
    {"Service": "codebuild.amazonaws.com"},
)
FULL_ACCESS: Doc = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
}


def _one_or_list(items: list[str]) -> str | list[str]:
    return items[0] if len(items) == 1 else items


# strategies built once: drawing from them is much cheaper than building them per draw
_EFFECTS = st.sampled_from(("Allow", "Allow", "Deny"))
_ACTION_LISTS = st.lists(st.sampled_from(ACTIONS), min_size=1, max_size=3, unique=True)
_RCP_ACTION_LISTS = st.lists(
    st.sampled_from([action for action in ACTIONS if action != "*"]),
    min_size=1,
    max_size=3,
    unique=True,
)
_RESOURCE_LISTS = st.lists(st.sampled_from(RESOURCES), min_size=1, max_size=2, unique=True)
_ONE_IN_FIVE = st.integers(0, 4).map(lambda n: n == 0)
_PRINCIPALS = st.sampled_from(PRINCIPAL_ENTRIES)
_NOT_PRINCIPALS = st.sampled_from(PRINCIPAL_ENTRIES[1:])
_CONDITIONS = st.none() | st.sampled_from(CONDITIONS)


@st.composite
def _statements(draw: st.DrawFn, kind: str) -> Doc:
    rcp = kind == "rcp"
    effect = "Deny" if rcp else draw(_EFFECTS)
    statement: Doc = {"Effect": effect}
    actions = draw(_RCP_ACTION_LISTS if rcp else _ACTION_LISTS)
    negate = not rcp and draw(_ONE_IN_FIVE)
    statement["NotAction" if negate else "Action"] = _one_or_list(actions)
    if kind != "repository" or draw(st.booleans()):
        resources = draw(_RESOURCE_LISTS)
        statement["NotResource" if draw(_ONE_IN_FIVE) else "Resource"] = _one_or_list(resources)
    if kind == "repository":
        if effect == "Deny" and draw(_ONE_IN_FIVE):
            statement["NotPrincipal"] = draw(_NOT_PRINCIPALS)
        else:
            statement["Principal"] = draw(_PRINCIPALS)
    elif rcp:
        statement["Principal"] = "*"
    condition = draw(_CONDITIONS)
    if condition is not None:
        statement["Condition"] = condition
    return statement


@st.composite
def _documents(draw: st.DrawFn, kind: str, most: int) -> Doc:
    versions = ("2012-10-17",) if kind == "rcp" else ("2012-10-17", "2012-10-17", "2008-10-17")
    return {
        "Version": draw(st.sampled_from(versions)),
        "Statement": draw(st.lists(_statements(kind), min_size=1, max_size=most)),
    }


_DOCUMENTS = {
    (kind, most): _documents(kind, most)
    for kind in ("identity", "repository", "scp", "rcp")
    for most in (2, 3)
}


def documents(kind: str, most: int = 3) -> st.SearchStrategy[Doc]:
    """A policy of `kind` (identity, repository, scp or rcp), valid by construction."""
    return _DOCUMENTS[(kind, most)]


def subsets(items: tuple[str, ...] | list[str], most: int = 2) -> st.SearchStrategy[list[str]]:
    if not items:
        return st.just([])
    return st.lists(st.sampled_from(items), unique=True, max_size=most)


inline_policies = st.dictionaries(
    st.sampled_from(("inline1", "inline2")), documents("identity"), max_size=2
)
principal_tags = st.dictionaries(
    st.sampled_from(("team", "env")), st.sampled_from(("team-a", "team-b", "alice")), max_size=2
)
repository_tags = st.dictionaries(
    st.sampled_from(("env", "team")), st.sampled_from(("prod", "dev", "team-a")), max_size=2
)


def attachable(account: str, policies: tuple[str, ...] | list[str]) -> list[str]:
    """Managed policies an entity of `account` may attach: its account's and AWS's."""
    return sorted(arn for arn in policies if f"::{account}:" in arn or arn == AWS_MANAGED)


@st.composite
def managed_policies(draw: st.DrawFn, arn: str) -> ManagedPolicy:
    """Two versions, either of them the default."""
    versions = {"v1": draw(documents("identity")), "v2": draw(documents("identity"))}
    default = draw(st.sampled_from(("v1", "v2")))
    return ManagedPolicy(arn, arn.rsplit("/", 1)[-1], "/", default, versions)


def memberships(groups: tuple[str, ...]) -> st.SearchStrategy[list[str]]:
    """Mostly in a group when there is one: group writes reach their members."""
    if not groups:
        return st.just([])
    member = st.lists(st.sampled_from(groups), unique=True, min_size=1, max_size=2)
    return st.one_of(member, member, member, st.just([]))


@st.composite
def users(
    draw: st.DrawFn, account: str, name: str, groups: tuple[str, ...], policies: list[str]
) -> User:
    return User(
        account,
        name,
        draw(st.sampled_from(USER_PATHS)),
        tags=draw(principal_tags),
        boundary=draw(st.none() | st.sampled_from(policies)) if policies else None,
        groups=tuple(draw(memberships(groups))),
        inline=draw(inline_policies),
        attached=tuple(draw(subsets(policies))),
    )


@st.composite
def roles(draw: st.DrawFn, account: str, name: str, policies: list[str]) -> Role:
    return Role(
        account,
        name,
        draw(st.sampled_from(ROLE_PATHS)),
        tags=draw(principal_tags),
        boundary=draw(st.none() | st.sampled_from(policies)) if policies else None,
        inline=draw(inline_policies),
        attached=tuple(draw(subsets(policies))),
    )


@st.composite
def groups(draw: st.DrawFn, account: str, name: str, policies: list[str]) -> Group:
    return Group(
        account, name, inline=draw(inline_policies), attached=tuple(draw(subsets(policies)))
    )


@st.composite
def repositories(draw: st.DrawFn, account: str, region: str, name: str) -> Repository:
    policy = draw(st.none() | documents("repository"))
    partition = draw(st.sampled_from(REPOSITORY_PARTITIONS))
    return Repository(
        repository_arn(account, region, name, partition), draw(repository_tags), policy
    )


@st.composite
def organizations(draw: st.DrawFn) -> Organization:
    """A root and one OU; each account sits at the root, in the OU, or outside."""
    scps = st.lists(st.just(FULL_ACCESS) | documents("scp", 2), min_size=1, max_size=2)
    rcps = st.lists(documents("rcp", 2), max_size=1)
    placed = draw(st.permutations((A, B, C)))
    at_root = draw(st.integers(0, 3))
    in_unit = draw(st.integers(at_root, 3))
    unit = OrgNode("ou-1", tuple(draw(scps)), tuple(draw(rcps)), tuple(placed[at_root:in_unit]))
    root = OrgNode("r-root", tuple(draw(scps)), tuple(draw(rcps)), tuple(placed[:at_root]), (unit,))
    return Organization("o-example", root)


@st.composite
def fleets(draw: st.DrawFn) -> Fleet:
    policies = [draw(managed_policies(arn)) for arn in POLICY_ARNS if draw(st.booleans())]
    known = [policy.arn for policy in policies]
    fleet_groups: list[Group] = []
    fleet_users: list[User] = []
    fleet_roles: list[Role] = []
    fleet_repositories: list[Repository] = []
    for account in STORED:
        mine = attachable(account, known)
        names = tuple(draw(subsets(GROUP_NAMES)))
        fleet_groups += [draw(groups(account, name, mine)) for name in names]
        for name in draw(subsets(USER_NAMES, 3)):
            fleet_users.append(draw(users(account, name, names, mine)))
        role_names = draw(st.lists(st.sampled_from(ROLE_NAMES), unique_by=str.lower, max_size=2))
        fleet_roles += [draw(roles(account, name, mine)) for name in role_names]
        for region, name in draw(
            st.lists(st.sampled_from(REPOSITORY_SLOTS), unique=True, max_size=3)
        ):
            fleet_repositories.append(draw(repositories(account, region, name)))
    organization = draw(st.none() | organizations())
    return Fleet(
        STORED,
        tuple(fleet_users),
        tuple(fleet_groups),
        tuple(fleet_roles),
        tuple(policies),
        tuple(fleet_repositories),
        organization,
    )


# -- requests -----------------------------------------------------------------------------------

PRINCIPALS = (
    *(
        f"arn:aws:iam::{account}:user{path}{name}"
        for account in STORED
        for path in USER_PATHS
        for name in USER_NAMES
    ),
    *(f"arn:aws:sts::{account}:federated-user/{name}" for account in STORED for name in USER_NAMES),
    *(
        f"arn:aws:iam::{account}:role{path}{name}"
        for account in STORED
        for path in ROLE_PATHS
        for name in ROLE_NAMES
    ),
    *(
        f"arn:aws:sts::{account}:assumed-role/{name}/session"
        for account in STORED
        for name in ROLE_NAMES
    ),
    *(f"arn:aws:iam::{account}:root" for account in (A, B, C)),
    f"arn:aws:iam::{C}:user/alice",
    f"arn:aws:sts::{C}:assumed-role/ci/session",
    *SERVICES,
)
ECR_ACTIONS = (
    "ecr:BatchCheckLayerAvailability",
    "ecr:BatchGetImage",
    "ecr:GetDownloadUrlForLayer",
    "ecr:InitiateLayerUpload",
    "ecr:UploadLayerPart",
    "ecr:CompleteLayerUpload",
    "ecr:PutImage",
    "ecr:DescribeRepositories",
    "ecr:DescribeImages",
    "ecr:ListImages",
    "ecr:GetRepositoryPolicy",
    "ecr:SetRepositoryPolicy",
    "ecr:DeleteRepository",
    "ecr:TagResource",
    "ecr:GetAuthorizationToken",
)
# every docker login calls GetAuthorizationToken: weighted like the common request it is
REQUEST_ACTIONS = (
    *ECR_ACTIONS,
    "ecr:GetAuthorizationToken",
    "ecr:GetAuthorizationToken",
    "s3:GetObject",
)
REQUEST_RESOURCES = (
    "*",
    *(
        repository_arn(account, region, name)
        for account in STORED
        for region, name in REPOSITORY_SLOTS
    ),
    repository_arn(A, "us-east-1", "ghost"),
    repository_arn(A, "us-east-1", "team-a/other"),
    repository_arn(C, "us-east-1", "app"),
    "arn:aws:s3:::bucket/key",
)
CONTEXT_VALUES: dict[str, tuple[str | list[str], ...]] = {
    "aws:SourceIp": ("10.1.2.3", "192.0.2.7", "not-an-ip"),
    "aws:SecureTransport": ("true", "false"),
    "aws:TagKeys": (["team"], ["env", "team"], []),
    "aws:CurrentTime": ("2024-05-01T00:00:00Z", "2031-01-01T00:00:00Z"),
    "aws:PrincipalTag/team": ("team-a", "team-b"),
    "aws:ResourceAccount": (A, B),
    "aws:RequestedRegion": ("us-east-1", "eu-west-1"),
    # read by no policy in the pools above
    "aws:UserAgent": ("docker/24.0", "skopeo/1.14"),
    "aws:Referer": ("https://example.com", ""),
}


@dataclass(frozen=True)
class Call:
    principal: str
    action: str
    resource: str
    context: dict[str, str | list[str]]

    def authorize(self, snapshot: Snapshot, *, indexed: bool = True) -> Decision:
        return snapshot.authorize(
            self.principal, self.action, self.resource, self.context, indexed=indexed
        )

    def decide(self, cache: DecisionCache, snapshot: Snapshot) -> Decision:
        return cache.decide(snapshot, self.principal, self.action, self.resource, self.context)


@st.composite
def contexts(draw: st.DrawFn, resource: str, cache_safe: bool = False) -> dict[str, Any]:
    """Some of the keys above, now and then spelled in capitals.

    `cache_safe` leaves out `aws:ResourceAccount` for an ARN without an account (an S3 object),
    where it decides the resource's account without the decision cache seeing it read (bug:
    test_cache.py::test_a_resource_account_taken_from_the_context_is_part_of_the_key).
    """
    keys = list(CONTEXT_VALUES)
    if cache_safe and resource != "*" and not resource.split(":")[4]:
        keys.remove("aws:ResourceAccount")
    chosen = draw(st.lists(st.sampled_from(keys), unique=True, max_size=4))
    context: dict[str, Any] = {}
    for key in chosen:
        spelled = key.upper() if draw(st.integers(0, 4)) == 0 else key
        context[spelled] = draw(st.sampled_from(CONTEXT_VALUES[key]))
    return context


def known_principals(fleet: Fleet) -> list[str]:
    """ARNs the fleet can authorize: its users, roles, sessions, federated users and roots."""
    found = [f"arn:aws:iam::{account}:root" for account in STORED]
    for user in fleet.users:
        found += [user.arn, f"arn:aws:sts::{user.account}:federated-user/{user.name}"]
    for role in fleet.roles:
        found += [role.arn, f"arn:aws:sts::{role.account}:assumed-role/{role.name}/session"]
    return found


@st.composite
def calls(draw: st.DrawFn, fleet: Fleet | None = None, cache_safe: bool = False) -> Call:
    principals = st.sampled_from(PRINCIPALS)
    resources = st.sampled_from(REQUEST_RESOURCES)
    if fleet is not None:
        principals = st.sampled_from(known_principals(fleet)) | principals
        if fleet.repositories:
            resources = st.sampled_from([r.arn for r in fleet.repositories]) | resources
    action = draw(st.sampled_from(REQUEST_ACTIONS))
    resource = "*" if action == "ecr:GetAuthorizationToken" else draw(resources)
    context = draw(contexts(resource, cache_safe))
    return Call(draw(principals), action, resource, context)


@contextmanager
def stored(fleet: Fleet | None = None) -> Iterator[FleetStore]:
    """A fresh store in its own temporary directory, holding `fleet`."""
    with (
        tempfile.TemporaryDirectory() as directory,
        open_store(Path(directory) / "store.db") as store,
    ):
        if fleet is not None:
            store.import_fleet(fleet)
        yield store


SETTINGS = settings(
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


# -- a. the index narrows, the evaluator decides -------------------------------------------------


@settings(SETTINGS, max_examples=150)
@given(data=st.data(), fleet=fleets())
def test_indexed_and_scan_all_paths_decide_the_same(data: st.DataObject, fleet: Fleet) -> None:
    with stored(fleet) as store:
        snapshot = SnapshotFollower(store).build()
    for call in data.draw(st.lists(calls(fleet), min_size=1, max_size=15), label="calls"):
        indexed = call.authorize(snapshot, indexed=True)
        scanned = call.authorize(snapshot, indexed=False)
        assert indexed.outcome == scanned.outcome, call
        assert indexed.errors == scanned.errors, call
        assert indexed.reasons == scanned.reasons, call
        event(f"a: {indexed.outcome}")
        # the second indexed call reads the action slice the first one kept
        assert call.authorize(snapshot, indexed=True) == indexed, call


DENY_ALL: Doc = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Deny", "Action": "*", "Resource": "*"}],
}


def test_a_policy_attached_twice_gives_the_same_reasons_on_both_paths() -> None:
    app = repository_arn(A, "us-east-1", "app")
    two_prefixes: Doc = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": "ecr:*",
                "Resource": [app, "arn:aws:ecr:*:*:repository/*"],
            }
        ],
    }
    deny = f"arn:aws:iam::{A}:policy/p1"
    fleet = Fleet(
        STORED,
        users=(User(A, "bob", groups=("devs",), inline={"both": two_prefixes}, attached=(deny,)),),
        groups=(Group(A, "devs", attached=(deny,)),),
        policies=(ManagedPolicy(deny, "p1", "/", "v1", {"v1": DENY_ALL}),),
    )
    with stored(fleet) as store:
        snapshot = SnapshotFollower(store).build()
    call = Call(f"arn:aws:iam::{A}:user/bob", "ecr:PutImage", app, {})
    scanned = call.authorize(snapshot, indexed=False)
    assert [r.policy for r in scanned.reasons] == [deny, deny]
    assert call.authorize(snapshot, indexed=True) == scanned


# -- b. an incremental rebuild is a fresh compile -------------------------------------------------

Write = tuple[str, tuple[Any, ...]]
"""a Store method's name and its arguments (shown as is when hypothesis reports an example)"""


def preferring(existing: list[str], pool: tuple[str, ...] | list[str]) -> st.SearchStrategy[str]:
    """Mostly what the store holds, sometimes anything from the pool (a write it may refuse)."""
    anything = st.sampled_from(pool)
    if not existing:
        return anything
    stored = st.sampled_from(existing)
    return st.one_of(stored, stored, stored, anything)


@st.composite
def writes(draw: st.DrawFn, current: Fleet) -> Write:
    """A write drawn against what the store holds now: updates, deletes and refusals."""
    account = draw(st.sampled_from(STORED))
    present = [p.arn for p in current.policies]
    policies = attachable(account, present) if draw(st.integers(0, 4)) else list(POLICY_ARNS)
    group_names = [g.name for g in current.groups if g.account == account]
    member_of = group_names if draw(st.integers(0, 4)) else list(GROUP_NAMES)
    repository_arns = [r.arn for r in current.repositories]
    region, repository = draw(st.sampled_from(REPOSITORY_SLOTS))
    kind = draw(
        st.sampled_from(
            (
                "put_user",
                "put_user",
                "put_role",
                "put_role",
                "put_policy",
                "put_policy",
                "put_repository",
                "set_repository_policy",
                "put_group",
                "put_group",
                "delete_user",
                "delete_role",
                "delete_group",
                "delete_policy",
                "delete_repository",
                "set_organization",
            )
        )
    )
    if kind == "put_user":
        name = draw(st.sampled_from(USER_NAMES))
        return kind, (draw(users(account, name, tuple(member_of), policies)),)
    if kind == "put_role":
        return kind, (draw(roles(account, draw(st.sampled_from(ROLE_NAMES)), policies)),)
    if kind == "put_policy":
        return kind, (draw(managed_policies(draw(preferring(present, POLICY_ARNS)))),)
    if kind == "put_repository":  # mostly a new version of a stored repository
        slot = f"arn:aws:ecr:{region}:{account}:repository/{repository}"
        _, _, _, region, account, rest = draw(preferring(repository_arns, [slot])).split(":", 5)
        return kind, (draw(repositories(account, region, rest.removeprefix("repository/"))),)
    if kind == "set_repository_policy":
        arn = draw(preferring(repository_arns, [repository_arn(account, region, repository)]))
        return kind, (arn, draw(st.none() | documents("repository")))
    if kind == "put_group":  # mostly a new version of a group with members
        joined = sorted({g for u in current.users if u.account == account for g in u.groups})
        name = draw(preferring(joined or group_names, GROUP_NAMES))
        return kind, (draw(groups(account, name, policies)),)
    if kind == "delete_user":
        names = [u.name for u in current.users if u.account == account]
        return kind, (account, draw(preferring(names, USER_NAMES)))
    if kind == "delete_role":
        names = [r.name for r in current.roles if r.account == account]
        # IAM role names ignore case: delete by another spelling now and then
        name = draw(preferring(names, ROLE_NAMES))
        return kind, (account, name.swapcase() if draw(st.integers(0, 3)) == 0 else name)
    if kind == "delete_group":
        return kind, (account, draw(preferring(group_names, GROUP_NAMES)))
    if kind == "delete_policy":
        return kind, (draw(preferring(present, POLICY_ARNS)),)
    if kind == "delete_repository":
        return kind, (
            draw(preferring(repository_arns, [repository_arn(account, region, repository)])),
        )
    return kind, (draw(st.none() | organizations()),)


def _view_shape(view: PrincipalView) -> tuple[object, ...]:
    boundary = view.boundary.all() if view.boundary else None
    return (
        view.key,
        view.arn,
        dict(view.tags),
        [(p.name, p.statements) for p in view.identity.all()],
        None if boundary is None else [(p.name, p.statements) for p in boundary],
    )


def shape(snapshot: Snapshot) -> dict[str, object]:
    """Everything a snapshot holds, as comparable values (compiled statements compare by value)."""
    return {
        "revision": snapshot.revision,
        "accounts": snapshot.accounts,
        "users": {key: _view_shape(view) for key, view in snapshot.users.items()},
        "user_arns": dict(snapshot.user_arns),
        "roles": {key: _view_shape(view) for key, view in snapshot.roles.items()},
        "repositories": {
            arn: (view.arn, view.policy, dict(view.tags))
            for arn, view in snapshot.repositories.items()
        },
        "scp": {
            account: [level.all() for level in levels]
            for account, levels in snapshot.service_control.items()
        },
        "rcp": {
            account: [level.all() for level in levels]
            for account, levels in snapshot.resource_control.items()
        },
        "organization_paths": dict(snapshot.organization_paths),
        "partitions": dict(snapshot.partitions),
    }


def probe_calls(*snapshots: Snapshot) -> list[Call]:
    """A request for every principal either snapshot knows, on every repository either holds."""
    principals = {f"arn:aws:iam::{account}:root" for account in STORED}
    repositories: set[str] = set()
    for snapshot in snapshots:
        principals.update(view.arn for view in snapshot.users.values())
        for view in snapshot.roles.values():
            account, name = view.key.split("/")[1], view.arn.rsplit("/", 1)[-1]
            principals.update((view.arn, f"arn:aws:sts::{account}:assumed-role/{name}/probe"))
        repositories.update(snapshot.repositories)
    context: dict[str, str | list[str]] = {"aws:SourceIp": "10.1.2.3", "aws:TagKeys": ["team"]}
    found = []
    for principal in sorted(principals):
        found.append(Call(principal, "ecr:GetAuthorizationToken", "*", context))
        for resource in sorted(repositories):
            found.append(Call(principal, "ecr:BatchGetImage", resource, context))
            found.append(Call(principal, "ecr:PutImage", resource, {}))
    return found


def assert_same_decisions(updated: Snapshot, fresh: Snapshot, calls: list[Call]) -> None:
    for call in [*calls, *probe_calls(updated, fresh)]:
        assert call.authorize(updated) == call.authorize(fresh), call


@settings(SETTINGS, max_examples=120)
@given(data=st.data(), fleet=fleets(), requests=st.lists(calls(), max_size=10))
def test_an_incremental_update_decides_as_a_fresh_compile(
    data: st.DataObject, fleet: Fleet, requests: list[Call]
) -> None:
    with stored(fleet) as store:
        builder = SnapshotFollower(store)
        snapshot = builder.build()
        follower = SnapshotFollower(store)
        behind = follower.build()
        for number in range(data.draw(st.integers(1, 10), label="writes")):
            method, arguments = data.draw(writes(store.load_fleet()), label=f"write {number}")
            revision = store.revision
            try:
                change: Change = getattr(store, method)(*arguments)
            except StoreError:
                event(f"b: {method} refused")
                assert store.revision == revision  # a refused write changes nothing
                continue
            event(f"b: {method} ok")
            assert change.revision == revision + 1
            snapshot = builder.update(snapshot, change)
            fresh = SnapshotFollower(store).build()
            assert snapshot.revision == fresh.revision == change.revision
            assert shape(snapshot) == shape(fresh), f"write {number}: {method}"
            assert_same_decisions(snapshot, fresh, requests)
            if number % 2:  # another process catches up on several writes at once
                behind = follower.refresh(behind)
                assert shape(behind) == shape(fresh), f"write {number}: refresh"
        assert shape(follower.refresh(behind)) == shape(builder.build())


CROSS_ACCOUNT_PULL: Doc = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"AWS": B}, "Action": "ecr:BatchGetImage"}],
}


def test_repositories_of_one_name_in_two_partitions_both_stay() -> None:
    """Repositories are keyed by ARN: a same-named one in another partition replaces nothing."""
    china = repository_arn(A, "us-east-1", "app", "aws-cn")
    with stored() as store:
        builder = SnapshotFollower(store)
        snapshot = builder.update(
            builder.build(), store.put_repository(Repository(china, {}, CROSS_ACCOUNT_PULL))
        )
        change = store.put_repository(Repository(repository_arn(A, "us-east-1", "app")))
        snapshot = builder.update(snapshot, change)
        fresh = SnapshotFollower(store).build()
        assert store.load_repository(china) is not None
        root = f"arn:aws:iam::{B}:root"
        assert snapshot.authorize(root, "ecr:BatchGetImage", china) == fresh.authorize(
            root, "ecr:BatchGetImage", china
        )
        assert sorted(snapshot.repositories) == sorted(fresh.repositories)


# -- c. the cache answers as the snapshot does ----------------------------------------------------

LOGIN: Doc = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Action": "ecr:*", "Resource": "*"},
        {
            "Effect": "Deny",
            "Action": "ecr:PutImage",
            "Resource": "*",
            "Condition": {"NotIpAddress": {"aws:SourceIp": "10.0.0.0/8"}},
        },
    ],
}


@settings(SETTINGS, max_examples=150)
@given(data=st.data(), fleet=fleets())
def test_the_cache_decides_as_the_uncached_snapshot(data: st.DataObject, fleet: Fleet) -> None:
    with stored(fleet) as store:
        first = SnapshotFollower(store).build()
        store.put_user(User(A, "alice", inline={"login": LOGIN}))
        second = SnapshotFollower(store).build()
    # restricted: see `contexts`
    requests = data.draw(
        st.lists(calls(fleet), min_size=1, max_size=4),
        label="requests",
    )
    cache = DecisionCache()
    asked = 0
    for _ in range(data.draw(st.integers(5, 25), label="steps")):
        base = data.draw(st.sampled_from(requests))
        if data.draw(st.booleans()):  # the same request with other context values
            context = data.draw(contexts(base.resource))
            base = Call(base.principal, base.action, base.resource, context)
        snapshot = data.draw(st.sampled_from((first, second)))
        note(f"{base} at revision {snapshot.revision}")
        expected = base.authorize(snapshot)
        assert base.decide(cache, snapshot) == expected
        event(f"c: {expected.outcome}")
        hits = cache.hits
        assert base.decide(cache, snapshot) == expected
        assert cache.hits == hits + 1  # an exact repeat always hits
        asked += 2
    assert cache.hits + cache.misses == asked
