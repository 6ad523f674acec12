"""Requested scopes → the access a token may carry, each action granted only as IAM allows the
ECR actions behind it.

`pull` needs `ecr:BatchGetImage` and `ecr:GetDownloadUrlForLayer`; `push` the five upload
actions; `delete` `ecr:BatchDeleteImage`; `*` all of them. A caller gets the requested actions it
is allowed (the specification: a partial grant is not an error), nothing for a repository it may
not touch. `registry:catalog:*` is granted only to a caller allowed `ecr:DescribeRepositories` on
every repository of the registry, since the registry lists its whole catalog to any token that
carries it. A decision that fails raises: the caller gets no token at all, never a grant.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from dockgate_server.policy.repository_name import is_repository_name
from dockgate_server.registry.gate import Context, Decide, ListRepositories
from dockgate_server.registry.routes import Registry
from dockgate_server.registry.token.scope import Scope

__all__ = [
    "CATALOG_ACTION",
    "SCOPE_ACTIONS",
    "Access",
    "grant_access",
]

_PULL = ("ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer")
_PUSH = (
    "ecr:InitiateLayerUpload",
    "ecr:UploadLayerPart",
    "ecr:CompleteLayerUpload",
    "ecr:PutImage",
    "ecr:BatchCheckLayerAvailability",
)
_DELETE = ("ecr:BatchDeleteImage",)
SCOPE_ACTIONS: Mapping[str, tuple[str, ...]] = {
    "pull": _PULL,
    "push": _PUSH,
    "delete": _DELETE,
    "*": (*_PULL, *_PUSH, *_DELETE),
}
"""a repository scope's action → the ECR actions that must all be Allowed to grant it"""
_CONCRETE = ("pull", "push", "delete")
"""what `*` falls back to, action by action, when not all of it is allowed"""
CATALOG_ACTION = "ecr:DescribeRepositories"
_REPOSITORY = "repository"


@dataclass(frozen=True, slots=True)
class Access:
    """One entry of a token's `access` claim."""

    type: str
    name: str
    actions: tuple[str, ...]

    def claim(self) -> dict[str, Any]:
        return {"type": self.type, "name": self.name, "actions": list(self.actions)}

    def scopes(self) -> list[str]:
        """As scope strings (`repository:NAME:ACTION`), for the OAuth2 response's `scope`."""
        return [f"{self.type}:{self.name}:{action}" for action in self.actions]


def grant_access(
    principal: str,
    scopes: Sequence[Scope],
    registry: Registry,
    context: Context,
    *,
    decide: Decide,
    repositories: ListRepositories,
) -> tuple[Access, ...]:
    """The access to put in `principal`'s token: per resource (scopes naming one resource are
    merged), the requested actions IAM allows, in the order asked; resources with none left
    out. Raises whatever `decide` or `repositories` raise."""
    grants = _Grants(principal, registry, context, decide, repositories)
    wanted: dict[tuple[str, str], list[str]] = {}
    for scope in scopes:
        # the resource class (`repository(plugin)`) is deprecated: the same repository
        actions = wanted.setdefault((scope.type, scope.name), [])
        actions += [action for action in scope.actions if action not in actions]
    found = []
    for (kind, name), actions in wanted.items():
        granted = grants.granted(kind, name, actions)
        if granted:
            found.append(Access(kind, name, granted))
    return tuple(found)


class _Grants:
    """The decisions of one token request, each (action, repository) asked once."""

    def __init__(
        self,
        principal: str,
        registry: Registry,
        context: Context,
        decide: Decide,
        repositories: ListRepositories,
    ) -> None:
        self._principal = principal
        self._registry = registry
        self._context = context
        self._decide = decide
        self._repositories = repositories
        self._decided: dict[tuple[str, str], bool] = {}

    def granted(self, kind: str, name: str, actions: Sequence[str]) -> tuple[str, ...]:
        if kind == _REPOSITORY:
            return self._repository(name, actions)
        if kind == "registry" and name == "catalog" and "*" in actions:
            return ("*",) if self._catalog() else ()
        return ()  # no other resource or action means anything to this registry

    def _repository(self, name: str, actions: Sequence[str]) -> tuple[str, ...]:
        if not is_repository_name(name):  # `host:5000/x` and the like: no ECR repository
            return ()
        arn = self._registry.repository_arn(name)
        granted: list[str] = []
        for action in actions:
            needed = SCOPE_ACTIONS.get(action)
            if needed is None:
                continue
            if self._allows_all(needed, (arn,)):
                granted.append(action)
            elif action == "*":
                # the parts of `*` that are allowed: a partial grant, as for `pull,push`
                granted += [
                    part for part in _CONCRETE if self._allows_all(SCOPE_ACTIONS[part], (arn,))
                ]
        return tuple(dict.fromkeys(granted))

    def _catalog(self) -> bool:
        """`ecr:DescribeRepositories` on every repository of the registry; an empty registry
        grants nothing (a repository made while the token lives would be listed unchecked)."""
        prefix = self._registry.repository_arn("")
        arns = sorted(arn for arn in self._repositories() if arn.startswith(prefix))
        return bool(arns) and self._allows_all((CATALOG_ACTION,), arns)

    def _allows_all(self, actions: Iterable[str], arns: Iterable[str]) -> bool:
        listed = list(arns)
        return all(self._allows(action, arn) for action in actions for arn in listed)

    def _allows(self, action: str, arn: str) -> bool:
        key = (action, arn)
        if key not in self._decided:
            decision = self._decide(self._principal, action, arn, self._context)
            self._decided[key] = decision.allowed
        return self._decided[key]
