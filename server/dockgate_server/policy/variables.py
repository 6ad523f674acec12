"""Policy variables: `${key}`, `${key, 'default'}` and the `${*}`, `${?}`, `${$}` escapes.

Templates are parsed once at load; `resolve_template` fills them per request. Only policies with
`Version` `2012-10-17` have variables: elsewhere `${…}` is plain text (IAM: "Variable unsupported in
version").
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from dockgate_server.policy.glob import Chunk

__all__ = [
    "Template",
    "Variable",
    "VariableSyntaxError",
    "fixed_chunks",
    "has_variables",
    "literal_template",
    "parse_template",
    "resolve_template",
]

_ESCAPES = {"*": "*", "?": "?", "$": "$"}


class VariableSyntaxError(ValueError):
    """A `${…}` that IAM would reject; the message says which rule it breaks."""


@dataclass(frozen=True, slots=True)
class Variable:
    """`${key}`; `key` is lower-cased because condition keys are case-insensitive."""

    key: str
    default: str | None
    spelled: str


TemplatePart = Chunk | Variable
Template = tuple[TemplatePart, ...]


def literal_template(text: str) -> Template:
    """A template with no variables: the text as written, its wildcards active."""
    return (Chunk(text, True),)


def parse_template(text: str) -> Template:
    """Split `text` into wildcard-active text, literal escapes and variables."""
    parts: list[TemplatePart] = []
    cursor = 0
    while True:
        start = text.find("${", cursor)
        if start < 0:
            break
        end = text.find("}", start + 2)
        if end < 0:
            raise VariableSyntaxError(f"missing closing brace in variable `{text[start:]}`")
        if start > cursor:
            parts.append(Chunk(text[cursor:start], True))
        parts.append(_parse_variable(text[start + 2 : end], text[start : end + 1]))
        cursor = end + 1
    if cursor < len(text) or not parts:
        parts.append(Chunk(text[cursor:], True))
    return tuple(parts)


def has_variables(template: Template) -> bool:
    return any(isinstance(part, Variable) for part in template)


def fixed_chunks(template: Template) -> tuple[Chunk, ...]:
    """The chunks of a template that has no variables (escapes only)."""
    return tuple(part for part in template if isinstance(part, Chunk))


def resolve_template(
    template: Template, lookup: Callable[[str], str | None]
) -> tuple[Chunk, ...] | None:
    """Substitute every variable; None when one has neither a value nor a default.

    `lookup` returns a key's single value, or None when the key is absent or multivalued (IAM:
    multivalued keys cannot be variables).
    """
    chunks: list[Chunk] = []
    for part in template:
        if isinstance(part, Chunk):
            chunks.append(part)
            continue
        value = lookup(part.key)
        if value is None:
            value = part.default
        if value is None:
            return None
        chunks.append(Chunk(value, False))
    return tuple(chunks)


def _parse_variable(inner: str, spelled: str) -> TemplatePart:
    if inner in _ESCAPES:
        return Chunk(_ESCAPES[inner], False)
    if not inner.strip():
        raise VariableSyntaxError(f"empty variable `{spelled}`")
    if "," not in inner:
        if inner != inner.strip() or " " in inner:
            raise VariableSyntaxError(f"unsupported space in variable `{spelled}`")
        return Variable(inner.lower(), None, spelled)
    key, _, default = inner.partition(",")
    if not key or key != key.strip() or " " in key:
        raise VariableSyntaxError(f"unsupported space in variable `{spelled}`")
    # IAM: exactly one space after the comma, then the default in single quotes
    if not default.startswith(" '") or not default.endswith("'") or len(default) < 3:
        raise VariableSyntaxError(
            f"default value of variable `{spelled}` must be written `, 'text'`"
        )
    return Variable(key.lower(), default[2:-1], spelled)
