"""Combine the policies that bear on a request in IAM's order (semantics §7.4) into a Decision."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from dockgate_server.conditions.evaluate import evaluate_condition
from dockgate_server.engine.compile import CompiledPolicy, CompiledStatement
from dockgate_server.engine.decision import Decision, Outcome, Phase, Reason
from dockgate_server.engine.request import Request
from dockgate_server.policy.model import Effect, PolicyKind
from dockgate_server.policy.principal import CallerKind, PrincipalMatch

__all__ = ["PolicySet", "authorize"]

Level = tuple[CompiledPolicy, ...]


@dataclass(frozen=True, slots=True)
class PolicySet:
    """Every policy that bears on one request, compiled."""

    identity: tuple[CompiledPolicy, ...] = ()
    resource: CompiledPolicy | None = None
    boundary: CompiledPolicy | None = None
    session: CompiledPolicy | None = None
    service_control: tuple[Level, ...] | None = None
    """levels from the organization root to the principal's account; None: no SCPs apply"""
    resource_control: tuple[Level, ...] | None = None
    """levels for the resource's account, besides AWS's allow-all RCP; None: no RCPs apply"""
    resource_required: bool = False
    """the resource policy must allow even in the same account: a role's trust policy"""
    actions_matched: bool = False
    """every statement of `identity`, `boundary` and the SCP and RCP levels is known to cover
    the request's action (the index narrowed them by action): only its other parts are checked"""


_PHASES = {
    PolicyKind.IDENTITY: Phase.IDENTITY_POLICY,
    PolicyKind.REPOSITORY: Phase.RESOURCE_POLICY,
    PolicyKind.BOUNDARY: Phase.PERMISSIONS_BOUNDARY,
    PolicyKind.SESSION: Phase.SESSION_POLICY,
    PolicyKind.SCP: Phase.SERVICE_CONTROL_POLICY,
    PolicyKind.RCP: Phase.RESOURCE_CONTROL_POLICY,
}

_DIRECT = (PrincipalMatch.DIRECT, PrincipalMatch.WILDCARD)
_ENTITY = (PrincipalMatch.ROLE_OF_SESSION, PrincipalMatch.USER_OF_FEDERATED_SESSION)

Match = tuple[CompiledStatement, PrincipalMatch]


def authorize(request: Request, policies: PolicySet, *, revision: int | None = None) -> Decision:
    """Decide `request` against `policies` exactly as IAM would for Amazon ECR; the decision
    names `revision`, the snapshot's the policies came from."""
    caller, arn = request.caller, request.resource_arn
    if arn is not None and caller.partition and arn.partition != caller.partition:
        # IAM: partitions are separate: no policy grants a principal of one access to another's
        # resources (a service principal has no partition and is decided as usual)
        detail = (
            f"principal partition `{caller.partition}` is not the resource's partition "
            f"`{arn.partition}`: access never crosses partitions"
        )
        return Decision(
            Outcome.IMPLICITLY_DENIED, (Reason(Phase.REQUEST, detail),), _ignored(request), revision
        )
    return _Evaluation(request, policies, revision).decide()


def _ignored(request: Request) -> tuple[str, ...]:
    return tuple(
        f"context key `{key}`: defined by the store, the caller's value is ignored"
        for key in request.ignored
    )


class _Evaluation:
    """One request's pass through the flow; statement matching happens once per statement."""

    def __init__(self, request: Request, policies: PolicySet, revision: int | None) -> None:
        self.request = request
        self.policies = policies
        self.revision = revision
        self.caller = request.caller
        self.errors: list[str] = list(_ignored(request)) if request.ignored else []
        caller = self.caller
        is_service = caller.kind is CallerKind.SERVICE
        # IAM: root and service principals have no identity policies, boundary or session
        has_identity = not is_service and caller.kind is not CallerKind.ROOT
        self.has_boundary = has_identity and policies.boundary is not None
        known = policies.actions_matched
        self.identity = self.scan_all(policies.identity, known) if has_identity else []
        self.boundary = (
            self.scan(policies.boundary, known)
            if has_identity and policies.boundary is not None
            else None
        )
        self.session = self.scan(policies.session) if has_identity and policies.session else None
        # IAM: a request for `*` involves no repository, so no repository policy applies
        self.resource = (
            self.scan(policies.resource)
            if policies.resource is not None and request.resource_arn is not None
            else None
        )
        # IAM: SCPs bind IAM principals and root, not service principals or service-linked roles
        scp_applies = not is_service and not caller.service_linked
        self.scp_levels = (
            [self.scan_all(level, known) for level in policies.service_control]
            if policies.service_control is not None and scp_applies
            else None
        )
        self.rcp_levels = (
            [self.scan_all(level, known) for level in policies.resource_control]
            if policies.resource_control is not None and not caller.service_linked
            else None
        )

    # -- matching ---------------------------------------------------------------------------

    def scan(self, policy: CompiledPolicy, actions_matched: bool = False) -> list[Match]:
        """The statements of `policy` that match the request, with how they name the caller.

        The hot loop of every decision: the checks of `CompiledStatement.matches_action`,
        `matches_resource`, `principal_match` and `matches_conditions`, in that order, written
        out so that a statement costs attribute reads rather than calls and generators, and the
        action check skipped where `actions_matched` says the index already made it.
        """
        request = self.request
        service, name = request.service, request.action_name
        context, errors = request.context, self.errors
        found: list[Match] = []
        for statement in policy.statements:
            if not actions_matched:
                hit = False
                for action in statement.actions:
                    pattern = action.name
                    if action.service is None or (
                        action.service == service and pattern is not None and pattern.matches(name)
                    ):
                        hit = True
                        break
                if hit == statement.not_action:
                    continue
            resources = statement.resources
            if resources is not None:  # None: a repository policy's, covering its repository
                hit = False
                for resource in resources:
                    if resource.matches(request):
                        hit = True
                        break
                if hit == statement.not_resource:
                    continue
            if statement.principals is None:
                kind = PrincipalMatch.WILDCARD
            else:
                kind = statement.principal_match(self.caller, self.has_boundary)
                if kind is PrincipalMatch.NONE:
                    continue
            holds = True
            for condition in statement.conditions:
                if not evaluate_condition(condition, context, errors):
                    holds = False
                    break
            if holds:
                found.append((statement, kind))
        return found

    def scan_all(
        self, policies: Iterable[CompiledPolicy], actions_matched: bool = False
    ) -> list[Match]:
        return [match for policy in policies for match in self.scan(policy, actions_matched)]

    # -- the flow ---------------------------------------------------------------------------

    def decide(self) -> Decision:
        denies = [s for s, _ in self.every_match() if s.effect is Effect.DENY]
        if denies:
            return self.answer(Outcome.EXPLICITLY_DENIED, [_statement_reason(s) for s in denies])
        failed_level = self.failed_scp_level()
        if failed_level is not None:
            return self.answer(
                Outcome.IMPLICITLY_DENIED,
                [
                    Reason(
                        Phase.SERVICE_CONTROL_POLICY,
                        f"no service control policy at level {failed_level} allows the request",
                    )
                ],
            )
        # RCP gate: AWS's RCPFullAWSAccess allows at every level, and customer RCPs only deny
        if self.caller.kind is CallerKind.SERVICE:
            return self.decide_service()
        return self.decide_principal()

    def every_match(self) -> Iterable[Match]:
        groups: list[list[Match] | None] = [
            self.identity,
            self.boundary,
            self.session,
            self.resource,
            *(self.scp_levels or []),
            *(self.rcp_levels or []),
        ]
        for group in groups:
            yield from group or []

    def failed_scp_level(self) -> int | None:
        """The first SCP level with no matching Allow (IAM: every level must allow)."""
        for number, level in enumerate(self.scp_levels or []):
            if not _allows(level):
                return number
        return None

    def decide_service(self) -> Decision:
        # IAM: a service principal is allowed only by a resource policy naming it (or `*`)
        grants = [
            s for s, kind in self.resource or [] if s.effect is Effect.ALLOW and kind in _DIRECT
        ]
        if grants:
            return self.answer(Outcome.ALLOWED, [_statement_reason(s) for s in grants])
        return self.answer(
            Outcome.IMPLICITLY_DENIED,
            [
                Reason(
                    Phase.RESOURCE_POLICY,
                    "no repository policy statement allows this service principal",
                )
            ],
        )

    def decide_principal(self) -> Decision:
        caller = self.caller
        is_root = caller.kind is CallerKind.ROOT
        boundary_ok = self.boundary is None or _allows(self.boundary)
        if caller.kind is CallerKind.FEDERATED_USER:
            # IAM: a federated user's session has no identity-side permissions without one
            session_ok = self.session is not None and _allows(self.session)
        else:
            session_ok = self.session is None or _allows(self.session)
        limits_ok = boundary_ok and session_ok
        identity_allows = _allowing(self.identity)
        identity_ok = is_root or (bool(identity_allows) and limits_ok)
        resource = [(s, kind) for s, kind in self.resource or [] if s.effect is Effect.ALLOW]
        direct = [s for s, kind in resource if kind in _DIRECT]
        entity = [s for s, kind in resource if kind in _ENTITY]
        account = [s for s, kind in resource if kind is PrincipalMatch.ACCOUNT]

        def identity_reasons() -> list[Reason]:
            if is_root:
                return [Reason(Phase.ROOT_USER, "the root user is allowed in its own account")]
            return [_statement_reason(s) for s in identity_allows] + self.limit_reasons()

        if self.policies.resource_required and not self.request.is_cross_account:
            # IAM: a role is assumed only when its trust policy allows the caller; naming the
            # account delegates to the caller's identity policies, as any resource policy does
            if direct:
                return self.answer(Outcome.ALLOWED, [_statement_reason(s) for s in direct])
            if entity and limits_ok:
                return self.answer(
                    Outcome.ALLOWED, [_statement_reason(s) for s in entity] + self.limit_reasons()
                )
            if account and identity_ok:
                return self.answer(
                    Outcome.ALLOWED, identity_reasons() + [_statement_reason(s) for s in account]
                )
            reasons = self.denial_reasons(is_root, limits_ok, bool(account))
            if not resource:
                reasons.append(
                    Reason(Phase.RESOURCE_POLICY, "the trust policy does not allow the caller")
                )
            return self.answer(Outcome.IMPLICITLY_DENIED, reasons)
        if not self.request.is_cross_account:
            # IAM: a grant to the caller itself, or to `*`, is not limited by boundary or session
            if direct:
                return self.answer(Outcome.ALLOWED, [_statement_reason(s) for s in direct])
            if entity and limits_ok:
                return self.answer(
                    Outcome.ALLOWED, [_statement_reason(s) for s in entity] + self.limit_reasons()
                )
            if identity_ok:
                return self.answer(Outcome.ALLOWED, identity_reasons())
            return self.answer(
                Outcome.IMPLICITLY_DENIED, self.denial_reasons(is_root, limits_ok, True)
            )
        # IAM: cross-account needs both sides; boundaries and session policies always apply
        granted = direct + entity + account
        if identity_ok and granted:
            return self.answer(
                Outcome.ALLOWED, identity_reasons() + [_statement_reason(s) for s in granted]
            )
        return self.answer(
            Outcome.IMPLICITLY_DENIED, self.denial_reasons(is_root, limits_ok, bool(granted))
        )

    def limit_reasons(self) -> list[Reason]:
        """The boundary and session statements that let an allow through, and the SCP allows."""
        allows = _allowing(self.boundary or []) + _allowing(self.session or [])
        for level in self.scp_levels or []:
            allows += _allowing(level)[:1]
        return [_statement_reason(s) for s in allows]

    def denial_reasons(
        self, is_root: bool, limits_ok: bool, resource_side_ok: bool
    ) -> list[Reason]:
        reasons = []
        action = self.request.action
        if not is_root and not _allowing(self.identity):
            reasons.append(
                Reason(Phase.IDENTITY_POLICY, f"no identity-based policy allows `{action}`")
            )
        if self.boundary is not None and not _allows(self.boundary):
            reasons.append(
                Reason(
                    Phase.PERMISSIONS_BOUNDARY,
                    f"the permissions boundary does not allow `{action}`",
                )
            )
        if self.caller.kind is CallerKind.FEDERATED_USER and self.session is None:
            reasons.append(
                Reason(
                    Phase.SESSION_POLICY,
                    "a federated user's session has no permissions without a session policy",
                )
            )
        elif self.session is not None and not _allows(self.session):
            reasons.append(
                Reason(Phase.SESSION_POLICY, f"the session policy does not allow `{action}`")
            )
        if self.request.is_cross_account and not resource_side_ok:
            reasons.append(
                Reason(
                    Phase.RESOURCE_POLICY,
                    f"cross-account request: no repository policy of account "
                    f"`{self.request.resource_account}` allows the caller",
                )
            )
        if not reasons and not limits_ok:
            reasons.append(
                Reason(
                    Phase.IDENTITY_POLICY,
                    "the permissions boundary or session policy limits the grant",
                )
            )
        return reasons

    def answer(self, outcome: Outcome, reasons: list[Reason]) -> Decision:
        errors = tuple(dict.fromkeys(self.errors)) if self.errors else ()
        return Decision(outcome, tuple(reasons), errors, self.revision)


def _allowing(matches: Iterable[Match]) -> list[CompiledStatement]:
    return [statement for statement, _ in matches if statement.effect is Effect.ALLOW]


def _allows(matches: Iterable[Match]) -> bool:
    return any(statement.effect is Effect.ALLOW for statement, _ in matches)


def _statement_reason(statement: CompiledStatement) -> Reason:
    verb = "allows" if statement.effect is Effect.ALLOW else "denies"
    return Reason(
        _PHASES[statement.kind],
        f"statement {statement.index} of `{statement.policy}` {verb} the request",
        statement.effect,
        statement.policy,
        statement.index,
        statement.sid,
    )
