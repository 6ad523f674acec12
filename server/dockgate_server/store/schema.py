"""The SQLite schema, as numbered migrations: a store opens at any older version and moves up."""

from __future__ import annotations

__all__ = ["MIGRATIONS", "SCHEMA_VERSION"]

MIGRATIONS: tuple[str, ...] = (
    # 1: the fleet. Documents and tags are JSON text, validated before they are written.
    """
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    INSERT INTO meta (key, value) VALUES ('revision', '0');
    CREATE TABLE accounts (account TEXT PRIMARY KEY);
    CREATE TABLE users (
        account TEXT NOT NULL, name TEXT NOT NULL, path TEXT NOT NULL, arn TEXT NOT NULL UNIQUE,
        user_id TEXT, tags TEXT NOT NULL DEFAULT '{}', boundary TEXT,
        partition TEXT NOT NULL DEFAULT 'aws', PRIMARY KEY (account, name));
    CREATE TABLE groups (
        account TEXT NOT NULL, name TEXT NOT NULL, path TEXT NOT NULL, arn TEXT NOT NULL UNIQUE,
        group_id TEXT, partition TEXT NOT NULL DEFAULT 'aws', PRIMARY KEY (account, name));
    CREATE TABLE group_members (
        account TEXT NOT NULL, group_name TEXT NOT NULL, user_name TEXT NOT NULL,
        PRIMARY KEY (account, group_name, user_name));
    CREATE TABLE roles (
        account TEXT NOT NULL, name TEXT NOT NULL, folded TEXT NOT NULL, path TEXT NOT NULL,
        arn TEXT NOT NULL UNIQUE, role_id TEXT, trust_policy TEXT, tags TEXT NOT NULL DEFAULT '{}',
        boundary TEXT, max_session_duration INTEGER NOT NULL DEFAULT 3600,
        partition TEXT NOT NULL DEFAULT 'aws', PRIMARY KEY (account, folded));
    CREATE TABLE inline_policies (
        owner TEXT NOT NULL, name TEXT NOT NULL, document TEXT NOT NULL,
        PRIMARY KEY (owner, name));
    CREATE TABLE managed_policies (
        arn TEXT PRIMARY KEY, account TEXT, name TEXT NOT NULL, path TEXT NOT NULL,
        policy_id TEXT, default_version TEXT NOT NULL);
    CREATE TABLE policy_versions (
        arn TEXT NOT NULL, version_id TEXT NOT NULL, document TEXT NOT NULL,
        PRIMARY KEY (arn, version_id));
    CREATE TABLE attachments (
        owner TEXT NOT NULL, policy_arn TEXT NOT NULL, PRIMARY KEY (owner, policy_arn));
    CREATE INDEX attachments_by_policy ON attachments (policy_arn);
    CREATE TABLE repositories (
        arn TEXT PRIMARY KEY, account TEXT NOT NULL, region TEXT NOT NULL, name TEXT NOT NULL,
        tags TEXT NOT NULL DEFAULT '{}', policy TEXT);
    CREATE TABLE organization (singleton INTEGER PRIMARY KEY CHECK (singleton = 1), tree TEXT NOT NULL);
    """,
    # 2: what each revision touched, so every process serving decisions catches up incrementally
    """
    CREATE TABLE changes (
        revision INTEGER PRIMARY KEY, principals TEXT NOT NULL, repositories TEXT NOT NULL,
        organization INTEGER NOT NULL, everything INTEGER NOT NULL);
    """,
    # 3: temporary credentials. One session per session ARN (a new one with the same ARN
    # replaces it); an ended session stays as a tombstone (`ended`) so that its ARN keeps being
    # refused; login-token signing keys; revoked login tokens until they would expire.
    """
    CREATE TABLE sessions (
        arn TEXT PRIMARY KEY, session_id TEXT NOT NULL UNIQUE, base TEXT NOT NULL,
        caller TEXT NOT NULL, issued_at REAL NOT NULL, expires_at REAL NOT NULL, policy TEXT,
        tags TEXT NOT NULL DEFAULT '{}', source_identity TEXT, ended TEXT, ended_at REAL);
    CREATE INDEX sessions_by_expiry ON sessions (expires_at);
    CREATE TABLE signing_keys (
        key_id TEXT PRIMARY KEY, secret BLOB NOT NULL, created_at REAL NOT NULL, retired_at REAL);
    CREATE TABLE revoked_tokens (token_id TEXT PRIMARY KEY, expires_at REAL NOT NULL);
    ALTER TABLE changes ADD COLUMN sessions TEXT NOT NULL DEFAULT '[]';
    ALTER TABLE changes ADD COLUMN credentials INTEGER NOT NULL DEFAULT 0;
    """,
    # 4: the keys that sign registry bearer tokens (JWT): PEM private key and certificate, the
    # current one without `retired_at`, a retired one trusted until `trusted_until`
    """
    CREATE TABLE token_keys (
        key_id TEXT PRIMARY KEY, algorithm TEXT NOT NULL, private_key TEXT NOT NULL,
        certificate TEXT NOT NULL, created_at REAL NOT NULL, retired_at REAL, trusted_until REAL);
    """,
)

SCHEMA_VERSION = len(MIGRATIONS)
