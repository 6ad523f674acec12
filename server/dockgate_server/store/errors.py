"""The store's typed errors: what every backend raises, and the service maps to status codes."""

from __future__ import annotations

__all__ = ["Conflict", "MissingStoreError", "NotFound", "Refused", "StoreError", "Unavailable"]


class StoreError(ValueError):
    """A store operation that did not happen; the message names the entity (and the pointer).

    A ValueError so that callers catching bad input catch it too. Raised as such only where no
    finer kind applies; the service tells the kinds apart by class, never by message text.
    """


class Refused(StoreError):
    """A write that fails validation (a bad name, policy or reference): nothing was stored."""


class NotFound(StoreError):
    """The entity a read or write names does not exist."""


class MissingStoreError(NotFound):
    """A store opened without `create` that does not exist."""


class Conflict(StoreError):
    """A write that collided with another writer and was not applied; retrying may succeed."""


class Unavailable(StoreError):
    """The backend cannot be reached (down, unreachable, out of disk); nothing was stored."""
