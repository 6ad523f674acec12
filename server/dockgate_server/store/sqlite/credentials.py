"""Temporary credentials in SQLite: sessions, login-token signing keys, revoked tokens, and the
keys that sign registry bearer tokens.

Every write goes through the store's one transaction and revision, and names what it touched in
the change log, so every process serving decisions sees a new session or key within a poll.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from dockgate_server.store.errors import NotFound, Refused
from dockgate_server.store.model import (
    ENDED_SESSION_MEMORY,
    Change,
    Credentials,
    Session,
    SigningKey,
    TokenKey,
)
from dockgate_server.store.rows import (
    SESSION_COLUMNS,
    session_from_row,
    session_row,
    signing_keys_from_rows,
)
from dockgate_server.store.sqlite.base import SqliteBase
from dockgate_server.store.token_rows import (
    TOKEN_KEY_COLUMNS,
    token_key_row,
    token_keys_from_rows,
)

__all__ = ["CredentialTables"]

_CHUNK = 400
"""ARNs per `IN (…)` list: far below SQLite's limit on bound variables"""


class CredentialTables(SqliteBase):
    """The credential tables of the store (same connection, same transaction and revision)."""

    # -- sessions ---------------------------------------------------------------------------

    def put_session(self, session: Session) -> Change:
        """Store `session`; one with the same ARN is replaced (its login tokens stop working)."""
        with self._write() as touched:
            self._db.execute(
                f"INSERT OR REPLACE INTO sessions ({SESSION_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                session_row(session),
            )
            touched.sessions.add(session.arn)
        return self._changed(touched)

    def revoke_session(self, arn: str, now: float) -> Change:
        """End a live session now: its ARN is refused and its login tokens stop working."""
        with self._write() as touched:
            cursor = self._db.execute(
                "UPDATE sessions SET ended = 'revoked', ended_at = ?, policy = NULL, tags = '{}'"
                " WHERE arn = ? AND ended IS NULL",
                (now, arn),
            )
            if cursor.rowcount == 0:
                raise NotFound(f"session `{arn}` does not exist or has ended")
            touched.sessions.add(arn)
        return self._changed(touched)

    def load_session(self, arn: str) -> Session | None:
        rows = self._sessions("WHERE arn = ?", (arn,))
        return rows[0] if rows else None

    def load_sessions(self, *, live_only: bool = False) -> list[Session]:
        where = "WHERE ended IS NULL ORDER BY arn" if live_only else "ORDER BY arn"
        return self._sessions(where, ())

    def load_credentials(self) -> Credentials:
        with self.reading():
            return Credentials(
                tuple(self.load_sessions()), tuple(self.signing_keys()), self.revoked_tokens()
            )

    def _sessions_of(self, arns: Sequence[str]) -> list[Session]:
        found: list[Session] = []
        for start in range(0, len(arns), _CHUNK):
            chunk = tuple(arns[start : start + _CHUNK])
            found += self._sessions(f"WHERE arn IN ({', '.join('?' * len(chunk))})", chunk)
        return found

    def _sessions(self, where: str, arguments: tuple[Any, ...]) -> list[Session]:
        rows = self._db.execute(f"SELECT {SESSION_COLUMNS} FROM sessions {where}", arguments)
        return [session_from_row(row) for row in rows]

    # -- signing keys and revocations -------------------------------------------------------

    def add_signing_key(self, key: SigningKey) -> Change:
        """Make `key` the current signing key; the keys before it are retired (they still
        verify the tokens they signed until the sweep drops them)."""
        with self._write() as touched:
            self._db.execute(
                "UPDATE signing_keys SET retired_at = ? WHERE retired_at IS NULL", (key.created_at,)
            )
            self._db.execute(
                "INSERT INTO signing_keys (key_id, secret, created_at, retired_at) VALUES (?, ?, ?, NULL)",
                (key.key_id, key.secret, key.created_at),
            )
            touched.credentials = True
        return self._changed(touched)

    def signing_keys(self) -> list[SigningKey]:
        """Every key that still verifies, the current one (not retired) last."""
        rows = self._db.execute("SELECT key_id, secret, created_at, retired_at FROM signing_keys")
        return signing_keys_from_rows(rows)

    def revoke_token(self, token_id: str, expires_at: float) -> Change:
        with self._write() as touched:
            self._db.execute(
                "INSERT OR REPLACE INTO revoked_tokens (token_id, expires_at) VALUES (?, ?)",
                (token_id, expires_at),
            )
            touched.credentials = True
        return self._changed(touched)

    def revoked_tokens(self) -> frozenset[str]:
        return frozenset(row[0] for row in self._db.execute("SELECT token_id FROM revoked_tokens"))

    # -- registry token-signing keys -------------------------------------------------------

    def rotate_token_key(self, key: TokenKey, grace: float) -> Change:
        """Make `key` the current token-signing key; the one before is retired, and trusted
        (it verifies and stays in the bundle) for `grace` seconds more."""
        with self._write() as touched:
            if self._db.execute(
                "SELECT 1 FROM token_keys WHERE key_id = ?", (key.key_id,)
            ).fetchone():
                raise Refused(f"token key `{key.key_id}` is stored already")
            self._db.execute(
                "UPDATE token_keys SET retired_at = ?, trusted_until = ? WHERE retired_at IS NULL",
                (key.created_at, key.created_at + grace),
            )
            self._db.execute("DELETE FROM token_keys WHERE trusted_until <= ?", (key.created_at,))
            self._db.execute(
                f"INSERT INTO token_keys ({TOKEN_KEY_COLUMNS}) VALUES (?, ?, ?, ?, ?, NULL, NULL)",
                token_key_row(key)[:5],
            )
            touched.credentials = True
        return self._changed(touched)

    def token_keys(self) -> list[TokenKey]:
        """Every stored token-signing key, the current one (not retired) last."""
        with self._failures():
            rows = self._db.execute(f"SELECT {TOKEN_KEY_COLUMNS} FROM token_keys").fetchall()
        return token_keys_from_rows(rows)

    # -- sweeping ---------------------------------------------------------------------------

    def sweep(self, now: float, key_lifetime: float) -> Change | None:
        """End expired sessions (a tombstone without policy or tags), drop tombstones older
        than `ENDED_SESSION_MEMORY`, revocations of tokens that have expired anyway, and keys
        retired more than `key_lifetime` ago (no token they signed is still valid). None when
        there was nothing to do: the revision moves only when something changed."""
        forget = now - ENDED_SESSION_MEMORY
        with self.reading():
            expired = [
                row[0]
                for row in self._db.execute(
                    "SELECT arn FROM sessions WHERE (ended IS NULL AND expires_at <= ?)"
                    " OR ended_at <= ?",
                    (now, forget),
                )
            ]
            stale = self._db.execute(
                "SELECT (SELECT COUNT(*) FROM revoked_tokens WHERE expires_at <= ?)"
                " + (SELECT COUNT(*) FROM signing_keys WHERE retired_at <= ?)",
                (now, now - key_lifetime),
            ).fetchone()[0]
        if not expired and not stale:
            return None
        with self._write() as touched:
            for arn in expired:
                # conditions checked again inside the transaction: a session renewed meanwhile
                # stays as it is
                ended = self._db.execute(
                    "UPDATE sessions SET ended = 'expired', ended_at = expires_at, policy = NULL,"
                    " tags = '{}' WHERE arn = ? AND ended IS NULL AND expires_at <= ?",
                    (arn, now),
                )
                forgotten = self._db.execute(
                    "DELETE FROM sessions WHERE arn = ? AND ended_at <= ?", (arn, forget)
                )
                if ended.rowcount or forgotten.rowcount:
                    touched.sessions.add(arn)
            self._db.execute("DELETE FROM revoked_tokens WHERE expires_at <= ?", (now,))
            self._db.execute(
                "DELETE FROM signing_keys WHERE retired_at <= ?", (now - key_lifetime,)
            )
            touched.credentials = bool(stale)
        return self._changed(touched)
