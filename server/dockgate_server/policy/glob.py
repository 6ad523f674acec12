"""IAM wildcard patterns (`*`, `?`) compiled once into linear-time matchers, never into a regex."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

__all__ = ["Chunk", "Glob", "compile_chunks", "compile_glob"]


@dataclass(frozen=True, slots=True)
class Chunk:
    """A run of pattern text; `wild` says whether `*` and `?` in it are wildcards.

    Text that came from a policy variable or a `${*}` escape is literal (IAM: substituted values
    are never patterns, or a principal tag could widen its own permissions).
    """

    text: str
    wild: bool


@lru_cache(maxsize=65_536)
def compile_glob(pattern: str, *, fold_case: bool = False) -> Glob:
    """Compile plain pattern text in which every `*` and `?` is a wildcard."""
    # cached by the text itself as well: validation compiles every action name it checks, and
    # a fleet repeats a few dozen of them hundreds of thousands of times
    return _compile((Chunk(pattern, True),), fold_case)


def compile_chunks(chunks: Sequence[Chunk], *, fold_case: bool = False) -> Glob:
    """Compile pattern chunks into the cheapest matcher that decides them exactly."""
    return _compile(tuple(chunks), fold_case)


@lru_cache(maxsize=65_536)
def _compile(chunks: tuple[Chunk, ...], fold_case: bool) -> Glob:
    # compiled globs are immutable, so the many statements that repeat a pattern share one
    pieces = _split_pieces(chunks, fold_case)
    if len(pieces) == 1:
        (only,) = pieces
        if not only.has_any:
            return ExactGlob(only.text, fold_case)
        return GeneralGlob(only, (), None, fold_case)
    head, *middles, tail = pieces
    if not head.length and not tail.length and all(not m.length for m in middles):
        return AnyGlob(fold_case)
    if not middles and not head.has_any and not tail.has_any:
        if not tail.length:
            return PrefixGlob(head.text, fold_case)
        if not head.length:
            return SuffixGlob(tail.text, fold_case)
    useful = tuple(m for m in middles if m.length)
    return GeneralGlob(head, useful, tail, fold_case)


class Glob(ABC):
    """A compiled pattern. `matches` is anchored at both ends."""

    __slots__ = ("fold_case",)

    def __init__(self, fold_case: bool) -> None:
        self.fold_case = fold_case

    @abstractmethod
    def matches(self, text: str) -> bool:
        """Whether the whole of `text` matches."""

    @property
    def literal_prefix(self) -> str:
        """The text every match starts with (what an index can key on)."""
        return ""


class AnyGlob(Glob):
    __slots__ = ()

    def matches(self, text: str) -> bool:
        return True


class ExactGlob(Glob):
    __slots__ = ("text",)

    def __init__(self, text: str, fold_case: bool) -> None:
        super().__init__(fold_case)
        self.text = text

    def matches(self, text: str) -> bool:
        return (text.lower() if self.fold_case else text) == self.text

    @property
    def literal_prefix(self) -> str:
        return self.text


class PrefixGlob(Glob):
    __slots__ = ("prefix",)

    def __init__(self, prefix: str, fold_case: bool) -> None:
        super().__init__(fold_case)
        self.prefix = prefix

    def matches(self, text: str) -> bool:
        return (text.lower() if self.fold_case else text).startswith(self.prefix)

    @property
    def literal_prefix(self) -> str:
        return self.prefix


class SuffixGlob(Glob):
    __slots__ = ("suffix",)

    def __init__(self, suffix: str, fold_case: bool) -> None:
        super().__init__(fold_case)
        self.suffix = suffix

    def matches(self, text: str) -> bool:
        return (text.lower() if self.fold_case else text).endswith(self.suffix)


class GeneralGlob(Glob):
    """head `*` middle `*` … `*` tail, where each piece may hold `?`.

    Leftmost placement of each middle piece is optimal, so one forward pass decides: no
    backtracking over earlier pieces. Each piece is found with `str.find` on its longest literal
    run, so `*a*a*a*…*b` against a long string costs one scan, not an exponential search.
    """

    __slots__ = ("head", "middles", "minimum", "tail")

    def __init__(
        self, head: _Piece, middles: tuple[_Piece, ...], tail: _Piece | None, fold_case: bool
    ) -> None:
        super().__init__(fold_case)
        self.head = head
        self.middles = middles
        self.tail = tail
        self.minimum = head.length + sum(m.length for m in middles) + (tail.length if tail else 0)

    def matches(self, text: str) -> bool:
        subject = text.lower() if self.fold_case else text
        size = len(subject)
        if self.tail is None:  # no `*` at all: a fixed-length pattern with `?`
            return size == self.head.length and self.head.matches_at(subject, 0)
        if size < self.minimum or not self.head.matches_at(subject, 0):
            return False
        end = size - self.tail.length
        if not self.tail.matches_at(subject, end):
            return False
        position = self.head.length
        for piece in self.middles:
            found = piece.find(subject, position)
            if found < 0 or found + piece.length > end:
                return False
            position = found + piece.length
        return True

    @property
    def literal_prefix(self) -> str:
        return self.head.runs[0][1] if self.head.runs and self.head.runs[0][0] == 0 else ""


@dataclass(frozen=True, slots=True)
class _Piece:
    """Pattern text between two `*`: literal runs at fixed offsets, gaps of `?` between them."""

    length: int
    runs: tuple[tuple[int, str], ...]
    has_any: bool

    @property
    def text(self) -> str:
        return "".join(run for _, run in self.runs)

    def matches_at(self, subject: str, start: int) -> bool:
        if start < 0 or start + self.length > len(subject):
            return False
        return all(subject.startswith(run, start + offset) for offset, run in self.runs)

    def find(self, subject: str, start: int) -> int:
        """Leftmost position at or after `start` where this piece matches, or -1."""
        if not self.runs:
            return start if start + self.length <= len(subject) else -1
        offset, anchor = max(self.runs, key=lambda run: len(run[1]))
        hit = subject.find(anchor, start + offset)
        while hit >= 0:
            candidate = hit - offset
            if candidate + self.length > len(subject):
                return -1
            if self.matches_at(subject, candidate):
                return candidate
            hit = subject.find(anchor, hit + 1)
        return -1


def _split_pieces(chunks: Sequence[Chunk], fold_case: bool) -> list[_Piece]:
    pieces: list[_Piece] = []
    runs: list[tuple[int, str]] = []
    literal: list[str] = []
    length = 0
    has_any = False

    def close_run() -> None:
        if literal:
            text = "".join(literal)
            runs.append((length - len(text), text))
            literal.clear()

    for chunk in chunks:
        text = chunk.text.lower() if fold_case else chunk.text
        for char in text:
            if chunk.wild and char == "*":
                close_run()
                pieces.append(_Piece(length, tuple(runs), has_any))
                runs, length, has_any = [], 0, False
            elif chunk.wild and char == "?":
                close_run()
                length += 1
                has_any = True
            else:
                literal.append(char)
                length += 1
    close_run()
    pieces.append(_Piece(length, tuple(runs), has_any))
    return pieces
