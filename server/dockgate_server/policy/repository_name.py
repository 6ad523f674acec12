"""ECR repository names: the one check every way in (decision port, registry gate) shares."""

from __future__ import annotations

import re

__all__ = ["NAME_MAX", "NAME_MIN", "is_repository_name", "repository_name_of"]

NAME_MIN = 2
NAME_MAX = 256

# ECR's API pattern (semantics §3.4). Separators and letters are disjoint sets, so the pattern is
# unambiguous: a failing match backtracks at most once per character, and the length is checked
# before it runs, so no name costs more than a few hundred steps.
_NAME = re.compile(r"(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*")
_PREFIX = "repository/"


def is_repository_name(name: str) -> bool:
    """`(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*`, 2 to 256 characters.

    Lower-case path components joined by `/`, each alphanumeric runs joined by single `.`, `_`
    or `-`: no empty component, no `..`, no NUL, control or non-ASCII character.
    """
    return NAME_MIN <= len(name) <= NAME_MAX and _NAME.fullmatch(name) is not None


def repository_name_of(service: str, resource: str) -> str | None:
    """The repository name an ARN's service and resource part name (`ecr`, `repository/NAME`),
    or None when the ARN is not an ECR repository's."""
    if service != "ecr" or not resource.startswith(_PREFIX):
        return None
    return resource[len(_PREFIX) :]
