"""The README as a script: its fenced blocks in order, how each runs, and the output each shows.

Conventions (the README keeps them; `run_readme` enforces them):

- A ```sh block runs with bash (`set -euo pipefail`), a ```python block with `.venv/bin/python -`,
  each in a fresh shell at the root of the clone. Blocks without a language, ```text and ```json
  are shown, not run. Any other language is an error, so that nothing is skipped by accident.
- Output a block shows is checked against what it prints on standard output:
  - in a sh block, comment lines right after a command (no blank line between) are its output;
    a comment after a blank line or after another explanatory comment explains, and is not;
  - `print(...)  # TEXT` (in a python block or a heredoc) shows TEXT as one line of output;
  - a shown block marked `output` (see below) is the whole output of the run block before it.
  Each group of shown lines matches consecutive output lines, groups in order; `...` inside a
  line stands for any text, a line that is only `...` for any number of lines.
- A hidden marker on the line(s) before a block says more about it, as `key` or `key=value`:
  `<!-- readme-test: background=NAME port=P [port=P ...] [timeout=S] -->` runs a long-lived command
  in the background until it listens on every port, `<!-- readme-test: stop=NAME -->` (anywhere)
  stops it, `status=N` expects that exit status, `timeout=S` bounds the block, `secret=PATH` says
  the block writes a secret there (mode 0600, git-ignored), `output[=stderr]` marks an output block,
  and `<!-- readme-test: skip REASON -->` shows a block without running it.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

__all__ = [
    "Block",
    "ExpectedOutput",
    "ReadmeError",
    "Run",
    "Skip",
    "Step",
    "Stop",
    "expected_groups",
    "find_groups",
    "line_matches",
    "match_whole",
    "parse_readme",
]

RUN_LANGUAGES = frozenset({"sh", "python"})
SHOWN_LANGUAGES = frozenset({"", "text", "json"})
ELLIPSIS = "..."
DEFAULT_TIMEOUT = 120.0
DEFAULT_START_TIMEOUT = 60.0

_MARKER = re.compile(r"^<!--\s*readme-test:(?P<body>.*?)-->$")
_FENCE = re.compile(r"^(?P<fence>```+)(?P<language>[^`\s]*)\s*$")
_INDENTED_FENCE = re.compile(r"^\s+```")
_PRINT_COMMENT = re.compile(r"^\s*print\(.*\)\s+#\s(?P<text>.*\S)\s*$")
_HEREDOC = re.compile(r"<<-?\s*(?P<quote>['\"]?)(?P<word>\w+)(?P=quote)")
_N = TypeVar("_N", int, float)
_REPEATABLE = frozenset({"port", "secret"})
_BLOCK_KEYS = frozenset({"background", "port", "timeout", "status", "secret", "output"})


class ReadmeError(Exception):
    """The README breaks one of the conventions above; the message names the line."""


@dataclass(frozen=True)
class Block:
    """One fenced block: the line of its opening fence (1-based), its language and its text."""

    line: int
    language: str
    text: str


@dataclass(frozen=True)
class ExpectedOutput:
    """A shown block that is the whole output of the run block before it, on `stream`."""

    block: Block
    stream: str


@dataclass(frozen=True)
class Run:
    """A block to run, in the foreground (output checked) or in the background (until stopped)."""

    block: Block
    expected: tuple[tuple[str, ...], ...] = ()
    outputs: tuple[ExpectedOutput, ...] = ()
    status: int = 0
    timeout: float = DEFAULT_TIMEOUT
    secrets: tuple[str, ...] = ()
    background: str | None = None
    ports: tuple[int, ...] = ()


@dataclass(frozen=True)
class Skip:
    """A runnable block shown but not run, and why."""

    block: Block
    reason: str


@dataclass(frozen=True)
class Stop:
    """Stop the background block called `name` here (the README tells the reader to)."""

    line: int
    name: str


Step = Run | Skip | Stop


def parse_readme(text: str) -> list[Step]:
    """The README's steps in order; raises ReadmeError naming the line of a broken convention."""
    lines = text.splitlines()
    steps: list[Step] = []
    pending: tuple[int, dict[str, list[str]]] | None = None
    last_block_step: int | None = None  # index in `steps` of the step the last block made
    backgrounds: set[str] = set()
    index = 0
    while index < len(lines):
        line = lines[index]
        number = index + 1
        marker = _MARKER.match(line.strip())
        fence = _FENCE.match(line)
        if marker:
            options = _parse_marker(marker["body"], number)
            if "stop" in options:
                if len(options) > 1:
                    raise ReadmeError(f"README.md line {number}: `stop` stands alone in a marker")
                name = options["stop"][0]
                if name not in backgrounds:
                    raise ReadmeError(
                        f"README.md line {number}: `stop={name}` names no background block above"
                    )
                backgrounds.discard(name)
                steps.append(Stop(number, name))
            elif pending is not None:
                raise ReadmeError(f"README.md line {number}: a second marker for the same block")
            else:
                pending = (number, options)
        elif fence:
            end = _closing_fence(lines, index, fence["fence"])
            body = "".join(f"{x}\n" for x in lines[index + 1 : end])
            block = Block(number, fence["language"], body)
            options = pending[1] if pending else {}
            if block.language in RUN_LANGUAGES:
                step = _runnable_step(block, options)
                if isinstance(step, Run) and step.background is not None:
                    if step.background in backgrounds:
                        raise ReadmeError(
                            f"README.md line {number}: background `{step.background}` is already "
                            "running"
                        )
                    backgrounds.add(step.background)
                steps.append(step)
                last_block_step = len(steps) - 1
            elif block.language in SHOWN_LANGUAGES:
                if options:
                    # several output blocks (stdout, stderr) may follow one run block
                    _attach_output(steps, last_block_step, block, options)
                else:
                    last_block_step = None
            else:
                raise ReadmeError(
                    f"README.md line {number}: block language `{block.language}` is neither run "
                    "(sh, python) nor shown (text, json, none)"
                )
            pending = None
            index = end
        elif _INDENTED_FENCE.match(line):
            raise ReadmeError(f"README.md line {number}: an indented fence is not supported")
        elif pending is not None and line.strip():
            raise ReadmeError(
                f"README.md line {pending[0]}: a marker stands right before its block"
            )
        index += 1
    if pending is not None:
        raise ReadmeError(f"README.md line {pending[0]}: a marker with no block after it")
    return steps


def expected_groups(block: Block) -> tuple[tuple[str, ...], ...]:
    """The output a run block shows inline: groups of lines, each group consecutive output."""
    groups: list[list[str]] = []
    current: list[str] | None = None
    previous = "blank"  # what the line before was, at shell level: blank, command, comment, output
    heredoc: str | None = None
    for raw in block.text.splitlines():
        line = raw.strip()
        printed = _PRINT_COMMENT.match(raw)
        if printed and (block.language == "python" or heredoc is not None):
            groups.append([printed["text"]])
        if block.language == "python":
            continue
        if heredoc is not None:
            if line == heredoc:
                heredoc, previous, current = None, "command", None
            continue
        if not line:
            previous, current = "blank", None
        elif line.startswith("#"):
            if previous in ("command", "output"):
                if current is None:
                    current = []
                    groups.append(current)
                current.append(line[1:].removeprefix(" "))
                previous = "output"
            else:
                previous, current = "comment", None
        else:
            previous, current = "command", None
            opened = _HEREDOC.search(line)
            if opened:
                heredoc = opened["word"]
    return tuple(tuple(group) for group in groups)


def line_matches(pattern: str, line: str) -> bool:
    """Whether `line` is `pattern`, where each `...` stands for any text (ends' spaces ignored)."""
    parts = pattern.strip().split(ELLIPSIS)
    expression = ".*".join(re.escape(part) for part in parts)
    return re.fullmatch(expression, line.strip(), re.DOTALL) is not None


def find_groups(groups: Sequence[Sequence[str]], lines: Sequence[str]) -> str | None:
    """None if each group matches consecutive `lines`, groups in order; else what is missing."""
    position = 0
    for group in groups:
        for start in range(position, len(lines) + 1):
            ends = _ends(group, lines, start)
            if ends:
                position = min(ends)
                break
        else:
            shown = "\n".join(f"    {x}" for x in group)
            return f"not printed (after output line {position}):\n{shown}"
    return None


def match_whole(pattern: Sequence[str], lines: Sequence[str]) -> bool:
    """Whether `pattern` (its `...` lines standing for any lines) matches all of `lines`."""
    return len(_trim(lines)) in _ends(_trim(pattern), _trim(lines), 0)


def _ends(pattern: Sequence[str], lines: Sequence[str], start: int) -> set[int]:
    """Every index where a match of `pattern` against `lines[start:]` can end."""
    positions = {start}
    for expected in pattern:
        if not positions:
            break
        if expected.strip() == ELLIPSIS:
            positions = set(range(min(positions), len(lines) + 1))
        else:
            positions = {
                at + 1 for at in positions if at < len(lines) and line_matches(expected, lines[at])
            }
    return positions


def _trim(lines: Sequence[str]) -> list[str]:
    trimmed = list(lines)
    while trimmed and not trimmed[-1].strip():
        trimmed.pop()
    return trimmed


def _parse_marker(body: str, number: int) -> dict[str, list[str]]:
    words = body.split()
    if not words:
        raise ReadmeError(f"README.md line {number}: an empty marker")
    if words[0] == "skip":
        reason = " ".join(words[1:])
        if not reason:
            raise ReadmeError(f"README.md line {number}: `skip` needs a reason")
        return {"skip": [reason]}
    options: dict[str, list[str]] = {}
    for word in words:
        key, _, value = word.partition("=")
        if key not in _BLOCK_KEYS | {"stop"}:
            raise ReadmeError(f"README.md line {number}: unknown marker key `{key}`")
        if key in options and key not in _REPEATABLE:
            raise ReadmeError(f"README.md line {number}: `{key}` given twice")
        if not value and key != "output":
            raise ReadmeError(f"README.md line {number}: `{key}` needs a value (`{key}=...`)")
        options.setdefault(key, []).append(value)
    return options


def _closing_fence(lines: Sequence[str], opening: int, fence: str) -> int:
    for index in range(opening + 1, len(lines)):
        if lines[index].rstrip() == fence:
            return index
    raise ReadmeError(f"README.md line {opening + 1}: a block that is never closed")


def _runnable_step(block: Block, options: dict[str, list[str]]) -> Run | Skip:
    where = f"README.md line {block.line}"
    if "skip" in options:
        return Skip(block, options["skip"][0])
    if "output" in options:
        raise ReadmeError(f"{where}: `output` marks a shown block (text, json, none), not this")
    background = options.get("background", [None])[0]
    ports = tuple(_number(where, "port", value, int) for value in options.get("port", []))
    expected = expected_groups(block)
    if background is not None:
        if not ports:
            raise ReadmeError(f"{where}: a background block needs `port=` to know it is ready")
        if expected or "status" in options or "secret" in options:
            raise ReadmeError(f"{where}: a background block shows no output, status or secret")
    elif ports:
        raise ReadmeError(f"{where}: `port=` is for background blocks")
    default = DEFAULT_TIMEOUT if background is None else DEFAULT_START_TIMEOUT
    return Run(
        block,
        expected=expected,
        status=_number(where, "status", options.get("status", ["0"])[0], int),
        timeout=_number(where, "timeout", options.get("timeout", [str(default)])[0], float),
        secrets=tuple(options.get("secret", [])),
        background=background,
        ports=ports,
    )


def _attach_output(
    steps: list[Step], last: int | None, block: Block, options: dict[str, list[str]]
) -> None:
    where = f"README.md line {block.line}"
    if set(options) != {"output"}:
        raise ReadmeError(f"{where}: a shown block takes only the `output` marker")
    stream = options["output"][0] or "stdout"
    if stream not in ("stdout", "stderr"):
        raise ReadmeError(f"{where}: `output={stream}`: the stream is stdout or stderr")
    run = steps[last] if last is not None else None
    if last is None or not isinstance(run, Run) or run.background is not None:
        raise ReadmeError(f"{where}: an output block follows a foreground run block")
    steps[last] = dataclasses.replace(run, outputs=(*run.outputs, ExpectedOutput(block, stream)))


def _number(where: str, key: str, value: str, kind: type[_N]) -> _N:
    try:
        return kind(value)
    except ValueError:
        raise ReadmeError(f"{where}: `{key}={value}` is not a number") from None
