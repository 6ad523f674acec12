"""The store port: the one protocol the rest of Dockgate knows, and `open_store` to pick a backend.

A backend (SQLite in `store/sqlite/`, PostgreSQL in `store/postgres/`) implements `FleetStore`;
nothing outside this module names one. Every write validates first, lands in one transaction,
raises the revision by exactly one and returns the `Change` it made; a refused or interrupted
write leaves the store at its previous revision. Errors are typed (`store/errors.py`) so callers
tell them apart by class.

A store object belongs to one thread at a time: open one per thread (or process).
"""

from __future__ import annotations

import re
import urllib.parse
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Protocol, runtime_checkable

from dockgate_server.store.errors import (
    Conflict,
    MissingStoreError,
    NotFound,
    Refused,
    StoreError,
    Unavailable,
)
from dockgate_server.store.model import (
    Change,
    Credentials,
    Delta,
    Document,
    Fleet,
    Group,
    ManagedPolicy,
    Organization,
    Repository,
    Role,
    Session,
    SigningKey,
    TokenKey,
    User,
)

__all__ = [
    "Conflict",
    "FleetStore",
    "MissingStoreError",
    "NotFound",
    "Refused",
    "StoreError",
    "Unavailable",
    "describe_url",
    "open_store",
]

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")


@runtime_checkable
class FleetStore(Protocol):
    """The source of truth: the fleet, the credentials, one revision raised by every write."""

    # -- identity and lifetime ----------------------------------------------------------------

    def describe(self) -> str:
        """The store as messages name it (a path, or a URL without its password)."""
        ...

    def close(self) -> None: ...

    def __enter__(self) -> FleetStore: ...

    def __exit__(self, *_: object) -> None: ...

    # -- revisions and the change feed ------------------------------------------------------

    @property
    def revision(self) -> int:
        """The newest committed revision (0 for an empty store)."""
        ...

    def reading(self) -> AbstractContextManager[int]:
        """Pin every read inside to one revision, which it yields. Re-entrant."""
        ...

    def changes_since(self, revision: int) -> list[Change] | None:
        """What every write after `revision` touched, in order; None when the log no longer
        reaches back that far (only a full rebuild is right then)."""
        ...

    def wait_for_change(self, revision: int, timeout: float) -> int:
        """Block until the store is past `revision` or `timeout` seconds pass; the newest
        revision known then. Raises `Unavailable` when the backend cannot be asked."""
        ...

    # -- reads ------------------------------------------------------------------------------

    def load_fleet(self) -> Fleet: ...

    def load_credentials(self) -> Credentials: ...

    def load_delta(self, change: Change) -> Delta:
        """Everything `change` touched, read at one revision in a handful of queries (never
        one per entity). `change.everything` is not a delta: read the whole fleet instead."""
        ...

    def accounts(self) -> tuple[str, ...]: ...

    def load_user(self, account: str, name: str) -> User | None: ...

    def load_group(self, account: str, name: str) -> Group | None: ...

    def load_role(self, account: str, name: str) -> Role | None: ...

    def load_policy(self, arn: str) -> ManagedPolicy | None: ...

    def load_repository(self, arn: str) -> Repository | None: ...

    def load_organization(self) -> Organization | None: ...

    # -- fleet writes (each validates, is atomic, raises the revision by one) ---------------

    def put_user(self, user: User) -> Change: ...

    def delete_user(self, account: str, name: str) -> Change:
        """Raises `NotFound` when there is no such user."""
        ...

    def put_group(self, group: Group) -> Change: ...

    def delete_group(self, account: str, name: str) -> Change:
        """Raises `Refused` while the group has members, `NotFound` when there is none."""
        ...

    def put_role(self, role: Role) -> Change: ...

    def delete_role(self, account: str, name: str) -> Change: ...

    def put_policy(self, policy: ManagedPolicy) -> Change: ...

    def delete_policy(self, arn: str) -> Change:
        """Raises `Refused` while the policy is attached or a boundary."""
        ...

    def put_repository(self, repository: Repository) -> Change: ...

    def set_repository_policy(self, arn: str, document: Document | None) -> Change: ...

    def delete_repository(self, arn: str) -> Change: ...

    def set_organization(self, organization: Organization | None) -> Change: ...

    def import_fleet(self, fleet: Fleet, *, replace: bool = False) -> Change:
        """All of `fleet` in one transaction, or nothing. Merge by default; `replace` makes the
        fleet the whole truth for the accounts it names."""
        ...

    # -- credentials ------------------------------------------------------------------------

    def put_session(self, session: Session) -> Change: ...

    def revoke_session(self, arn: str, now: float) -> Change:
        """Raises `NotFound` when no live session has that ARN."""
        ...

    def load_session(self, arn: str) -> Session | None: ...

    def load_sessions(self, *, live_only: bool = False) -> list[Session]: ...

    def add_signing_key(self, key: SigningKey) -> Change: ...

    def signing_keys(self) -> list[SigningKey]:
        """Every key that still verifies, the current one (not retired) last."""
        ...

    def revoke_token(self, token_id: str, expires_at: float) -> Change: ...

    def revoked_tokens(self) -> frozenset[str]: ...

    # -- registry token-signing keys ---------------------------------------------------------

    def rotate_token_key(self, key: TokenKey, grace: float) -> Change:
        """Make `key` the key that signs registry tokens: the current one is retired at
        `key.created_at` and trusted `grace` seconds more (it still verifies, and its
        certificate stays in the bundle); keys no longer trusted then are dropped. Raises
        `Refused` when a key with the same ID is stored already."""
        ...

    def token_keys(self) -> list[TokenKey]:
        """Every stored token-signing key, the current one (not retired) last."""
        ...

    def sweep(self, now: float, key_lifetime: float) -> Change | None:
        """End expired sessions, drop old tombstones, expired revocations and long-retired
        keys; None when there was nothing to do (the revision moves only on a change)."""
        ...


def open_store(url: str | Path, *, create: bool = True) -> FleetStore:
    """The store `url` names: a path or `sqlite:///PATH` (SQLite), `postgresql://…` (PostgreSQL).

    Without `create` a SQLite store that does not exist raises `MissingStoreError`.
    """
    text = str(url)
    if not text:
        raise StoreError("store ``: empty: give a path, `sqlite:///PATH` or `postgresql://…`")
    matched = _SCHEME.match(text)
    if matched is None:
        return _open_sqlite(Path(text), create=create)
    scheme = matched.group(1).lower()
    if scheme == "sqlite":
        parts = urllib.parse.urlsplit(text)
        if parts.netloc or not parts.path or parts.query or parts.fragment:
            raise StoreError(
                f"store `{describe_url(text)}`: a SQLite URL is `sqlite:///PATH`"
                " (three slashes, then the file's path)"
            )
        # `sqlite:////abs/path` (SQLAlchemy's spelling of an absolute path) names `/abs/path` too
        path = "/" + urllib.parse.unquote(parts.path).lstrip("/")
        return _open_sqlite(Path(path), create=create)
    if scheme in ("postgresql", "postgres"):
        return _open_postgres(text, create=create)
    raise StoreError(
        f"store `{describe_url(text)}`: unknown scheme `{scheme}`:"
        " give a path, `sqlite:///PATH` or `postgresql://USER@HOST:PORT/DB`"
    )


def describe_url(url: str) -> str:
    """`url` as it may appear in messages and logs: any password replaced by `***`."""
    parts = urllib.parse.urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.netloc.rsplit("@", 1)[1]
    return urllib.parse.urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


def _open_sqlite(path: Path, *, create: bool) -> FleetStore:
    from dockgate_server.store.sqlite import SqliteStore  # noqa: PLC0415 - backends load on use

    return SqliteStore(path, create=create)


def _open_postgres(url: str, *, create: bool) -> FleetStore:
    # imported only here: a SQLite user needs no psycopg
    try:
        from dockgate_server.store.postgres import PostgresStore  # noqa: PLC0415
    except ModuleNotFoundError as missing:
        if missing.name and missing.name.split(".")[0] in ("psycopg", "psycopg_pool"):
            raise StoreError(
                f"store `{describe_url(url)}`: PostgreSQL needs psycopg:"
                " install `psycopg[binary]` and `psycopg-pool`"
            ) from None
        raise
    store: FleetStore = PostgresStore(url, create=create)
    return store
