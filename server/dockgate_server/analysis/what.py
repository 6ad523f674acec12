"""What a principal can do: every (repository, action) of ECR's catalogue it is allowed, always
or in some contexts; or the actions it has on one repository.

Narrow, then decide. A pair can be allowed only through an Allow statement covering its action:
one of the principal's identity statements (the repositories its Resource patterns reach, looked
up by their literal prefix), or one of a repository policy's (the repositories whose policy names
the principal, its role, its user, its account or `*`). A repository of another account needs
both, so it is a candidate only when its policy names the principal. The root user, which needs
no identity statement in its own account, has every repository of it as a candidate.

Each candidate repository is then surveyed (`analysis.survey`): its candidate actions decided
exactly, in groups that read the same statements, each group once for every repository whose
policies and keys read the same.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache

from dockgate_server.analysis.catalogue import ACCOUNT_ACTIONS, REPOSITORY_ACTIONS
from dockgate_server.analysis.directory import Directory, directory_of
from dockgate_server.analysis.finding import Access, Finding, PrincipalType
from dockgate_server.analysis.survey import Surveyor
from dockgate_server.engine.compile import CompiledAction, CompiledStatement
from dockgate_server.engine.decide import principal_view
from dockgate_server.engine.request import parse_principal, parse_target
from dockgate_server.engine.snapshot import PrincipalView, Snapshot
from dockgate_server.policy.model import Effect
from dockgate_server.policy.principal import Caller, CallerKind

__all__ = ["what_can"]

_TYPES = {
    CallerKind.USER: PrincipalType.USER,
    CallerKind.ROLE: PrincipalType.ROLE,
    CallerKind.SESSION: PrincipalType.SESSION,
    CallerKind.FEDERATED_USER: PrincipalType.FEDERATED_USER,
    CallerKind.ROOT: PrincipalType.ROOT,
    CallerKind.SERVICE: PrincipalType.SERVICE,
}


def what_can(
    snapshot: Snapshot,
    principal: str,
    repository: str | None = None,
    *,
    now: float | None = None,
    include_denied: bool = False,
    examples: bool = True,
) -> list[Finding]:
    """What `principal` may do, ordered by repository then action (`*` first: the actions
    without a repository); only on `repository` (an ARN) when given.

    Raises `RequestError` for a malformed principal or repository."""
    caller = parse_principal(principal)
    if repository is not None:
        parse_target(REPOSITORY_ACTIONS[0], repository)
    directory = directory_of(snapshot, now)
    known = directory.principal(principal)
    principal_type = known.type if known is not None else _TYPES[caller.kind]
    session = snapshot.credentials.sessions.get(principal)
    view = principal_view(snapshot, caller, session) if caller.kind is not CallerKind.ROOT else None
    pairs = _candidates(directory, caller, view)
    if repository is not None:
        pairs = {repository: pairs.get(repository, set())}
    surveyor = Surveyor(snapshot, principal, principal_type, now=directory.now, examples=examples)
    findings = []
    for resource in sorted(pairs):
        for found in surveyor.survey(resource, sorted(pairs[resource])):
            if found.access.grants or (include_denied and found.access is Access.EXPLICITLY_DENIED):
                findings.append(found)
    return findings


def _candidates(
    directory: Directory, caller: Caller, view: PrincipalView | None
) -> dict[str, set[str]]:
    """Repository ARN (or `*`) → the actions that some Allow statement could grant there."""
    pairs: dict[str, set[str]] = {}
    own = caller.account
    naming = directory.repositories_naming(_names(caller, view))

    def add(repositories: Iterable[str], actions: Iterable[str]) -> None:
        actions = set(actions)
        if actions:
            for arn in repositories:
                pairs.setdefault(arn, set()).update(actions)

    if caller.kind is CallerKind.ROOT:
        # IAM: root may do everything in its own account unless denied
        add(directory.repositories_by_account.get(own or "", ()), REPOSITORY_ACTIONS)
        add(["*"], ACCOUNT_ACTIONS)
    elif view is not None and caller.kind is not CallerKind.SERVICE:
        for policy in view.identity.all():
            for statement in policy.statements:
                if statement.effect is not Effect.ALLOW:
                    continue
                covered = _covered(statement.actions, statement.not_action, REPOSITORY_ACTIONS)
                if covered:
                    # IAM: another account's repository needs its policy to name the caller too
                    add(
                        (
                            arn
                            for arn in _reached(directory, statement)
                            if _account_of(arn) == own or arn in naming
                        ),
                        covered,
                    )
                if _covers_everything(statement):
                    add(["*"], _covered(statement.actions, statement.not_action, ACCOUNT_ACTIONS))
    snapshot = directory.snapshot
    for arn in naming:
        # a grant naming the caller (or `*`) allows in its own account without identity policies,
        # and a root user or a service has none in any account
        if _account_of(arn) != own and caller.kind not in (CallerKind.ROOT, CallerKind.SERVICE):
            continue
        repository = snapshot.repositories[arn]
        assert repository.policy is not None
        for statement in repository.policy.statements:
            if statement.effect is Effect.ALLOW:
                add([arn], _covered(statement.actions, statement.not_action, REPOSITORY_ACTIONS))
    return pairs


def _names(caller: Caller, view: PrincipalView | None) -> list[str]:
    """The keys of `Directory.named` that a repository policy naming this caller files under."""
    if caller.kind is CallerKind.SERVICE:
        return ["*", caller.name]
    names = ["*", caller.account or "", caller.arn]
    if caller.kind in (CallerKind.SESSION, CallerKind.ROLE):
        names.append(f"role/{caller.account}/{caller.name.lower()}")
    if caller.kind is CallerKind.FEDERATED_USER and view is not None:
        names.append(view.arn)  # IAM: a grant to the federating user reaches its sessions
    return names


def _reached(directory: Directory, statement: CompiledStatement) -> Iterable[str]:
    """The repositories a statement's Resource may cover, by each pattern's literal prefix."""
    if _covers_everything(statement):
        return (arn for _, arn in directory.by_resource)
    found: dict[str, None] = {}
    for resource in statement.resources or ():
        if resource.never or resource.service != "ecr":
            continue
        found.update(dict.fromkeys(directory.repositories_from(_prefix(resource.text))))
    return found


def _covers_everything(statement: CompiledStatement) -> bool:
    """Whether the Resource covers `*` (and so every repository): `*`, NotResource, or none."""
    resources = statement.resources
    return resources is None or statement.not_resource or any(r.everything for r in resources)


def _prefix(pattern: str) -> str:
    """The literal start of an ARN pattern's resource part, before any wildcard or variable."""
    head = pattern.split("${", 1)[0]
    if head.count(":") < 5:
        return ""  # a variable before the resource part: it may hold anything
    remainder = head.split(":", 5)[-1]
    for marker in ("*", "?"):
        cut = remainder.find(marker)
        if cut >= 0:
            remainder = remainder[:cut]
    return remainder


@lru_cache(maxsize=65_536)
def _covered(
    actions: tuple[CompiledAction, ...], not_action: bool, catalogue: tuple[str, ...]
) -> frozenset[str]:
    """The actions of `catalogue` an Action (or NotAction) list covers."""
    covered = set()
    for action in catalogue:
        service, name = action.lower().split(":", 1)
        hit = any(entry.matches(service, name) for entry in actions)
        if hit != not_action:
            covered.add(action)
    return frozenset(covered)


def _account_of(arn: str) -> str:
    parts = arn.split(":", 5)
    return parts[4] if len(parts) == 6 else ""
