"""Who can perform an action on a repository: every principal of the store allowed, always or in
some contexts, and the repository policy's grants to principals the store does not list.

Narrow, then decide: the candidates are the users and roles whose index holds an Allow statement
for the action and the repository (and the sessions acting for them), the principals the
repository policy's Allow statements name (every principal of the repository's account for
`*`), and the root users that can reach it; each is then decided exactly (`analysis.assess`).
A principal outside those can match no Allow statement, so `decide` could not allow it.
"""

from __future__ import annotations

from collections.abc import Iterable

from dockgate_server.analysis.assess import assess
from dockgate_server.analysis.directory import Directory, Principal, directory_of
from dockgate_server.analysis.finding import Access, ConditionalStatement, Finding, PrincipalType
from dockgate_server.engine.compile import CompiledStatement
from dockgate_server.engine.decision import Phase, Reason
from dockgate_server.engine.request import Request, build_request
from dockgate_server.engine.snapshot import PrincipalView, Snapshot
from dockgate_server.policy.model import Effect
from dockgate_server.policy.principal import EntryKind, PrincipalEntry

__all__ = ["who_can"]

PROBE_PRINCIPAL = "arn:aws:iam::000000000000:root"
"""the caller of the request an index is asked with: `candidates` reads only its action and
resource"""


def who_can(
    snapshot: Snapshot,
    action: str,
    repository: str,
    *,
    now: float | None = None,
    include_denied: bool = False,
    examples: bool = True,
) -> list[Finding]:
    """Who may perform `action` on `repository` (an ARN, or `*` for an action without one),
    ordered by principal: `Allowed` and `Conditional` findings (and `ExplicitlyDenied` ones
    with `include_denied`), then the grants of the repository policy shown as written.

    Raises `RequestError` for a malformed action or repository."""
    probe = build_request(PROBE_PRINCIPAL, action, repository)
    directory = directory_of(snapshot, now)
    candidates, grants = _candidates(directory, probe)
    findings = list(grants)
    for principal in candidates.values():
        found = assess(
            snapshot,
            principal.arn,
            principal.type,
            action,
            repository,
            now=directory.now,
            examples=examples,
        )
        if found.access.grants or (include_denied and found.access is Access.EXPLICITLY_DENIED):
            findings.append(found)
    findings.sort(key=lambda found: (found.principal, str(found.type)))
    return findings


def _candidates(directory: Directory, probe: Request) -> tuple[dict[str, Principal], list[Finding]]:
    candidates: dict[str, Principal] = {}

    def add(principal: Principal) -> None:
        candidates[principal.arn] = principal
        if principal.view is not None and principal.type in (
            PrincipalType.USER,
            PrincipalType.ROLE,
        ):
            for session in directory.acting_for.get(principal.view.key, ()):
                candidates[session.arn] = session

    for principal in directory.identities:
        assert principal.view is not None
        if _identity_allows(principal.view, probe):
            add(principal)
    arn = probe.resource_arn
    if arn is None:
        # IAM: an action without a resource stays in the caller's account, where root may do all
        for principal in directory.roots:
            add(principal)
        return candidates, []
    root = directory.principal(f"arn:{arn.partition}:iam::{arn.account}:root")
    if root is not None:
        add(root)
    repository = directory.snapshot.repositories.get(probe.resource)
    grants: dict[tuple[str, str, int], Finding] = {}
    if repository is None or repository.policy is None:
        return candidates, []
    for statement in repository.policy.statements:
        if statement.effect is not Effect.ALLOW or not statement.matches_action(probe):
            continue
        if statement.principals is None or statement.not_principal:
            entries: Iterable[PrincipalEntry] = (PrincipalEntry(EntryKind.WILDCARD, "*"),)
        else:
            entries = statement.principals
        for entry in entries:
            for principal in _named(directory, entry, arn.account):
                add(principal)
            shown = _shown(directory, entry)
            if shown is not None:
                key = (entry.text, statement.policy, statement.index)
                grants[key] = _grant(directory.snapshot, entry.text, shown, probe, statement)
    return candidates, list(grants.values())


def _identity_allows(view: PrincipalView, probe: Request) -> bool:
    return any(
        statement.effect is Effect.ALLOW
        for policy in view.identity.candidates(probe)
        for statement in policy.statements
    )


def _named(directory: Directory, entry: PrincipalEntry, account: str) -> list[Principal]:
    """The principals of the store a repository policy's entry can name."""
    kind = entry.kind
    snapshot = directory.snapshot
    if kind is EntryKind.WILDCARD:
        # IAM: in its own account a grant to `*` needs nothing from the caller's policies; in
        # another, the caller's identity policies must allow too, so the index found them
        # (and root users and service principals of any account: they have no identity
        # policies to allow first)
        return [*directory.by_account.get(account, ()), *directory.roots, *directory.services]
    if kind is EntryKind.ACCOUNT:
        root = next(
            (
                p
                for p in directory.by_account.get(entry.account, ())
                if p.type is PrincipalType.ROOT
            ),
            None,
        )
        return [] if root is None else [root]
    if kind is EntryKind.ROLE:
        view = snapshot.roles.get(f"role/{entry.account}/{entry.name.lower()}")
        found = directory.principal(view.arn) if view is not None else None
        return [] if found is None else [found]
    if kind is EntryKind.SERVICE:
        found = directory.principal(entry.name)
        return [] if found is None else [found]
    found = directory.principal(entry.text)  # a user, or a session Dockgate issued
    return [] if found is None else [found]


def _shown(directory: Directory, entry: PrincipalEntry) -> PrincipalType | None:
    """How a grant is shown as written: to anyone, to an account, or to a principal the store
    does not hold (None: a principal of the store, decided instead)."""
    if entry.kind is EntryKind.WILDCARD:
        return PrincipalType.ANY_PRINCIPAL
    if entry.kind is EntryKind.ACCOUNT:
        return PrincipalType.ACCOUNT
    if entry.kind is EntryKind.NOTHING or entry.kind is EntryKind.SERVICE:
        return None
    if entry.kind is EntryKind.ROLE:
        stored = f"role/{entry.account}/{entry.name.lower()}" in directory.snapshot.roles
    else:  # a user, or a session: one Dockgate did not issue is not a principal of the store
        stored = directory.principal(entry.text) is not None
    return None if stored else PrincipalType.EXTERNAL


def _grant(
    snapshot: Snapshot,
    principal: str,
    shown: PrincipalType,
    probe: Request,
    statement: CompiledStatement,
) -> Finding:
    """A repository-policy grant as written: `Conditional` when the statement has conditions
    (they read who the caller is, or what it sends)."""
    reason = Reason(
        Phase.RESOURCE_POLICY,
        f"statement {statement.index} of `{statement.policy}` allows `{principal}`",
        Effect.ALLOW,
        statement.policy,
        statement.index,
        statement.sid,
    )
    conditions: tuple[ConditionalStatement, ...] = ()
    if statement.conditions:
        keys = tuple(dict.fromkeys(c.clause.key.lower() for c in statement.conditions))
        conditions = (ConditionalStatement.of(statement, keys),)
    return Finding(
        principal,
        shown,
        probe.action,
        probe.resource,
        Access.CONDITIONAL if conditions else Access.ALLOWED,
        snapshot.revision,
        (reason,),
        conditions,
    )
