"""What a write touches while it runs, and the change-log row and `Change` it becomes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from dockgate_server.store.model import Change
from dockgate_server.store.rows import dump

__all__ = ["CHANGE_COLUMNS", "Touched"]

CHANGE_COLUMNS = (
    "revision, principals, repositories, organization, everything, sessions, credentials"
)
"""the columns of a change-log row, in the order `Touched.log_row` and `change_from_row` use"""


@dataclass(slots=True)
class Touched:
    """What a write is touching, filled in while it runs.

    `revision` is the revision the write will commit, set when the backend raises it (first
    thing on PostgreSQL, last on SQLite).
    """

    revision: int = 0
    principals: set[str] = field(default_factory=set)
    repositories: set[str] = field(default_factory=set)
    organization: bool = False
    everything: bool = False
    sessions: set[str] = field(default_factory=set)
    credentials: bool = False

    def log_row(self) -> tuple[Any, ...]:
        """The values of the write's change-log row (`CHANGE_COLUMNS`)."""
        return (
            self.revision,
            dump(sorted(self.principals)),
            dump(sorted(self.repositories)),
            self.organization,
            self.everything,
            dump(sorted(self.sessions)),
            self.credentials,
        )

    def change(self, revision: int) -> Change:
        """What the write touched, as the port reports it, at `revision`."""
        return Change(
            revision,
            frozenset(self.principals),
            frozenset(self.repositories),
            self.organization,
            self.everything,
            frozenset(self.sessions),
            self.credentials,
        )
