"""The OpenID AuthZEN Authorization API 1.0 over HTTP: evaluation, evaluations, search, metadata.

How AuthZEN's information model maps to a Dockgate request:

- subject: `id` is the principal's ARN (or a service principal's name); `type` is `principal`
  (any kind) or the kind the ARN names: `user`, `role`, `assumed_role`, `federated_user`,
  `root`, `service`. `properties.tags` (an object of strings) are session tags: each becomes the
  context key `aws:PrincipalTag/KEY`, which counts, as with Authorize, only for a session
  Dockgate did not issue (the store defines the tags of its users, roles and sessions).
- resource: `type` is `repository`; `id` is the repository's ARN, or `*` for the actions
  without a repository (`ecr:GetAuthorizationToken`).
- action: `name` is the ECR action (`ecr:PutImage`).
- context: the request's condition keys (`aws:SourceIp`, `aws:MultiFactorAuthPresent`, ...),
  each a string or a list of strings (numbers and booleans are read as their JSON text).

A decision is `{"decision": true|false, "context": {"outcome", "revision", "reasons", ...}}`:
true only for `Allowed`. A request that cannot be decided is an HTTP error with a message (400
malformed, 401 no or a wrong bearer token, 503 past `--max-staleness`), never a decision; inside
`/evaluations`, a malformed item is `false` with `context.error` as the specification shows.

Searches answer from the access analysis, exactly: a subject (resource, action) is listed when
the evaluation of it with the same context would be true. A `Conditional` finding is decided with
the request's context to know. Results are paged (`page.token`, `page.limit`; `page.next_token`
is empty on the last page), all pages of one answer from one revision.

Who may call: with `--authzen-token-file`, every request needs `Authorization: Bearer TOKEN`;
with `serve`'s `--tls-cert`/`--tls-key` the door speaks HTTPS, and with `--tls-client-ca` it
requires a client certificate that CA signed (mTLS), as the gRPC ports do. With neither a token
nor mTLS the door listens only on a loopback address (anyone who can reach it could read the
fleet's policy).
"""

from __future__ import annotations

import argparse
import hmac
import ipaddress
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dockgate_server.addresses import parse_address
from dockgate_server.engine.decision import Decision, Outcome
from dockgate_server.engine.request import RequestError, parse_principal
from dockgate_server.frontends.door import (
    Listen,
    Option,
    Placement,
    Runtime,
    Site,
    StartupError,
    Unavailable,
    cannot_listen,
)
from dockgate_server.frontends.http import HttpError, HttpRequest, HttpResponse, HttpServer, Route
from dockgate_server.policy.principal import CallerKind
from dockgate_server.service.pages import PageError, Pages

__all__ = [
    "SUBJECT_TYPES",
    "AuthzenDoor",
    "AuthzenEndpoint",
    "AuthzenSettings",
    "authzen_routes",
]

SUBJECT_TYPES = {
    CallerKind.USER: "user",
    CallerKind.ROLE: "role",
    CallerKind.SESSION: "assumed_role",
    CallerKind.FEDERATED_USER: "federated_user",
    CallerKind.ROOT: "root",
    CallerKind.SERVICE: "service",
}
"""a subject's `type` for each kind of principal; `principal` stands for any"""
_ANY_SUBJECT = "principal"
_REPOSITORY = "repository"
_MAX_EVALUATIONS = 1000
_MAX_BODY = 1024 * 1024
_SEMANTICS = ("execute_all", "deny_on_first_deny", "permit_on_first_permit")
_JSON = (("Content-Type", "application/json"),)
_PATHS = {
    "access_evaluation_endpoint": "/access/v1/evaluation",
    "access_evaluations_endpoint": "/access/v1/evaluations",
    "search_subject_endpoint": "/access/v1/search/subject",
    "search_resource_endpoint": "/access/v1/search/resource",
    "search_action_endpoint": "/access/v1/search/action",
}


@dataclass(frozen=True, slots=True)
class AuthzenSettings:
    listen: str
    token: str | None = None
    """the bearer token every request must carry; None: no token (a loopback address only)"""


class AuthzenDoor:
    name = "authzen"
    placement = Placement.ONE_PROCESS  # the analysis is kept per process: one set of pages
    announces = ("authzen_port",)
    uses_registry = False
    options = (
        Option(
            ("--authzen-listen",),
            {
                "metavar": "HOST:PORT",
                "help": "serve the OpenID AuthZEN Authorization API 1.0 (evaluation, "
                "evaluations, subject/resource/action search, metadata) over HTTP here "
                "(default: off)",
            },
            listens=True,
        ),
        Option(
            ("--authzen-token-file",),
            {
                "metavar": "FILE",
                "help": "a file holding the bearer token every AuthZEN request must carry "
                "(`Authorization: Bearer TOKEN`); without it, --authzen-listen must be a "
                "loopback address",
            },
        ),
    )

    def configure(self, arguments: argparse.Namespace) -> AuthzenSettings | None:
        listen = arguments.authzen_listen
        token_file = arguments.authzen_token_file
        if listen is None:
            if token_file is not None:
                raise ValueError("--authzen-token-file goes with --authzen-listen")
            return None
        token = _read_token(token_file) if token_file is not None else None
        mutual = getattr(arguments, "tls_client_ca", None) is not None
        if token is None and not mutual and not _is_loopback(listen):
            raise ValueError(
                f"--authzen-listen `{listen}`: an address other than loopback needs "
                "--authzen-token-file or mTLS (--tls-client-ca): the API reveals who can do what"
            )
        return AuthzenSettings(listen, token)

    def listens(self, settings: AuthzenSettings) -> tuple[Listen, ...]:
        return (Listen("--authzen-listen", settings.listen, "authzen_port"),)

    async def open(self, settings: AuthzenSettings, site: Site) -> AuthzenEndpoint:
        address = parse_address(settings.listen, "--authzen-listen", listen=True)
        tls = site.tls.ssl_context() if site.tls is not None else None
        server = HttpServer(
            authzen_routes(site.runtime, token=settings.token, base=None, secure=tls is not None),
            address.host,
            address.port,
            name="authzen",
            tls=tls,
        )
        try:
            await server.start()
        except OSError as problem:
            raise StartupError(
                cannot_listen("--authzen-listen", settings.listen, problem)
            ) from None
        return AuthzenEndpoint(server)


class AuthzenEndpoint:
    """The API listening in one process."""

    def __init__(self, server: HttpServer) -> None:
        self.server = server
        self.ports = {"authzen_port": server.port}

    async def serve(self) -> None:
        """It answers from the moment it listens."""

    async def reflect(self, reachable: bool, fresh: bool) -> None:
        """Past `--max-staleness` each call is answered 503: nothing to turn off."""

    async def drain(self, grace: float) -> None:
        await self.server.close()


def authzen_routes(
    runtime: Runtime, *, token: str | None, base: str | None, secure: bool = False
) -> list[Route]:
    """The API's routes; `token` None: no authentication. `base` is the URL the metadata names
    (None: the `Host` the caller used, `https` when `secure`)."""
    api = _Api(runtime, token, base, "https" if secure else "http")
    post = frozenset({"POST"})
    return [
        Route(_PATHS["access_evaluation_endpoint"], api.evaluation, post, _MAX_BODY),
        Route(_PATHS["access_evaluations_endpoint"], api.evaluations, post, _MAX_BODY),
        Route(_PATHS["search_subject_endpoint"], api.search_subject, post, _MAX_BODY),
        Route(_PATHS["search_resource_endpoint"], api.search_resource, post, _MAX_BODY),
        Route(_PATHS["search_action_endpoint"], api.search_action, post, _MAX_BODY),
        Route("/.well-known/authzen-configuration", api.metadata, frozenset({"GET", "HEAD"})),
    ]


class _Invalid(Exception):  # noqa: N818 (a request the API refuses with 400)
    pass


@dataclass(frozen=True, slots=True)
class _Question:
    principal: str
    action: str
    resource: str
    context: dict[str, str | list[str]]


class _Api:
    def __init__(
        self, runtime: Runtime, token: str | None, base: str | None, scheme: str = "http"
    ) -> None:
        self.scheme = scheme
        self.runtime = runtime
        self.token = token
        self.base = base
        self.pages = Pages()

    # -- the endpoints -------------------------------------------------------------------------

    async def evaluation(self, request: HttpRequest) -> HttpResponse:
        return _answer(request, self._single(self._body(request)))

    async def evaluations(self, request: HttpRequest) -> HttpResponse:
        body = self._body(request)
        items = body.get("evaluations")
        if items is None or items == []:
            # AuthZEN: without evaluations, the request is one evaluation
            return _answer(request, self._single(body))
        if not isinstance(items, list):
            raise _bad("`evaluations` must be an array")
        if len(items) > _MAX_EVALUATIONS:
            raise _bad(f"`evaluations` holds more than {_MAX_EVALUATIONS} items")
        semantic = _semantic(body.get("options"))
        results: list[dict[str, object]] = []
        for index, item in enumerate(items):
            try:
                if not isinstance(item, dict):
                    raise _Invalid(f"`evaluations[{index}]` must be an object")
                merged = {key: item.get(key, body.get(key)) for key in _PARTS}
                result = self._evaluate(_question(merged, f"evaluations[{index}]."))
            except _Invalid as problem:
                result = {"decision": False, "context": {"error": _error(400, str(problem))}}
            except HttpError as problem:
                if problem.status != 400:
                    raise
                result = {"decision": False, "context": {"error": _error(400, problem.message)}}
            results.append(result)
            if (semantic == "deny_on_first_deny" and not result["decision"]) or (
                semantic == "permit_on_first_permit" and result["decision"]
            ):
                break
        return _answer(request, {"evaluations": results})

    async def search_subject(self, request: HttpRequest) -> HttpResponse:
        body = self._body(request)
        kind = _text(_object(body, "subject"), "type", "subject.")
        if kind != _ANY_SUBJECT and kind not in SUBJECT_TYPES.values():
            raise _bad(f"`subject.type` `{kind}`: give one of {_subject_types()}")
        action = _action(body)
        resource = _resource(body)
        context = _context(body)
        page = _page(body)

        def ask() -> tuple[int, list[dict[str, str]]]:
            revision, found = self.runtime.who_can(action, resource)
            results = []
            for finding in found:
                if finding.type.decided and self._grants(
                    finding.access, _Question(finding.principal, action, resource, context)
                ):
                    result = {"type": _type_of(finding.principal), "id": finding.principal}
                    if kind in (_ANY_SUBJECT, result["type"]):
                        results.append(result)
            return revision, results

        question = ("subject", kind, action, resource, context)
        return await self._search(request, question, page, ask)

    async def search_resource(self, request: HttpRequest) -> HttpResponse:
        body = self._body(request)
        principal, tags = _subject(body)
        resource = _object(body, "resource")
        kind = _text(resource, "type", "resource.")
        if kind != _REPOSITORY:
            raise _bad(f"`resource.type` `{kind}`: give `{_REPOSITORY}`")
        action = _action(body)
        context = {**_context(body), **tags}
        page = _page(body)

        def ask() -> tuple[int, list[dict[str, str]]]:
            revision, found = self.runtime.what_can(principal)
            results = [
                {"type": _REPOSITORY, "id": finding.repository}
                for finding in found
                if finding.action.lower() == action.lower()
                and self._grants(
                    finding.access, _Question(principal, action, finding.repository, context)
                )
            ]
            return revision, results

        question = ("resource", principal, action, context)
        return await self._search(request, question, page, ask)

    async def search_action(self, request: HttpRequest) -> HttpResponse:
        body = self._body(request)
        principal, tags = _subject(body)
        resource = _resource(body)
        context = {**_context(body), **tags}
        page = _page(body)

        def ask() -> tuple[int, list[dict[str, str]]]:
            repository = None if resource == "*" else resource
            revision, found = self.runtime.what_can(principal, repository)
            results = [
                {"name": finding.action}
                for finding in found
                if finding.repository == resource
                and self._grants(
                    finding.access, _Question(principal, finding.action, resource, context)
                )
            ]
            return revision, results

        question = ("action", principal, resource, context)
        return await self._search(request, question, page, ask)

    async def metadata(self, request: HttpRequest) -> HttpResponse:
        self._authenticate(request)
        base = self.base or f"{self.scheme}://{request.single('host') or 'localhost'}"
        document: dict[str, str] = {"policy_decision_point": base}
        document.update({name: base + path for name, path in _PATHS.items()})
        return _answer(request, document)

    # -- deciding ------------------------------------------------------------------------------

    def _single(self, body: Mapping[str, Any]) -> dict[str, object]:
        """One evaluation; a malformed one is a 400."""
        try:
            return self._evaluate(_question(body))
        except _Invalid as problem:
            raise _bad(str(problem)) from None

    def _evaluate(self, question: _Question) -> dict[str, object]:
        decision = self._decide(question)
        context: dict[str, object] = {
            "outcome": str(decision.outcome),
            "revision": decision.revision,
            "reasons": [reason.to_json() for reason in decision.reasons],
        }
        if decision.errors:
            context["errors"] = list(decision.errors)
        return {"decision": decision.outcome is Outcome.ALLOWED, "context": context}

    def _decide(self, question: _Question) -> Decision:
        try:
            return self.runtime.decide(
                question.principal, question.action, question.resource, question.context
            )
        except RequestError as problem:
            raise _Invalid(str(problem)) from None
        except Unavailable as problem:
            raise HttpError(503, f"no decision: {problem}") from None

    def _grants(self, access: str, question: _Question) -> bool:
        """Whether the evaluation of `question` is true: `Allowed` in every context, or, for a
        `Conditional` finding, in this one."""
        if access == "Allowed":
            return True
        return access == "Conditional" and self._decide(question).outcome is Outcome.ALLOWED

    async def _search(
        self,
        request: HttpRequest,
        question: tuple[object, ...],
        page: tuple[str, int],
        ask: Callable[[], tuple[int, Sequence[dict[str, str]]]],
    ) -> HttpResponse:
        token, limit = page
        try:
            revision, results, after = await self.pages.page(question, token, limit, ask)
        except PageError as problem:
            raise _bad(f"`page.{problem.field}`: {problem}") from None
        except (RequestError, _Invalid) as problem:
            raise _bad(str(problem)) from None
        except Unavailable as problem:
            raise HttpError(503, f"no answer: {problem}") from None
        body = {
            "results": list(results),
            "page": {"next_token": after, "count": len(results)},
            "context": {"revision": revision},
        }
        return _answer(request, body)

    # -- the request ---------------------------------------------------------------------------

    def _body(self, request: HttpRequest) -> dict[str, Any]:
        self._authenticate(request)
        try:
            body = request.json()
        except HttpError as problem:
            raise _bad(problem.message) from None
        if not isinstance(body, dict):
            raise _bad("the body must be a JSON object")
        return body

    def _authenticate(self, request: HttpRequest) -> None:
        if self.token is None:
            return
        given = request.single("authorization") or ""
        scheme, _, credential = given.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            credential.strip().encode(), self.token.encode()
        ):
            raise HttpError(
                401,
                "a valid bearer token is required",
                (("WWW-Authenticate", 'Bearer realm="authzen"'),),
            )


_PARTS = ("subject", "action", "resource", "context")


def _question(body: Mapping[str, Any], where: str = "") -> _Question:
    """One evaluation's question from the request (or an item merged with the defaults)."""
    try:
        principal, tags = _subject(body, where)
        return _Question(
            principal, _action(body, where), _resource(body, where), {**_context(body), **tags}
        )
    except HttpError as problem:
        raise _Invalid(problem.message) from None


def _subject(body: Mapping[str, Any], where: str = "") -> tuple[str, dict[str, str | list[str]]]:
    """The principal's ARN, checked against the subject's `type`, and its session tags."""
    subject = _object(body, "subject", where)
    kind = _text(subject, "type", f"{where}subject.")
    principal = _text(subject, "id", f"{where}subject.")
    try:
        caller = parse_principal(principal)
    except RequestError as problem:
        raise _bad(f"`{where}subject.id`: {problem}") from None
    named = SUBJECT_TYPES[caller.kind]
    if kind not in (_ANY_SUBJECT, named):
        raise _bad(f"`{where}subject.type` `{kind}`: `{principal}` is a `{named}`")
    tags: dict[str, str | list[str]] = {}
    properties = subject.get("properties")
    if properties is not None:
        if not isinstance(properties, dict):
            raise _bad(f"`{where}subject.properties` must be an object")
        given = properties.get("tags", {})
        if not isinstance(given, dict) or not all(isinstance(v, str) for v in given.values()):
            raise _bad(f"`{where}subject.properties.tags` must map tag keys to strings")
        tags = {f"aws:PrincipalTag/{key}": value for key, value in given.items()}
    return principal, tags


def _action(body: Mapping[str, Any], where: str = "") -> str:
    return _text(_object(body, "action", where), "name", f"{where}action.")


def _resource(body: Mapping[str, Any], where: str = "") -> str:
    resource = _object(body, "resource", where)
    kind = _text(resource, "type", f"{where}resource.")
    if kind != _REPOSITORY:
        raise _bad(f"`{where}resource.type` `{kind}`: give `{_REPOSITORY}`")
    return _text(resource, "id", f"{where}resource.")


def _context(body: Mapping[str, Any]) -> dict[str, str | list[str]]:
    given = body.get("context")
    if given is None:
        return {}
    if not isinstance(given, dict):
        raise _bad("`context` must be an object")
    context: dict[str, str | list[str]] = {}
    for key, value in given.items():
        if isinstance(value, list):
            context[key] = [_scalar(item, key) for item in value]
        else:
            context[key] = _scalar(value, key)
    return context


def _scalar(value: object, key: str) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool | int | float) and value is not None:
        return json.dumps(value)
    raise _bad(f"`context.{key}`: give a string, a number, a boolean or a list of them")


def _page(body: Mapping[str, Any]) -> tuple[str, int]:
    page = body.get("page")
    if page is None:
        return "", 0
    if not isinstance(page, dict):
        raise _bad("`page` must be an object")
    token = page.get("token", "")
    limit = page.get("limit", 0)
    if not isinstance(token, str):
        raise _bad("`page.token` must be a string")
    if type(limit) is not int or limit < 0:
        raise _bad("`page.limit` must be a positive integer")
    return token, limit


def _semantic(options: object) -> str:
    if options is None:
        return "execute_all"
    if not isinstance(options, dict):
        raise _bad("`options` must be an object")
    semantic = options.get("evaluations_semantic", "execute_all")
    if semantic not in _SEMANTICS:
        raise _bad(
            f"`options.evaluations_semantic` `{semantic}`: give one of {', '.join(_SEMANTICS)}"
        )
    return str(semantic)


def _object(body: Mapping[str, Any], name: str, where: str = "") -> dict[str, Any]:
    value = body.get(name)
    if not isinstance(value, dict):
        raise _bad(f"`{where}{name}` must be an object")
    return value


def _text(body: Mapping[str, Any], name: str, where: str) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value:
        raise _bad(f"`{where}{name}` must be a non-empty string")
    return value


def _type_of(principal: str) -> str:
    return SUBJECT_TYPES[parse_principal(principal).kind]


def _subject_types() -> str:
    return ", ".join([_ANY_SUBJECT, *SUBJECT_TYPES.values()])


def _bad(message: str) -> HttpError:
    return HttpError(400, message)


def _error(status: int, message: str) -> dict[str, object]:
    return {"status": status, "message": message}


def _answer(request: HttpRequest, body: object) -> HttpResponse:
    headers = list(_JSON)
    request_id = request.single("x-request-id")
    if request_id is not None:
        # AuthZEN: the PDP echoes the caller's request identifier
        headers.append(("X-Request-ID", request_id))
    return HttpResponse(200, tuple(headers), json.dumps(body).encode())


def _read_token(path: str) -> str:
    try:
        token = Path(path).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as problem:
        reason = getattr(problem, "strerror", None) or "not text"
        raise ValueError(f"--authzen-token-file `{path}`: cannot read: {reason}") from None
    if not token or any(c.isspace() for c in token):
        raise ValueError(f"--authzen-token-file `{path}`: holds no token (one line, no spaces)")
    return token


def _is_loopback(listen: str) -> bool:
    host = parse_address(listen, "--authzen-listen", listen=True).host
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
