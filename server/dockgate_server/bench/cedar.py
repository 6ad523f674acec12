"""Dockgate's engine against Cedar's (through `cedarpy`) on one ECR model, same answers first.

Run: `python -m dockgate_server.bench.cedar`. One fleet is written both ways: users and roles with
identity policies allowing and denying ECR actions on repository ARNs with wildcards (one
statement in five keyed on the principal's and the repository's `team` tag, the denials on the
repository's `env` tag and `aws:MultiFactorAuthPresent`), repositories whose policies grant
principals or whole accounts the pull actions or `ecr:*`. Every question of the mix is decided
by both engines, and the benchmark refuses to time them unless every answer agrees (Allowed ↔
Allow, either denial ↔ Deny). Then per-decision cost, uncached, in this process (CPU time, the
best of interleaved rounds): Dockgate's `decide`, and `cedarpy.is_authorized_batch`
with parsed policies, entities and schema, JSON in and out included as a Python caller pays it,
given each principal's slice of the policies (Cedar's authorizer evaluates every policy it is
given, so a store that slices by principal is its best case; the whole set is printed too).
Goal (issue 13): Dockgate <= 1.0 x Cedar's per-decision cost, then 0.5 x.

Cedar has no IAM flow, so the model says in Cedar what IAM says implicitly: a repository
policy's grant to a principal allows on its own in the same account; across accounts an
identity policy allows only where the repository policy also grants the caller or its account.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from dockgate_server.engine.build import build_snapshot
from dockgate_server.engine.decide import Question, decide
from dockgate_server.engine.snapshot import Snapshot
from dockgate_server.store.model import Credentials, Fleet, Repository, Role, User

if TYPE_CHECKING:
    from dockgate_server.bench.suite import Row

__all__ = ["CedarFigures", "Model", "build_model", "compare", "main", "measure", "rows"]

PULL = ("ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability")
PUSH = ("ecr:InitiateLayerUpload", "ecr:UploadLayerPart", "ecr:CompleteLayerUpload", "ecr:PutImage")
OTHER = ("ecr:DescribeImages", "ecr:ListImages", "ecr:DescribeRepositories")
ACTIONS = PULL + PUSH + OTHER
REGION = "us-east-1"


@dataclass(frozen=True, slots=True)
class Ask:
    """One question, as Dockgate and as Cedar take it."""

    principal: str
    action: str
    resource: str
    mfa: bool | None
    cedar: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Model:
    fleet: Fleet
    asks: tuple[Ask, ...]
    schema: str
    policies: str
    sliced: dict[str, str]
    """by Cedar principal ID: its own policies and the shared ones (what a store that slices
    policies by principal hands Cedar: Cedar's authorizer itself evaluates every policy)"""
    entities: list[dict[str, Any]]
    statements: int
    """identity and repository policy statements in the fleet (Cedar has one policy each, plus
    the two that grant repository-policy principals in their own account)"""


@dataclass(frozen=True, slots=True)
class CedarFigures:
    questions: int
    statements: int
    allowed: int
    """how many of the questions both engines allow"""
    dockgate_us: float
    cedar_us: float
    """Cedar given each principal's slice of the policies: its best case"""
    cedar_whole_us: float
    """Cedar given every policy"""

    @property
    def ratio(self) -> float:
        return self.dockgate_us / self.cedar_us


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--principals", type=int, default=40)
    parser.add_argument("--repositories", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=2.0, help="per engine, in rounds")
    arguments = parser.parse_args(argv)
    model = build_model(arguments.principals, arguments.repositories)
    found = measure(model, arguments.seconds)
    print(format_figures(found))
    return 0


def format_figures(found: CedarFigures) -> str:
    return "\n".join(
        [
            f"{found.questions:,} questions ({found.allowed:,} allowed), {found.statements:,} "
            "statements; both engines gave the same answer to every question",
            f"{'engine':<44}{'us/decision':>12}{'vs cedarpy':>12}",
            f"{'dockgate decide (uncached)':<44}{found.dockgate_us:>12.1f}{found.ratio:>12.2f}",
            f"{'cedarpy is_authorized_batch, sliced':<44}{found.cedar_us:>12.1f}{1.0:>12.2f}",
            f"{'cedarpy is_authorized_batch, every policy':<44}{found.cedar_whole_us:>12.1f}"
            f"{found.cedar_whole_us / found.cedar_us:>12.2f}",
            f"goal: dockgate <= 1.0 x cedarpy ({'met' if found.ratio <= 1.0 else 'MISSED'}), "
            f"then <= 0.5 x ({'met' if found.ratio <= 0.5 else 'missed'})",
        ]
    )


def rows(seconds: float = 2.0) -> list[Row]:
    """The `make bench` row: Dockgate's uncached per-decision cost against cedarpy's, in this
    run, goal ≤ 1.0 (then 0.5)."""
    from dockgate_server.bench.suite import Row  # noqa: PLC0415 - suite imports this module

    found = measure(build_model(), seconds)
    label = f"{found.questions:,} questions, {found.statements:,} statements"
    return [
        Row(
            f"engine uncached vs cedarpy, {label} (us)",
            found.dockgate_us,
            found.cedar_us,
            "us",
            "<= 1.0",
        ),
    ]


def measure(model: Model, seconds: float) -> CedarFigures:
    """Check that both engines agree on every question, then time each, rounds interleaved so
    that a neighbour's load falls on each alike; the best round of each counts."""
    import cedarpy  # noqa: PLC0415 - a bench-only dependency

    snapshot = build_snapshot(model.fleet, Credentials(), 1)
    policies = cedarpy.PolicySet.from_str(model.policies)
    entities = cedarpy.Entities.from_json_str(json.dumps(model.entities))
    schema = cedarpy.Schema.from_str(model.schema)
    allowed = compare(model, snapshot, policies, entities, schema)
    asks = model.asks
    questions = [Question.of(a.principal, a.action, a.resource, _context(a)) for a in asks]
    cedar_requests = [a.cedar for a in asks]
    groups: dict[str, list[dict[str, Any]]] = {}
    for ask in asks:
        groups.setdefault(ask.cedar["principal"]["id"], []).append(ask.cedar)
    slices = [
        (cedarpy.PolicySet.from_str(model.sliced[principal]), requests)
        for principal, requests in groups.items()
    ]

    def dockgate() -> None:
        for question in questions:
            decide(snapshot, question)

    def cedar() -> None:
        for sliced, requests in slices:
            cedarpy.is_authorized_batch(requests, sliced, entities, schema)

    def cedar_whole() -> None:
        cedarpy.is_authorized_batch(cedar_requests, policies, entities, schema)

    runs: dict[str, Callable[[], None]] = {
        "dockgate": dockgate,
        "cedar": cedar,
        "cedar_whole": cedar_whole,
    }
    best = dict.fromkeys(runs, float("inf"))
    deadline = time.perf_counter() + 3 * seconds
    while True:
        for name, run in runs.items():
            started = time.process_time()
            run()
            best[name] = min(best[name], (time.process_time() - started) / len(asks) * 1e6)
        if time.perf_counter() > deadline:
            break
    return CedarFigures(
        len(asks),
        model.statements,
        allowed,
        best["dockgate"],
        best["cedar"],
        best["cedar_whole"],
    )


def compare(model: Model, snapshot: Snapshot, policies: Any, entities: Any, schema: Any) -> int:
    """How many questions both allow; ValueError naming the first question they disagree on."""
    import cedarpy  # noqa: PLC0415

    answers = cedarpy.is_authorized_batch([a.cedar for a in model.asks], policies, entities, schema)
    sliced = [
        cedarpy.is_authorized(
            ask.cedar,
            cedarpy.PolicySet.from_str(model.sliced[ask.cedar["principal"]["id"]]),
            entities,
            schema,
        )
        for ask in model.asks
    ]
    allowed = 0
    for ask, answer, alone in zip(model.asks, answers, sliced, strict=True):
        if alone.decision != answer.decision:
            raise ValueError(f"cedar decides {ask} differently on the principal's slice")
        if answer.diagnostics.errors:
            raise ValueError(f"cedar could not decide {ask}: {answer.diagnostics.errors}")
        ours = decide(snapshot, Question.of(ask.principal, ask.action, ask.resource, _context(ask)))
        theirs = answer.decision == cedarpy.Decision.Allow
        if ours.allowed != theirs:
            raise ValueError(
                f"the engines disagree on {ask.principal} {ask.action} {ask.resource} "
                f"mfa={ask.mfa}: dockgate {ours.outcome}, cedar {answer.decision}"
            )
        allowed += theirs
    return allowed


def _context(ask: Ask) -> dict[str, str]:
    if ask.mfa is None:
        return {}
    return {"aws:MultiFactorAuthPresent": "true" if ask.mfa else "false"}


# -- the model ----------------------------------------------------------------------------------

_SCHEMA = """
type Tags = { team: String, env: String };
entity User = { arn: String, account: String, tags: { team: String } };
entity Role = { arn: String, account: String, tags: { team: String } };
entity Repository = {
  arn: String, account: String, tags: Tags, readers: Set<String>, admins: Set<String>
};
action ACTIONS appliesTo { principal: [User, Role], resource: Repository, context: { mfa?: Bool } };
"""


def build_model(principals: int = 40, repositories: int = 200, seed: int = 13) -> Model:
    """A two-account fleet and a question mix over it, in both languages."""
    rng = random.Random(seed)
    accounts = ("111111111111", "222222222222")
    teams = [f"team-{i}" for i in range(max(2, repositories // 25))]
    users: list[User] = []
    roles: list[Role] = []
    cedar: list[str] = []
    own: dict[str, list[str]] = {}
    entities: list[dict[str, Any]] = []
    callers: list[tuple[str, dict[str, str], str]] = []
    statements = 0
    for i in range(principals):
        account = accounts[i % 2]
        team = rng.choice(teams)
        body = [_statement(n, account, teams, rng) for n in range(8)]
        statements += len(body)
        document = {"Version": "2012-10-17", "Statement": body}
        if i % 2:
            user = User(account, f"user-{i}", tags={"team": team}, inline={"inline": document})
            users.append(user)
            uid = {"type": "User", "id": user.arn}
            callers.append((user.arn, uid, team))
            arn = user.arn
        else:
            role = Role(
                account, f"role-{i}", "/ci/", tags={"team": team}, inline={"inline": document}
            )
            roles.append(role)
            uid = {"type": "Role", "id": role.arn}
            callers.append((f"arn:aws:sts::{account}:assumed-role/{role.name}/s", uid, team))
            arn = role.arn
        attrs = {"arn": arn, "account": account, "tags": {"team": team}}
        entities.append({"uid": uid, "attrs": attrs, "parents": []})
        own[uid["id"]] = [_cedar_statement(uid, s) for s in body]
        cedar += own[uid["id"]]
    grantees = [u.arn for u in users] + [r.arn for r in roles] + list(accounts)
    stored: list[Repository] = []
    for i in range(repositories):
        account = accounts[i % 2]
        team = teams[i % len(teams)]
        arn = f"arn:aws:ecr:{REGION}:{account}:repository/{team}/app-{i}"
        tags = {"team": team, "env": rng.choice(("dev", "prod"))}
        readers = sorted(set(rng.sample(grantees, k=2))) if i % 3 else []
        admins = sorted(set(rng.sample(grantees, k=1))) if i % 5 == 0 else []
        grants = [_grant(f"R{n}", who, list(PULL)) for n, who in enumerate(readers)]
        grants += [_grant(f"A{n}", who, ["ecr:*"]) for n, who in enumerate(admins)]
        statements += len(grants)
        policy = {"Version": "2012-10-17", "Statement": grants} if grants else None
        stored.append(Repository(arn, tags, policy))
        attrs = {"arn": arn, "account": account, "tags": tags, "readers": readers, "admins": admins}
        entities.append({"uid": {"type": "Repository", "id": arn}, "attrs": attrs, "parents": []})
    shared = [_SAME_ACCOUNT_READERS, _SAME_ACCOUNT_ADMINS]
    cedar += shared
    asks = []
    for _ in range(max(200, 4 * principals)):
        principal, uid, team = rng.choice(callers)
        # half the questions about the caller's own team's repositories, as in use
        mine = [r for r in stored if r.tags["team"] == team]
        repository = rng.choice(mine if mine and rng.random() < 0.5 else stored)
        action = rng.choice(ACTIONS)
        mfa = rng.choice((None, True, False))
        request: dict[str, Any] = {
            "principal": uid,
            "action": {"type": "Action", "id": action},
            "resource": {"type": "Repository", "id": repository.arn},
            "context": {} if mfa is None else {"mfa": mfa},
        }
        asks.append(Ask(principal, action, repository.arn, mfa, request))
    fleet = Fleet(accounts, tuple(users), (), tuple(roles), (), tuple(stored))
    actions = ", ".join(f'"{action}"' for action in ACTIONS)
    return Model(
        fleet,
        tuple(asks),
        _SCHEMA.replace("ACTIONS", actions),
        "\n".join(cedar),
        {principal: "\n".join(policies + shared) for principal, policies in own.items()},
        entities,
        statements,
    )


def _statement(index: int, account: str, teams: list[str], rng: random.Random) -> dict[str, Any]:
    """An identity statement: its shape by `index % 5`, as `bench.fleet` draws them."""
    kind = index % 5
    team = rng.choice(teams)
    statement: dict[str, Any] = {
        "Sid": f"S{index}",
        "Effect": "Deny" if kind == 4 else "Allow",
        "Action": rng.sample(ACTIONS, k=3),
        "Resource": f"arn:aws:ecr:*:*:repository/{team}/*",
    }
    if kind == 1:
        statement["Resource"] = f"arn:aws:ecr:{REGION}:{account}:repository/*"
        statement["Condition"] = {
            "StringEquals": {"ecr:ResourceTag/team": "${aws:PrincipalTag/team}"}
        }
    elif kind == 2:
        statement["Action"] = "ecr:Describe*"
    elif kind == 3:
        statement["Resource"] = f"arn:aws:ecr:{REGION}:*:repository/{team}*"
    elif kind == 4:
        statement["Action"] = list(PUSH)
        statement["Resource"] = "arn:aws:ecr:*:*:repository/*"
        statement["Condition"] = {
            "StringEquals": {"aws:ResourceTag/env": "prod"},
            "Bool": {"aws:MultiFactorAuthPresent": "false"},
        }
    return statement


def _grant(sid: str, who: str, actions: list[str]) -> dict[str, Any]:
    return {"Sid": sid, "Effect": "Allow", "Principal": {"AWS": who}, "Action": actions}


def _cedar_statement(uid: dict[str, str], statement: dict[str, Any]) -> str:
    """One identity statement as one Cedar policy; IAM's cross-account rule written out."""
    names = statement["Action"]
    if names == "ecr:Describe*":
        names = [action for action in ACTIONS if action.startswith("ecr:Describe")]
    actions = ", ".join(f'Action::"{name}"' for name in names)
    conditions = [f'resource.arn like "{statement["Resource"]}"']
    clause = statement.get("Condition", {})
    if "ecr:ResourceTag/team" in clause.get("StringEquals", {}):
        conditions.append("resource.tags.team == principal.tags.team")
    if "aws:ResourceTag/env" in clause.get("StringEquals", {}):
        conditions.append('resource.tags.env == "prod"')
        conditions.append("context has mfa && context.mfa == false")
    principal = f'principal == {uid["type"]}::"{uid["id"]}"'
    if statement["Effect"] == "Deny":
        return f"forbid ({principal}, action in [{actions}], resource) when {{ " + (
            " && ".join(conditions) + " };"
        )
    conditions.append(_CROSS_ACCOUNT)
    return f"permit ({principal}, action in [{actions}], resource) when {{ " + (
        " && ".join(conditions) + " };"
    )


_PULL_ACTIONS = ", ".join(f'Action::"{name}"' for name in PULL)
_CROSS_ACCOUNT = (
    "(resource.account == principal.account"
    f" || (action in [{_PULL_ACTIONS}] && resource.readers.containsAny([principal.arn, "
    "principal.account]))"
    " || resource.admins.containsAny([principal.arn, principal.account]))"
)
# IAM: a repository policy naming the caller allows on its own in the caller's account; naming
# the account delegates to identity policies, which the permits above already cover
_SAME_ACCOUNT_READERS = (
    f"permit (principal, action in [{_PULL_ACTIONS}], resource) when {{ resource.account == "
    "principal.account && resource.readers.contains(principal.arn) };"
)
_SAME_ACCOUNT_ADMINS = (
    "permit (principal, action, resource) when { resource.account == principal.account && "
    "resource.admins.contains(principal.arn) };"
)


if __name__ == "__main__":
    raise SystemExit(main())
