"""`KEY=VALUE` command-line arguments, as the `dockgate` commands take them."""

from __future__ import annotations

import json

__all__ = ["parse_context", "split_pair"]


def split_pair(item: str, option: str) -> tuple[str, str]:
    key, equals, value = item.partition("=")
    if not equals or not key:
        raise ValueError(f"{option} `{item}` must be KEY=VALUE")
    return key, value


def parse_context(pairs: list[str], raw_json: str | None = None) -> dict[str, str | list[str]]:
    """A request context from `--context KEY=VALUE` (a repeated key gives several values) and
    `--context-json`."""
    context: dict[str, str | list[str]] = {}
    if raw_json is not None:
        try:
            given = json.loads(raw_json)
        except ValueError as problem:
            raise ValueError(f"--context-json: not JSON: {problem}") from None
        if not isinstance(given, dict):
            raise ValueError("--context-json must be a JSON object")
        context.update(given)
    for pair in pairs:
        key, value = split_pair(pair, "--context")
        if key in context:
            previous = context[key]
            context[key] = [*([previous] if isinstance(previous, str) else previous), value]
        else:
            context[key] = value
    return context
