"""The PostgreSQL schema, as numbered migrations recorded in `schema_version`.

The tables and revision semantics are SQLite's (`store/schema.py`), in SQL that PostgreSQL-
compatible distributed databases also run: plain types, no extension, no sequence, no trigger.
Rows that SQLite orders by `rowid` carry an explicit `ordinal`. Documents and tags stay JSON text
(validated before they are written), so an exported bundle is the same from either backend.
Several replicas may start at once: one takes the `schema_version` row lock, the others wait and
then find the work done.
"""

from __future__ import annotations

import psycopg

from dockgate_server.store.errors import MissingStoreError, StoreError
from dockgate_server.store.postgres.connection import Connections, Cursor

__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "migrate"]

MIGRATIONS: tuple[tuple[str, ...], ...] = (
    # 1: the fleet, the change log, the credentials (SQLite's migrations 1 to 3 in one)
    (
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value BIGINT NOT NULL)",
        "INSERT INTO meta (key, value) VALUES ('revision', 0)",
        "CREATE TABLE accounts (account TEXT PRIMARY KEY)",
        "CREATE TABLE users ("
        " account TEXT NOT NULL, name TEXT NOT NULL, path TEXT NOT NULL, arn TEXT NOT NULL UNIQUE,"
        " user_id TEXT, tags TEXT NOT NULL DEFAULT '{}', boundary TEXT,"
        " arn_partition TEXT NOT NULL DEFAULT 'aws', PRIMARY KEY (account, name))",
        "CREATE INDEX users_by_boundary ON users (boundary)",
        "CREATE TABLE iam_groups ("
        " account TEXT NOT NULL, name TEXT NOT NULL, path TEXT NOT NULL, arn TEXT NOT NULL UNIQUE,"
        " group_id TEXT, arn_partition TEXT NOT NULL DEFAULT 'aws', PRIMARY KEY (account, name))",
        "CREATE TABLE group_members ("
        " account TEXT NOT NULL, group_name TEXT NOT NULL, user_name TEXT NOT NULL,"
        " ordinal INTEGER NOT NULL, PRIMARY KEY (account, group_name, user_name))",
        "CREATE INDEX group_members_by_user ON group_members (account, user_name)",
        "CREATE TABLE roles ("
        " account TEXT NOT NULL, name TEXT NOT NULL, folded TEXT NOT NULL, path TEXT NOT NULL,"
        " arn TEXT NOT NULL UNIQUE, role_id TEXT, trust_policy TEXT,"
        " tags TEXT NOT NULL DEFAULT '{}', boundary TEXT,"
        " max_session_duration INTEGER NOT NULL DEFAULT 3600,"
        " arn_partition TEXT NOT NULL DEFAULT 'aws', PRIMARY KEY (account, folded))",
        "CREATE INDEX roles_by_boundary ON roles (boundary)",
        "CREATE TABLE inline_policies ("
        " owner TEXT NOT NULL, name TEXT NOT NULL, document TEXT NOT NULL,"
        " ordinal INTEGER NOT NULL, PRIMARY KEY (owner, name))",
        "CREATE TABLE managed_policies ("
        " arn TEXT PRIMARY KEY, account TEXT, name TEXT NOT NULL, path TEXT NOT NULL,"
        " policy_id TEXT, default_version TEXT NOT NULL)",
        "CREATE INDEX managed_policies_by_account ON managed_policies (account)",
        "CREATE TABLE policy_versions ("
        " arn TEXT NOT NULL, version_id TEXT NOT NULL, document TEXT NOT NULL,"
        " ordinal INTEGER NOT NULL, PRIMARY KEY (arn, version_id))",
        "CREATE TABLE attachments ("
        " owner TEXT NOT NULL, policy_arn TEXT NOT NULL, ordinal INTEGER NOT NULL,"
        " PRIMARY KEY (owner, policy_arn))",
        "CREATE INDEX attachments_by_policy ON attachments (policy_arn)",
        "CREATE TABLE repositories ("
        " arn TEXT PRIMARY KEY, account TEXT NOT NULL, region TEXT NOT NULL, name TEXT NOT NULL,"
        " tags TEXT NOT NULL DEFAULT '{}', policy TEXT)",
        "CREATE INDEX repositories_by_account ON repositories (account)",
        "CREATE TABLE organization ("
        " singleton INTEGER PRIMARY KEY CHECK (singleton = 1), tree TEXT NOT NULL)",
        # what each revision touched, so every replica catches up incrementally
        "CREATE TABLE changes ("
        " revision BIGINT PRIMARY KEY, principals TEXT NOT NULL, repositories TEXT NOT NULL,"
        " organization BOOLEAN NOT NULL, everything BOOLEAN NOT NULL,"
        " sessions TEXT NOT NULL DEFAULT '[]', credentials BOOLEAN NOT NULL DEFAULT FALSE)",
        # temporary credentials: one session per ARN, ended ones kept as tombstones
        "CREATE TABLE sessions ("
        " arn TEXT PRIMARY KEY, session_id TEXT NOT NULL UNIQUE, base TEXT NOT NULL,"
        " caller TEXT NOT NULL, issued_at DOUBLE PRECISION NOT NULL,"
        " expires_at DOUBLE PRECISION NOT NULL, policy TEXT, tags TEXT NOT NULL DEFAULT '{}',"
        " source_identity TEXT, ended TEXT, ended_at DOUBLE PRECISION)",
        "CREATE INDEX sessions_by_expiry ON sessions (expires_at)",
        "CREATE TABLE signing_keys ("
        " key_id TEXT PRIMARY KEY, secret BYTEA NOT NULL, created_at DOUBLE PRECISION NOT NULL,"
        " retired_at DOUBLE PRECISION)",
        "CREATE TABLE revoked_tokens ("
        " token_id TEXT PRIMARY KEY, expires_at DOUBLE PRECISION NOT NULL)",
    ),
    # 2: the keys that sign registry bearer tokens (SQLite's migration 4)
    (
        "CREATE TABLE token_keys ("
        " key_id TEXT PRIMARY KEY, algorithm TEXT NOT NULL, private_key TEXT NOT NULL,"
        " certificate TEXT NOT NULL, created_at DOUBLE PRECISION NOT NULL,"
        " retired_at DOUBLE PRECISION, trusted_until DOUBLE PRECISION)",
    ),
)

SCHEMA_VERSION = len(MIGRATIONS)

_CONCURRENT_CREATE = (
    psycopg.IntegrityError,
    psycopg.errors.DuplicateTable,
    psycopg.errors.DuplicateObject,
)
"""What a CREATE TABLE IF NOT EXISTS racing another replica's may raise."""


def migrate(connections: Connections, *, create: bool) -> None:
    """Bring the database's schema up to `SCHEMA_VERSION`.

    Without `create` a database without Dockgate's schema raises `MissingStoreError` and nothing
    is made (the read-only commands must not leave an empty store behind a typo).
    """
    where = f"store `{connections.settings.shown}`"
    if not create:
        with connections.transaction("BEGIN READ ONLY") as cursor:
            if _version(cursor) is None:
                raise MissingStoreError(f"{where} does not exist: no dockgate schema there")
    _create_version_table(connections)
    with connections.transaction("BEGIN") as cursor:
        # the row lock serializes replicas migrating at once
        row = cursor.execute(
            "SELECT version FROM schema_version WHERE singleton = 1 FOR UPDATE"
        ).fetchone()
        version = 0 if row is None else int(row[0])
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"{where} has schema {version}, newer than this dockgate ({SCHEMA_VERSION})"
            )
        for number in range(version, SCHEMA_VERSION):
            for statement in MIGRATIONS[number]:
                cursor.execute(statement)
        cursor.execute(
            "UPDATE schema_version SET version = %s WHERE singleton = 1", (SCHEMA_VERSION,)
        )


def _version(cursor: Cursor) -> int | None:
    """The schema version, None when the database has no Dockgate schema."""
    found = cursor.execute(
        "SELECT 1 FROM information_schema.tables"
        " WHERE table_schema = current_schema() AND table_name = 'schema_version'"
    ).fetchone()
    if found is None:
        return None
    row = cursor.execute("SELECT version FROM schema_version WHERE singleton = 1").fetchone()
    return None if row is None else int(row[0])


def _create_version_table(connections: Connections) -> None:
    """`schema_version` with its one row, made once; two replicas making it at once is fine."""
    for attempt in range(3):
        try:
            with connections.transaction("BEGIN") as cursor:
                cursor.execute(
                    "CREATE TABLE IF NOT EXISTS schema_version ("
                    " singleton INTEGER PRIMARY KEY CHECK (singleton = 1),"
                    " version INTEGER NOT NULL)"
                )
                cursor.execute(
                    "INSERT INTO schema_version (singleton, version) VALUES (1, 0)"
                    " ON CONFLICT (singleton) DO NOTHING"
                )
            return
        except (StoreError, *_CONCURRENT_CREATE) as problem:
            # PostgreSQL's IF NOT EXISTS can still collide with a concurrent CREATE (a unique
            # violation in its catalog, or "already exists" for the table or its row type,
            # raised as it is or as the StoreError it became): the other one made it, look again
            raced = isinstance(problem, _CONCURRENT_CREATE) or isinstance(
                problem.__context__, _CONCURRENT_CREATE
            )
            if attempt == 2 or not raced:
                raise
