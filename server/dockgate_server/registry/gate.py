"""The registry gate: authenticate a registry call, map it to ECR actions, decide, and answer."""

from __future__ import annotations

import base64
import copy
import ipaddress
import json
import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network
from urllib.parse import parse_qs, urlencode, urlsplit

from dockgate_server.credentials.login import Login, LoginRejected, Rejection
from dockgate_server.engine.decision import Decision, Outcome, Phase
from dockgate_server.policy.model import Effect
from dockgate_server.registry.context import (
    ClientFacts,
    ContextError,
    client_context,
    parse_address,
)
from dockgate_server.registry.routes import (
    Check,
    Registry,
    RouteError,
    RouteKind,
    host_key,
    host_without_port,
    route_request,
    strip_mount,
)

__all__ = [
    "CATALOG_MAX",
    "CHECKS_HEADER",
    "Authenticate",
    "Context",
    "Decide",
    "DecisionUnavailable",
    "GateAnswer",
    "GateConfig",
    "GateRequest",
    "ListRepositories",
    "Network",
    "RegistryGate",
    "parse_networks",
]

log = logging.getLogger("dockgate.registry")

Network = IPv4Network | IPv6Network
Context = Mapping[str, str | Sequence[str]]
Authenticate = Callable[[str], Login]
"""the password of `AWS:<password>` → the login it verifies as; raises `LoginRejected`"""
Decide = Callable[[str, str, str, Context], Decision]
"""(principal ARN, action, resource ARN, context) → the decision"""
ListRepositories = Callable[[], Iterable[str]]
"""the repository ARNs Dockgate knows, for the catalog"""

CHECKS_HEADER = "X-Dockgate-Checks"
CATALOG_MAX = 1000
"""Repositories in one catalog page at most, as distribution's default `catalog.maxentries`."""
_CHECKS_SHOWN = 50
"""Checks named in the debug header at most: a catalog can make thousands."""
_DESCRIBE = "ecr:DescribeRepositories"
_JSON = ("Content-Type", "application/json; charset=utf-8")
_API_VERSION = ("Docker-Distribution-API-Version", "registry/2.0")
_POLICY_TYPES = {
    Phase.IDENTITY_POLICY: "an identity-based policy",
    Phase.RESOURCE_POLICY: "a resource-based policy",
    Phase.PERMISSIONS_BOUNDARY: "a permissions boundary",
    Phase.SESSION_POLICY: "a session policy",
    Phase.SERVICE_CONTROL_POLICY: "a service control policy",
    Phase.RESOURCE_CONTROL_POLICY: "a resource control policy",
}
_REJECTIONS = {
    Rejection.EXPIRED: "your authorization token has expired",
    Rejection.REVOKED: "your authorization token has been revoked",
}


@dataclass(frozen=True, slots=True)
class GateConfig:
    registry: Registry | None = None
    """the one registry every call is for, whatever its Host header says"""
    hosts: Mapping[str, Registry] = field(default_factory=dict)
    """without `registry`: the registry of each Host (`host_key` spelling, a port optional);
    a call to any other host is refused. With neither, every call is refused: a Host header
    never names the account by itself (a client could name any account's registry)"""
    trusted_proxies: tuple[Network, ...] = ()
    """only a peer in these may say who the client is (X-Forwarded-For)"""
    secure_transport: bool = False
    """what `aws:SecureTransport` says when the front door does not tell"""


@dataclass(frozen=True, slots=True)
class GateRequest:
    method: str
    target: str
    """the raw path and query, exactly as the registry will see them"""
    host: str
    authorization: str | None
    peer: str
    """the address of whoever connected to the front door"""
    forwarded_for: str | None = None
    secure: bool | None = None
    """whether the client's connection was TLS, when the front door knows"""


@dataclass(frozen=True, slots=True)
class GateAnswer:
    status: int
    headers: tuple[tuple[str, str], ...]
    """for the client: WWW-Authenticate, Content-Type, X-Dockgate-Checks, Link"""
    body: bytes
    """a registry error body unless 200; the catalog on a catalog answer"""
    upstream_target: str
    """on 200: what to send upstream (the target, or without `mount` and `from`); else empty"""
    principal: str | None = None
    answered_here: bool = False
    """the gate produced the final response (the catalog): the proxy must not forward the call"""


class DecisionUnavailable(Exception):  # noqa: N818 (what the decider says, not a failure here)
    """Raised by a `Decide` that cannot decide now (its policy is too stale to trust): the call is
    answered 503, never allowed, and no traceback is logged for an expected condition."""


class _Stop(Exception):  # noqa: N818 (control flow: an answer decided early)
    def __init__(self, answer: GateAnswer) -> None:
        super().__init__(answer.status)
        self.answer = answer


class RegistryGate:
    """Thread-safe and free of I/O: the front doors (Envoy, HTTP) translate to and from it."""

    def __init__(
        self,
        authenticate: Authenticate,
        decide: Decide,
        repositories: ListRepositories,
        config: GateConfig,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self._authenticate = authenticate
        self._decide = decide
        self._repositories = repositories
        self._clock = clock

    def with_trusted_proxies(self, proxies: Iterable[Network]) -> RegistryGate:
        """The same gate trusting other proxies: each front door has its own peers."""
        other = copy.copy(self)  # keeps a subclass's behaviour too
        other.config = replace(self.config, trusted_proxies=tuple(proxies))
        return other

    def trusts(self, address: str) -> bool:
        """Whether a peer at `address` is a trusted proxy (so its forwarding headers count)."""
        parsed = parse_address(address)
        return parsed is not None and self._trusted(parsed)

    def check(self, request: GateRequest) -> GateAnswer:
        checks: list[str] = []
        try:
            return self._check(request, checks)
        except _Stop as stop:
            return stop.answer
        except DecisionUnavailable as problem:
            return _error(503, "UNAVAILABLE", str(problem), checks=checks)
        except Exception:
            # fail closed; the message names no part of the request (it holds credentials)
            log.exception("registry gate failed: the call is denied")
            return _error(403, "DENIED", "the call could not be authorized", checks=checks)

    # -- the steps, in the order `check` takes them ------------------------------------------

    def _check(self, request: GateRequest, checks: list[str]) -> GateAnswer:
        now = self._clock()
        registry = self._registry(request.host)
        principal = self._login(request.authorization, registry, now)
        try:
            route = route_request(request.method, request.target, registry)
        except RouteError as error:
            raise _Stop(
                _error(error.status, error.code, str(error), checks=checks, principal=principal)
            ) from None
        context = self._context(request, registry, now, principal)
        for check in route.checks:
            decision = self._decide_check(principal, check, context, checks)
            if not decision.allowed:
                raise _Stop(_denied(principal, check, decision, checks))
        if route.kind is RouteKind.CATALOG:
            return self._catalog(principal, registry, request.target, context, checks)
        upstream = request.target
        if route.mount_requested and not self._mount_allowed(
            principal, route.mount_checks, context, checks
        ):
            # ECR: a mount that cannot happen opens a normal upload session (202), never a 403
            upstream = strip_mount(request.target)
        return GateAnswer(200, _debug(checks), b"", upstream, principal)

    def _registry(self, host: str) -> Registry:
        """The configured registry, or the one the host map names; any other host is refused."""
        if self.config.registry is not None:
            return self.config.registry
        key = host_key(host)
        hosts = self.config.hosts
        found = None if key is None else hosts.get(key) or hosts.get(host_without_port(key))
        if found is None:
            # before any credential is read: no login can make an unknown host a registry
            shown = "".join(c if " " <= c <= "~" else "?" for c in host[:200])
            raise _Stop(_error(403, "DENIED", f"host `{shown}` is not a registry served here"))
        return found

    def _login(self, authorization: str | None, registry: Registry, now: float) -> str:
        """The principal the Basic credentials stand for, or a 401 with the challenge."""
        if not authorization:
            raise _Stop(_unauthorized(self._realm(registry), "authentication required"))
        scheme, _, encoded = authorization.strip().partition(" ")
        if scheme.lower() != "basic":
            raise _Stop(_unauthorized(self._realm(registry), "basic credentials are required"))
        try:
            if not encoded.strip():
                raise ValueError("no credentials")
            decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
        except ValueError:  # binascii.Error and UnicodeDecodeError both are
            raise _Stop(
                _unauthorized(self._realm(registry), "malformed basic credentials")
            ) from None
        user, colon, password = decoded.partition(":")
        if not colon or user != "AWS":
            raise _Stop(_unauthorized(self._realm(registry), "the user name must be `AWS`"))
        if not password:
            raise _Stop(_unauthorized(self._realm(registry), "no authorization token"))
        try:
            login = self._authenticate(password)
        except LoginRejected as rejected:
            message = _REJECTIONS.get(rejected.rejection, "your authorization token is invalid")
            detail = {"rejection": str(rejected.rejection)}
            raise _Stop(_unauthorized(self._realm(registry), message, detail)) from None
        if login.expires_at <= now:  # the verifier checks too; a token is never good past this
            raise _Stop(
                _unauthorized(
                    self._realm(registry),
                    _REJECTIONS[Rejection.EXPIRED],
                    {"rejection": str(Rejection.EXPIRED)},
                )
            )
        return login.principal

    def _realm(self, registry: Registry) -> str:
        domain = "amazonaws.com.cn" if registry.partition == "aws-cn" else "amazonaws.com"
        host = f"{registry.account}.dkr.ecr.{registry.region}.{domain}"
        return f'Basic realm="https://{host}/",service="ecr.amazonaws.com"'

    def _context(
        self, request: GateRequest, registry: Registry, now: float, principal: str
    ) -> dict[str, str]:
        try:
            return client_context(
                ClientFacts(request.peer, request.forwarded_for, request.secure),
                registry,
                now,
                trusted_proxies=self.config.trusted_proxies,
                secure_transport=self.config.secure_transport,
            )
        except ContextError as problem:
            raise _Stop(_error(403, "DENIED", str(problem), principal=principal)) from None

    def _trusted(self, address: IPv4Address | IPv6Address) -> bool:
        return any(address in network for network in self.config.trusted_proxies)

    def _decide_check(
        self, principal: str, check: Check, context: Context, checks: list[str]
    ) -> Decision:
        label = f"{check.action} {_short_resource(check.resource)}"
        try:
            decision = self._decide(principal, check.action, check.resource, context)
        except Exception:
            checks.append(f"{label}=Error")
            raise
        checks.append(f"{label}={decision.outcome}")
        return decision

    def _mount_allowed(
        self, principal: str, mount_checks: Sequence[Check], context: Context, checks: list[str]
    ) -> bool:
        if not mount_checks:  # no valid source repository: nothing to mount from
            return False
        for check in mount_checks:
            if not self._decide_check(principal, check, context, checks).allowed:
                return False
        return True

    def _catalog(
        self, principal: str, registry: Registry, target: str, context: Context, checks: list[str]
    ) -> GateAnswer:
        """This registry's repositories the caller may describe, one page as distribution pages."""
        query = parse_qs(urlsplit(target).query, keep_blank_values=True)
        size = CATALOG_MAX
        if "n" in query:
            text = query["n"][0]
            if not (text.isascii() and text.isdigit()):
                raise _Stop(
                    _error(
                        400,
                        "PAGINATION_NUMBER_INVALID",
                        f"`n` must be a non-negative integer, not `{text[:32]}`",
                        checks=checks,
                        principal=principal,
                    )
                )
            size = min(int(text), CATALOG_MAX)
        last = query.get("last", [""])[0]
        prefix = f"arn:{registry.partition}:ecr:{registry.region}:{registry.account}:repository/"
        arns = {arn[len(prefix) :]: arn for arn in self._repositories() if arn.startswith(prefix)}
        shown: list[str] = []
        truncated = False
        for name in sorted(arns) if size else ():
            if last and name <= last:
                continue
            if not self._decide_check(
                principal, Check(_DESCRIBE, arns[name]), context, checks
            ).allowed:
                continue
            if len(shown) == size:  # one more is allowed: there is a next page
                truncated = True
                break
            shown.append(name)
        headers = [_JSON, _API_VERSION, *_debug(checks)]
        if truncated:
            following = urlencode({"last": shown[-1], "n": size})
            headers.append(("Link", f'</v2/_catalog?{following}>; rel="next"'))
        body = json.dumps({"repositories": shown}).encode()
        return GateAnswer(200, tuple(headers), body, "", principal, answered_here=True)


def parse_networks(texts: Iterable[str]) -> tuple[Network, ...]:
    """Networks from their text (`10.0.0.0/8`, `::1`); a plain address is a one-address network."""
    networks = []
    for text in texts:
        try:
            networks.append(ipaddress.ip_network(text.strip(), strict=False))
        except ValueError:
            raise ValueError(f"trusted proxy `{text}` is not an IP address or network") from None
    return tuple(networks)


# -- answers --------------------------------------------------------------------------------------


def _unauthorized(
    challenge: str, message: str, detail: Mapping[str, str] | None = None
) -> GateAnswer:
    answer = _error(401, "UNAUTHORIZED", message, detail=detail)
    return replace(answer, headers=(("WWW-Authenticate", challenge), *answer.headers))


def _denied(principal: str, check: Check, decision: Decision, checks: list[str]) -> GateAnswer:
    message = (
        f"User: {principal} is not authorized to perform: {check.action} "
        f"on resource: {check.resource} {_clause(check.action, decision)}"
    )
    detail = {"action": check.action, "resource": check.resource, "outcome": str(decision.outcome)}
    return _error(403, "DENIED", message, detail=detail, checks=checks, principal=principal)


def _clause(action: str, decision: Decision) -> str:
    """Why, as AWS words it: the policy type that denied, or the one that did not allow."""
    if decision.outcome is Outcome.EXPLICITLY_DENIED:
        for reason in decision.reasons:
            if reason.effect is Effect.DENY and reason.phase in _POLICY_TYPES:
                return f"with an explicit deny in {_POLICY_TYPES[reason.phase]}"
        return "with an explicit deny"
    for reason in decision.reasons:
        if reason.phase in _POLICY_TYPES:
            kind = _POLICY_TYPES[reason.phase].split(" ", 1)[1]
            return f"because no {kind} allows the {action} action"
        if reason.phase is Phase.REQUEST:  # an unknown caller, an expired session: say which
            return f"because {reason.detail}"
    return f"because no identity-based policy allows the {action} action"


def _error(
    status: int,
    code: str,
    message: str,
    *,
    detail: Mapping[str, str] | None = None,
    checks: Sequence[str] = (),
    principal: str | None = None,
) -> GateAnswer:
    body = json.dumps({"errors": [{"code": code, "message": message, "detail": detail}]})
    headers = (_JSON, _API_VERSION, *_debug(checks))
    return GateAnswer(status, headers, body.encode(), "", principal)


def _debug(checks: Sequence[str]) -> tuple[tuple[str, str], ...]:
    named = ", ".join(checks[:_CHECKS_SHOWN]) or "none"
    if len(checks) > _CHECKS_SHOWN:
        named += f", +{len(checks) - _CHECKS_SHOWN} more"
    # a header value must stay printable ASCII whatever a resource name holds
    safe = "".join(c if " " <= c <= "~" else "?" for c in named)
    return ((CHECKS_HEADER, safe),)


# -- small parsers --------------------------------------------------------------------------------


def _short_resource(resource: str) -> str:
    """`repository/app` for its ARN: the account and Region are the registry's own."""
    parts = resource.split(":", 5)
    return parts[5] if resource.startswith("arn:") and len(parts) == 6 else resource
