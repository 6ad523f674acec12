"""Paged answers: a question answered whole once per revision, then served a page at a time.

An answer is kept, by question and revision, for the pages after the first: every page of one
answer comes from one revision, and paging through it costs one analysis. A page token names the
question (a digest), the revision and the offset. When that answer is no longer kept and the
source has moved to another revision, the token has expired: the caller asks again from the
first page. The gRPC analysis service and the AuthZEN search APIs page this way.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import json
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

__all__ = ["DEFAULT_PAGE", "MAX_PAGE", "PageError", "Pages"]

DEFAULT_PAGE = 100
MAX_PAGE = 1000
_KEPT = 8
"""answers kept for their later pages (a what-can on a large fleet is about 100,000 findings)"""

_T = TypeVar("_T")


class PageError(ValueError):
    """A page that cannot be served: `field` is `size` or `token`; `expired` for a token whose
    answer is no longer kept (ask again from the first page)."""

    def __init__(self, field: str, message: str, *, expired: bool = False) -> None:
        super().__init__(message)
        self.field = field
        self.expired = expired


@dataclass(frozen=True, slots=True)
class _Token:
    question: str
    revision: int
    offset: int


class Pages:
    """The answers kept for their later pages, shared by the calls of one door or service."""

    def __init__(self, kept: int = _KEPT) -> None:
        self._kept = kept
        self._answers: OrderedDict[tuple[str, int], Sequence[Any]] = OrderedDict()
        self._lock = threading.Lock()

    async def page(
        self,
        question: object,
        token: str,
        size: int,
        ask: Callable[[], tuple[int, Sequence[_T]]],
    ) -> tuple[int, Sequence[_T], str]:
        """The revision, the page's results and the next page's token ('' after the last).

        `question` is anything JSON can spell that tells questions apart; `ask` answers it whole
        (on a worker thread: it may take a second on a large fleet) and says at which revision.
        Raises `PageError`, and whatever `ask` raises."""
        size = size or DEFAULT_PAGE
        if size < 0 or size > MAX_PAGE:
            raise PageError("size", f"must be between 1 and {MAX_PAGE}")
        digest = hashlib.sha256(json.dumps(question).encode()).hexdigest()[:32]
        offset = 0
        found: Sequence[_T] | None = None
        wanted: int | None = None
        if token:
            read = _read_token(token)
            if read.question != digest:
                raise PageError("token", "belongs to another question")
            offset, wanted = read.offset, read.revision
            found = self._kept_answer(digest, wanted)
        if found is None:
            revision, answered = await asyncio.to_thread(ask)
            if wanted is not None and revision != wanted:
                raise PageError(
                    "token",
                    f"its answer at revision {wanted} is no longer kept (now at {revision}): "
                    "ask again from the first page",
                    expired=True,
                )
            self._keep(digest, revision, answered)
            found = answered
        else:
            assert wanted is not None
            revision = wanted
        end = offset + size
        after = _write_token(_Token(digest, revision, end)) if end < len(found) else ""
        return revision, found[offset:end], after

    def _kept_answer(self, digest: str, revision: int) -> Sequence[Any] | None:
        with self._lock:
            found = self._answers.get((digest, revision))
            if found is not None:
                self._answers.move_to_end((digest, revision))
            return found

    def _keep(self, digest: str, revision: int, found: Sequence[Any]) -> None:
        with self._lock:
            self._answers[(digest, revision)] = found
            while len(self._answers) > self._kept:
                self._answers.popitem(last=False)


def _write_token(token: _Token) -> str:
    data = json.dumps([token.question, token.revision, token.offset]).encode()
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _read_token(text: str) -> _Token:
    try:
        data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        question, revision, offset = json.loads(data)
        if (
            isinstance(question, str)
            and type(revision) is int
            and type(offset) is int
            and revision >= 0
            and offset >= 0
        ):
            return _Token(question, revision, offset)
    except (ValueError, TypeError, binascii.Error):
        pass
    raise PageError("token", "is not a page token of this server")
