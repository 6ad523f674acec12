"""Survey one principal's access to one repository over many actions at once.

`assess` decides one pair; a what-can question asks thousands that share their principal and, a
few dozen at a time, their repository. A survey prepares the request once per repository and
keeps the statements that may match it in some context, its action aside
(`engine.partial.may_match`; the principal's identity statements first narrowed by the literal
prefix of their Resource patterns). It then groups the actions by the kept statements that cover
them. The flow reads the action only through which statements cover it, so the actions of a
group are decided alike: each group is decided once, by `authorize_partial` on its statements
alone (the others match that request in no context), and its finding is given to every action of
the group. A group whose reasons name its action (a denial's explanation) is decided per action.

Repositories share decisions too: a group's decision reads only its statements, the values of
the context keys they read, the resource's partition and account, and which policy groups are
present. Repository policies compiled from one document share their compiled parts (only the
name differs), so a group decided for one repository is reused, its reasons renamed, for every
other whose group reads the same: ten thousand repositories with a few hundred distinct
documents cost a few hundred decisions.

A `Conditional` group's example is searched for once, by `authorize` on the group's statements
(what `decide` answers for that context), trying first the example of an earlier group whose
undecided statements have the same conditions.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Sequence
from functools import lru_cache

from dockgate_server.analysis.assess import assess, example_contexts, finding_of
from dockgate_server.analysis.catalogue import ACCOUNT_ACTIONS, REPOSITORY_ACTIONS
from dockgate_server.analysis.finding import Access, Finding, PrincipalType
from dockgate_server.engine.authorize import PolicySet, authorize
from dockgate_server.engine.compile import CompiledAction, CompiledPolicy, CompiledStatement
from dockgate_server.engine.decide import Question, prepare
from dockgate_server.engine.partial import (
    PartialDecision,
    authorize_partial,
    may_match,
    statement_keys,
)
from dockgate_server.engine.request import Request, normalize_context, parse_target
from dockgate_server.engine.snapshot import Snapshot
from dockgate_server.policy.arn import Arn
from dockgate_server.policy.model import PolicyKind

__all__ = ["Surveyor"]

_CATALOGUE = REPOSITORY_ACTIONS + ACCOUNT_ACTIONS

Example = dict[str, str | tuple[str, ...]]

_IDENTITY = -1
_BOUNDARY = -2
_SESSION = -3
_RESOURCE = -4
"""slots of the policy set a kept statement came from; SCP levels are 0, 1, …; RCP levels are
1000, 1001, …"""
_RCP = 1000


class Surveyor:
    """One principal's surveys, sharing what does not depend on the repository: the principal's
    statements by Resource prefix, and the examples found."""

    def __init__(
        self,
        snapshot: Snapshot,
        principal: str,
        principal_type: PrincipalType,
        *,
        now: float,
        examples: bool = True,
    ) -> None:
        self.snapshot = snapshot
        self.principal = principal
        self.principal_type = principal_type
        self.now = now
        self.examples = examples
        self._session = snapshot.credentials.sessions.get(principal)
        self._narrowed: dict[int, _Narrowing] = {}
        self._found: dict[tuple[object, ...], Example] = {}
        self._decided: dict[object, tuple[Finding, str | None]] = {}
        """a group's decision, with the name of the repository policy it was made with, by
        everything it read (`_shared`, `_part`): the statements and values the snapshot holds
        stay alive with it, so an `id` stands for one object throughout"""
        self._keys: dict[int, tuple[str, ...]] = {}

    def survey(self, resource: str, actions: Sequence[str]) -> list[Finding]:
        """The finding of each of `actions` on `resource` (an ARN, or `*`), in their order: the
        same as `assess` gives each (an example, when one is asked for, may be another one
        `decide` allows). Raises `RequestError` for a malformed action or resource."""
        if not actions:
            return []
        if any(action not in _COVERING for action in actions):
            # an action outside the catalogue: no cover bit for it
            return [self._assess(action, resource) for action in actions]
        question = Question(self.principal, actions[0], resource)
        prepared = prepare(self.snapshot, question, self._session, now=self.now, indexed=False)
        if not isinstance(prepared, tuple):
            # an unknown or expired caller: answered before any statement is read
            return [self._assess(action, resource) for action in actions]
        request, policies = prepared
        kept = self._kept(request, policies)
        groups: dict[tuple[int, ...], list[str]] = {}
        for action in actions:
            bit = _COVERING[action]
            key = tuple(number for number, (_, _, covers) in enumerate(kept) if covers & bit)
            groups.setdefault(key, []).append(action)
        found: dict[str, Finding] = {}
        shared = self._shared(request, policies)
        name = policies.resource.name if policies.resource is not None else None
        for key, members in groups.items():
            memo = (shared, tuple(self._part(request, kept[number]) for number in key))
            earlier = self._decided.get(memo)
            if earlier is not None:
                first = _renamed(earlier[0], earlier[1], name)
            else:
                chosen = _policy_set(policies, [kept[number] for number in key])
                first = self._decide(request, chosen, members[0], resource)
                if any(members[0] in reason.detail for reason in first.reasons):
                    # a denial's explanation names the action: decided per action, not shared
                    for action in members:
                        found[action] = self._decide(request, chosen, action, resource)
                    continue
                self._decided[memo] = (first, name)
            for action in members:
                found[action] = Finding(
                    first.principal,
                    first.type,
                    action,
                    resource,
                    first.access,
                    first.revision,
                    first.reasons,
                    first.conditions,
                    first.example,
                )
        return [found[action] for action in actions]

    def _shared(self, request: Request, policies: PolicySet) -> tuple[object, ...]:
        """What a group's decision reads of the request and the policy set besides its
        statements and the keys they read: the resource's partition (a principal never reaches
        another partition) and account (cross-account needs both sides; a denial names it),
        and which groups of policies are present (an empty boundary or SCP level still limits).
        The caller is the surveyor's own."""
        arn = request.resource_arn
        return (
            arn.partition if arn is not None else None,
            request.resource_account,
            policies.boundary is None,
            policies.session is None,
            policies.resource is None,
            None if policies.service_control is None else len(policies.service_control),
            None if policies.resource_control is None else len(policies.resource_control),
            policies.resource_required,
        )

    def _part(self, request: Request, kept: tuple[int, CompiledStatement, int]) -> object:
        """What a group's decision reads of one of its statements: the statement (a repository
        policy's by its compiled parts, which the documents that repeat it share: only its
        policy's name differs, and reasons are renamed), the values of the context keys it
        reads, and the resource when a Resource pattern waits for a variable."""
        slot, statement, _ = kept
        shape: object
        if slot == _RESOURCE:
            shape = (
                statement.kind,
                statement.index,
                statement.sid,
                statement.effect,
                id(statement.actions),
                statement.not_action,
                id(statement.resources),
                statement.not_resource,
                id(statement.principals),
                statement.not_principal,
                id(statement.conditions),
            )
        else:
            shape = id(statement)
        keys = self._keys.get(id(statement))
        if keys is None:
            keys = statement_keys(statement)
            self._keys[id(statement)] = keys
        if not keys:
            return (slot, shape)
        context = request.context
        values = tuple(context.get(key) for key in keys)
        templated = any(r.template is not None for r in statement.resources or ())
        return (slot, shape, values, request.resource if templated else None)

    def _assess(self, action: str, resource: str) -> Finding:
        return assess(
            self.snapshot,
            self.principal,
            self.principal_type,
            action,
            resource,
            now=self.now,
            examples=self.examples,
        )

    def _kept(
        self, request: Request, policies: PolicySet
    ) -> list[tuple[int, CompiledStatement, int]]:
        """(slot, statement, actions it covers as bits of `_COVERING`) of every statement that
        may match `request` in some context, in the policy set's order."""
        issued = self._session is not None
        arn = request.resource_arn
        kept: list[tuple[int, CompiledStatement, int]] = []

        def keep(slot: int, statements: Iterable[CompiledStatement]) -> None:
            for statement in statements:
                if may_match(statement, request, issued=issued):
                    kept.append((slot, statement, _covers(statement.actions, statement.not_action)))

        keep(_IDENTITY, self._narrowing(_IDENTITY, policies.identity).reaching(arn))
        if policies.boundary is not None:
            keep(_BOUNDARY, self._narrowing(_BOUNDARY, (policies.boundary,)).reaching(arn))
        if policies.session is not None:
            keep(_SESSION, policies.session.statements)
        if policies.resource is not None:
            keep(_RESOURCE, policies.resource.statements)
        for number, level in enumerate(policies.service_control or ()):
            keep(number, (s for policy in level for s in policy.statements))
        for number, level in enumerate(policies.resource_control or ()):
            keep(_RCP + number, (s for policy in level for s in policy.statements))
        return kept

    def _narrowing(self, slot: int, policies: tuple[CompiledPolicy, ...]) -> _Narrowing:
        """The principal's identity (or boundary) statements by Resource prefix: the same
        policies for every repository (`prepare` unindexed hands out the whole index)."""
        narrowing = self._narrowed.get(slot)
        if narrowing is None or not narrowing.holds(policies):
            narrowing = _Narrowing(policies)
            self._narrowed[slot] = narrowing
        return narrowing

    def _decide(self, request: Request, policies: PolicySet, action: str, resource: str) -> Finding:
        target = parse_target(action, resource)
        asked = dataclasses.replace(
            request, action=action, service=target.service, action_name=target.action_name
        )
        revision = self.snapshot.revision
        issued = self._session is not None
        partial = authorize_partial(asked, policies, issued=issued, revision=revision)
        about = Finding(
            self.principal, self.principal_type, action, resource, Access.ALLOWED, revision
        )
        example: Callable[[], Example | None] | None = None
        if self.examples:

            def example() -> Example | None:
                return self._example(asked, policies, partial)

        return finding_of(partial, about, example)

    def _example(
        self, request: Request, policies: PolicySet, partial: PartialDecision
    ) -> Example | None:
        """A context the caller could send that `authorize` (so `decide`) allows."""

        def allowed(context: Example) -> bool:
            try:
                given = normalize_context(context)
            except ValueError:
                return False  # a value the request path refuses is no example
            # the keys tried are the caller's own (undecided ones): none of them is pinned
            attempt = dataclasses.replace(request, context={**request.context, **given})
            return authorize(attempt, policies).allowed

        # compiled conditions are shared between the documents that repeat them
        key = tuple(
            (found.statement.effect, id(found.statement.conditions), found.keys)
            for found in partial.undecided
        )
        earlier = self._found.get(key)
        if earlier is not None and allowed(earlier):
            return earlier
        for context in example_contexts(partial.undecided):
            if allowed(context):
                self._found[key] = context
                return context
        return None


def _renamed(found: Finding, old: str | None, new: str | None) -> Finding:
    """`found`, decided with the repository policy `old`, as decided with `new`: the same
    statements under another name (`engine.compile.renamed`)."""
    if old == new or old is None or new is None:
        return found
    quoted, renamed_to = f"`{old}`", f"`{new}`"
    reasons = tuple(
        dataclasses.replace(reason, detail=reason.detail.replace(quoted, renamed_to), policy=new)
        if reason.policy == old
        else reason
        for reason in found.reasons
    )
    conditions = tuple(
        dataclasses.replace(statement, policy=new) if statement.policy == old else statement
        for statement in found.conditions
    )
    return dataclasses.replace(found, reasons=reasons, conditions=conditions)


def _policy_set(
    policies: PolicySet, kept: Sequence[tuple[int, CompiledStatement, int]]
) -> PolicySet:
    """`policies` with only the `kept` statements, each group still present where it was (a
    boundary or an SCP level with no statement left still limits); every statement covers the
    action asked, so `actions_matched`."""
    by_slot: dict[int, list[CompiledStatement]] = {}
    for slot, statement, _ in kept:
        by_slot.setdefault(slot, []).append(statement)

    def one(slot: int, policy: CompiledPolicy | None) -> CompiledPolicy | None:
        if policy is None:
            return None
        return CompiledPolicy(policy.name, policy.kind, tuple(by_slot.get(slot, ())))

    def levels(
        given: tuple[tuple[CompiledPolicy, ...], ...] | None, base: int, kind: PolicyKind
    ) -> tuple[tuple[CompiledPolicy, ...], ...] | None:
        if given is None:
            return None
        return tuple(
            (CompiledPolicy("level", kind, tuple(by_slot.get(base + number, ()))),)
            for number in range(len(given))
        )

    identity = by_slot.get(_IDENTITY)
    return PolicySet(
        identity=(CompiledPolicy("policies", PolicyKind.IDENTITY, tuple(identity)),)
        if identity
        else (),
        resource=one(_RESOURCE, policies.resource),
        boundary=one(_BOUNDARY, policies.boundary),
        session=one(_SESSION, policies.session),
        service_control=levels(policies.service_control, 0, PolicyKind.SCP),
        resource_control=levels(policies.resource_control, _RCP, PolicyKind.RCP),
        resource_required=policies.resource_required,
        actions_matched=True,
    )


class _Narrowing:
    """Statements by the literal prefix of their Resource patterns' resource part (as
    `engine.index` narrows, but for every action at once)."""

    def __init__(self, policies: tuple[CompiledPolicy, ...]) -> None:
        self.policies = policies
        self.statements = tuple(s for policy in policies for s in policy.statements)
        always: list[int] = []
        by_prefix: dict[str, list[int]] = {}
        for ordinal, statement in enumerate(self.statements):
            prefixes = _prefixes(statement)
            if prefixes is None:
                always.append(ordinal)
            else:
                for prefix in set(prefixes):
                    by_prefix.setdefault(prefix, []).append(ordinal)
        self.always = tuple(always)
        self.by_prefix = {prefix: tuple(found) for prefix, found in by_prefix.items()}
        self.lengths = tuple(sorted({len(prefix) for prefix in by_prefix}))

    def holds(self, policies: tuple[CompiledPolicy, ...]) -> bool:
        """Whether `policies` hold the statements narrowed, the very same (a merged boundary is
        a new policy of the same statements each time)."""
        given = [s for policy in policies for s in policy.statements]
        mine = self.statements
        return len(given) == len(mine) and all(a is b for a, b in zip(given, mine, strict=True))

    def reaching(self, arn: Arn | None) -> list[CompiledStatement]:
        """The statements that may cover `arn` (None: `*`), in document order."""
        if arn is None or not self.lengths:
            return [self.statements[ordinal] for ordinal in self.always]
        resource = arn.resource
        found = set(self.always)
        for length in self.lengths:
            if length > len(resource):
                break
            found.update(self.by_prefix.get(resource[:length], ()))
        return [self.statements[ordinal] for ordinal in sorted(found)]


def _prefixes(statement: CompiledStatement) -> list[str] | None:
    """The literal prefixes of a statement's Resource patterns' resource parts; None when it
    may cover any resource (`*`, NotResource, a variable before the resource part)."""
    if statement.resources is None or statement.not_resource:
        return None
    prefixes = []
    for resource in statement.resources:
        if resource.everything:
            return None
        head = resource.text.split("${", 1)[0]
        if head.count(":") < 5:
            return None
        remainder = head.split(":", 5)[-1]
        for marker in ("*", "?"):
            cut = remainder.find(marker)
            if cut >= 0:
                remainder = remainder[:cut]
        prefixes.append(remainder)
    return prefixes


_COVERING = {action: 1 << number for number, action in enumerate(_CATALOGUE)}
"""each catalogue action's bit"""


@lru_cache(maxsize=65_536)
def _covers(actions: tuple[CompiledAction, ...], not_action: bool) -> int:
    """The catalogue actions an Action (or NotAction) list covers, as bits of `_COVERING`."""
    bits = 0
    for action, bit in _COVERING.items():
        service, name = action.lower().split(":", 1)
        if any(entry.matches(service, name) for entry in actions) != not_action:
            bits |= bit
    return bits
