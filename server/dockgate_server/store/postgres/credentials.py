"""Temporary credentials in PostgreSQL: sessions, login-token signing keys, revoked tokens, and
the keys that sign registry bearer tokens.

Every write goes through the store's one transaction and revision and names what it touched in
the change log, so every replica sees a new session, a revocation or a new key as it sees any
other write: a password one replica hands out is accepted by all of them.
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
from dockgate_server.store.postgres.base import PostgresBase
from dockgate_server.store.rows import (
    SESSION_COLUMNS,
    session_from_row,
    session_row,
    signing_keys_from_rows,
)
from dockgate_server.store.token_rows import (
    TOKEN_KEY_COLUMNS,
    token_key_row,
    token_keys_from_rows,
)

__all__ = ["CredentialTables"]


class CredentialTables(PostgresBase):
    """The credential tables of the store (same transaction and revision as the fleet)."""

    # -- sessions ---------------------------------------------------------------------------

    def put_session(self, session: Session) -> Change:
        """Store `session`; one with the same ARN is replaced (its login tokens stop working)."""
        with self._write() as touched, self._reads() as cursor:
            cursor.execute(
                f"INSERT INTO sessions ({SESSION_COLUMNS})"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
                " ON CONFLICT (arn) DO UPDATE SET session_id = EXCLUDED.session_id,"
                " base = EXCLUDED.base, caller = EXCLUDED.caller,"
                " issued_at = EXCLUDED.issued_at, expires_at = EXCLUDED.expires_at,"
                " policy = EXCLUDED.policy, tags = EXCLUDED.tags,"
                " source_identity = EXCLUDED.source_identity, ended = EXCLUDED.ended,"
                " ended_at = EXCLUDED.ended_at",
                session_row(session),
            )
            touched.sessions.add(session.arn)
        return self._changed(touched)

    def revoke_session(self, arn: str, now: float) -> Change:
        """End a live session now: its ARN is refused and its login tokens stop working."""
        with self._write() as touched, self._reads() as cursor:
            cursor.execute(
                "UPDATE sessions SET ended = 'revoked', ended_at = %s, policy = NULL, tags = '{}'"
                " WHERE arn = %s AND ended IS NULL",
                (now, arn),
            )
            if cursor.rowcount == 0:
                raise NotFound(f"session `{arn}` does not exist or has ended")
            touched.sessions.add(arn)
        return self._changed(touched)

    def load_session(self, arn: str) -> Session | None:
        found = self._sessions_of([arn])
        return found[0] if found else None

    def load_sessions(self, *, live_only: bool = False) -> list[Session]:
        return self._sessions("WHERE ended IS NULL" if live_only else "", ())

    def load_credentials(self) -> Credentials:
        with self.reading():
            return Credentials(
                tuple(self.load_sessions()), tuple(self.signing_keys()), self.revoked_tokens()
            )

    def _sessions_of(self, arns: Sequence[str]) -> list[Session]:
        if not arns:
            return []
        return self._sessions("WHERE arn = ANY(%s)", (list(arns),))

    def _sessions(self, where: str, arguments: tuple[Any, ...]) -> list[Session]:
        with self._reads() as cursor:
            rows = cursor.execute(
                f"SELECT {SESSION_COLUMNS} FROM sessions {where}", arguments
            ).fetchall()
        # sorted here, not by the database's collation: the same order as SQLite's
        return [session_from_row(row) for row in sorted(rows)]

    # -- signing keys and revocations -------------------------------------------------------

    def add_signing_key(self, key: SigningKey) -> Change:
        """Make `key` the current signing key; the keys before it are retired (they still
        verify the tokens they signed until the sweep drops them)."""
        with self._write() as touched, self._reads() as cursor:
            cursor.execute(
                "UPDATE signing_keys SET retired_at = %s WHERE retired_at IS NULL",
                (key.created_at,),
            )
            cursor.execute(
                "INSERT INTO signing_keys (key_id, secret, created_at, retired_at)"
                " VALUES (%s, %s, %s, NULL)",
                (key.key_id, key.secret, key.created_at),
            )
            touched.credentials = True
        return self._changed(touched)

    def signing_keys(self) -> list[SigningKey]:
        """Every key that still verifies, the current one (not retired) last."""
        with self._reads() as cursor:
            rows = cursor.execute(
                "SELECT key_id, secret, created_at, retired_at FROM signing_keys"
            ).fetchall()
        return signing_keys_from_rows(rows)

    def revoke_token(self, token_id: str, expires_at: float) -> Change:
        with self._write() as touched, self._reads() as cursor:
            cursor.execute(
                "INSERT INTO revoked_tokens (token_id, expires_at) VALUES (%s, %s)"
                " ON CONFLICT (token_id) DO UPDATE SET expires_at = EXCLUDED.expires_at",
                (token_id, expires_at),
            )
            touched.credentials = True
        return self._changed(touched)

    def revoked_tokens(self) -> frozenset[str]:
        with self._reads() as cursor:
            return frozenset(
                row[0] for row in cursor.execute("SELECT token_id FROM revoked_tokens")
            )

    # -- registry token-signing keys -------------------------------------------------------

    def rotate_token_key(self, key: TokenKey, grace: float) -> Change:
        """Make `key` the current token-signing key; the one before is retired, and trusted
        (it verifies and stays in the bundle) for `grace` seconds more. Every replica reads the
        same keys: a token one replica signs verifies on all of them."""
        with self._write() as touched, self._reads() as cursor:
            found = cursor.execute(
                "SELECT 1 FROM token_keys WHERE key_id = %s", (key.key_id,)
            ).fetchone()
            if found is not None:
                raise Refused(f"token key `{key.key_id}` is stored already")
            cursor.execute(
                "UPDATE token_keys SET retired_at = %s, trusted_until = %s"
                " WHERE retired_at IS NULL",
                (key.created_at, key.created_at + grace),
            )
            cursor.execute("DELETE FROM token_keys WHERE trusted_until <= %s", (key.created_at,))
            cursor.execute(
                f"INSERT INTO token_keys ({TOKEN_KEY_COLUMNS})"
                " VALUES (%s, %s, %s, %s, %s, NULL, NULL)",
                token_key_row(key)[:5],
            )
            touched.credentials = True
        return self._changed(touched)

    def token_keys(self) -> list[TokenKey]:
        """Every stored token-signing key, the current one (not retired) last."""
        with self._reads() as cursor:
            rows = cursor.execute(f"SELECT {TOKEN_KEY_COLUMNS} FROM token_keys").fetchall()
        return token_keys_from_rows(rows)

    # -- sweeping ---------------------------------------------------------------------------

    def sweep(self, now: float, key_lifetime: float) -> Change | None:
        """End expired sessions (a tombstone without policy or tags), drop tombstones older
        than `ENDED_SESSION_MEMORY`, revocations of tokens that have expired anyway, and keys
        retired more than `key_lifetime` ago (no token they signed is still valid). None when
        there was nothing to do: the revision moves only when something changed."""
        forget = now - ENDED_SESSION_MEMORY
        with self._reads() as cursor:
            expired = [
                row[0]
                for row in cursor.execute(
                    "SELECT arn FROM sessions WHERE (ended IS NULL AND expires_at <= %s)"
                    " OR ended_at <= %s",
                    (now, forget),
                )
            ]
            row = cursor.execute(
                "SELECT (SELECT COUNT(*) FROM revoked_tokens WHERE expires_at <= %s)"
                " + (SELECT COUNT(*) FROM signing_keys WHERE retired_at <= %s)",
                (now, now - key_lifetime),
            ).fetchone()
            stale = 0 if row is None else int(row[0])
        if not expired and not stale:
            return None
        with self._write() as touched, self._reads() as cursor:
            # conditions checked again inside the transaction: a session renewed meanwhile (by
            # this replica or another) stays as it is
            ended = cursor.execute(
                "UPDATE sessions SET ended = 'expired', ended_at = expires_at, policy = NULL,"
                " tags = '{}' WHERE arn = ANY(%s) AND ended IS NULL AND expires_at <= %s"
                " RETURNING arn",
                (expired, now),
            ).fetchall()
            forgotten = cursor.execute(
                "DELETE FROM sessions WHERE arn = ANY(%s) AND ended_at <= %s RETURNING arn",
                (expired, forget),
            ).fetchall()
            touched.sessions.update(row[0] for row in [*ended, *forgotten])
            cursor.execute("DELETE FROM revoked_tokens WHERE expires_at <= %s", (now,))
            cursor.execute("DELETE FROM signing_keys WHERE retired_at <= %s", (now - key_lifetime,))
            touched.credentials = bool(stale)
        return self._changed(touched)
