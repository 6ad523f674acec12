"""A throw-away PostgreSQL cluster: started in a temporary folder on 127.0.0.1, stopped at the end.

For the tests and the replica benchmark. Debian's server programs (`initdb`, `pg_ctl`) live in
the folder `pg_config --bindir` prints, off PATH. PostgreSQL refuses to run as root, so under
root they run as the `postgres` user in a folder it owns; otherwise as the current user. The
cluster listens on a free 127.0.0.1 port only, trusts connections from there (and its own socket
folder) and skips fsync: the data is thrown away.
"""

from __future__ import annotations

import itertools
import os
import pwd
import shutil
import socket
import stat
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

import psycopg

__all__ = ["PostgresCluster", "server_bindir"]

_SERVICE_USER = "postgres"
_START_TIMEOUT = 60
"""seconds pg_ctl waits for the server to start or stop (room for a slow CI machine)"""


def server_bindir() -> Path:
    """The folder of `initdb` and `pg_ctl`; a one-line reason when PostgreSQL is not installed."""
    pg_config = shutil.which("pg_config")
    if pg_config is None:
        raise RuntimeError(
            "postgres cluster: `pg_config` not found: install the `postgresql` package"
        )
    bindir = Path(
        subprocess.run(
            [pg_config, "--bindir"], capture_output=True, text=True, check=True
        ).stdout.strip()
    )
    if not (bindir / "initdb").is_file():
        raise RuntimeError(
            f"postgres cluster: no `initdb` in `{bindir}`: install the `postgresql` package"
        )
    return bindir


class PostgresCluster:
    """One PostgreSQL server of the tests' own, in a temporary folder, on 127.0.0.1."""

    def __init__(self) -> None:
        self.bindir = server_bindir()
        self.port = _free_port()
        self.host = "127.0.0.1"
        self._as_service_user = os.geteuid() == 0
        self.root = Path(tempfile.mkdtemp(prefix="dockgate-postgres-"))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self._names = itertools.count(1)
        self.running = False
        if self._as_service_user:
            _let_traverse(self.root)
            user = pwd.getpwnam(_SERVICE_USER)
            os.chown(self.root, user.pw_uid, user.pw_gid)
        try:
            self._initdb()
        except BaseException:
            shutil.rmtree(self.root, ignore_errors=True)
            raise

    # -- life -------------------------------------------------------------------------------

    def start(self) -> None:
        self._run(
            "pg_ctl",
            "-D",
            str(self.data),
            "-l",
            str(self.log),
            "-w",
            "-t",
            str(_START_TIMEOUT),
            "start",
        )
        self.running = True

    def stop(self, *, immediate: bool = False) -> None:
        """Stop the server: `fast` rolls back open transactions and closes every connection;
        `immediate` ends it abruptly, as a crash would (recovery runs on the next start)."""
        self._run(
            "pg_ctl",
            "-D",
            str(self.data),
            "-m",
            "immediate" if immediate else "fast",
            "-w",
            "-t",
            str(_START_TIMEOUT),
            "stop",
        )
        self.running = False

    def crash_during_insert(self, writing: Callable[[], bool]) -> None:
        """Stop abruptly (as `stop(immediate=True)`) once some transaction is inserting rows,
        or at once if `writing()` turns false first: how a test kills the store mid-import."""
        with self.connect() as watcher:
            while writing():
                row = watcher.execute(
                    "SELECT 1 FROM pg_stat_activity WHERE backend_xid IS NOT NULL"
                    " AND query LIKE 'INSERT INTO%%'"
                ).fetchone()
                if row is not None:
                    break
        self.stop(immediate=True)

    def restart(self) -> None:
        if self.running:
            self.stop()
        self.start()

    def destroy(self) -> None:
        """Stop the server if it runs and remove its folder."""
        try:
            if self.running:
                self.stop()
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> PostgresCluster:
        try:
            self.start()
        except BaseException:
            self.destroy()
            raise
        return self

    def __exit__(self, *_: object) -> None:
        self.destroy()

    # -- databases --------------------------------------------------------------------------

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{_SERVICE_USER}@{self.host}:{self.port}/{database}"

    def create_database(self) -> str:
        """A new empty database (from template0, so nothing a test added elsewhere); its URL."""
        name = f"dockgate_{os.getpid()}_{next(self._names)}"
        with psycopg.connect(self.url(), autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{name}" TEMPLATE template0')
        return self.url(name)

    def connect(self, database: str = "postgres") -> psycopg.Connection[tuple[object, ...]]:
        """An autocommit superuser connection (to look at or interfere with a store)."""
        return psycopg.connect(self.url(database), autocommit=True)

    def log_text(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return ""

    # -- helpers ----------------------------------------------------------------------------

    def _initdb(self) -> None:
        self._run(
            "initdb",
            "-D",
            str(self.data),
            "-U",
            _SERVICE_USER,
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C",
            "--no-sync",
        )
        # trust from 127.0.0.1 and the cluster's own socket folder only: nothing else connects
        (self.data / "pg_hba.conf").write_text(
            "local all all trust\nhost all all 127.0.0.1/32 trust\n"
        )
        settings = {
            "listen_addresses": "'127.0.0.1'",
            "port": str(self.port),
            "unix_socket_directories": f"'{self.data}'",
            "fsync": "off",
            "full_page_writes": "off",
            "max_connections": "200",
            "shared_buffers": "'32MB'",
            "log_min_messages": "'warning'",
        }
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write("".join(f"{key} = {value}\n" for key, value in settings.items()))

    def _run(self, program: str, *arguments: str) -> None:
        command = [str(self.bindir / program), *arguments]
        if self._as_service_user:
            command = ["runuser", "-u", _SERVICE_USER, "--", *command]
        done = subprocess.run(command, cwd=self.root, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(
                f"postgres cluster: `{program}` failed ({done.returncode}): "
                f"{done.stderr.strip() or done.stdout.strip()}\n{self.log_text()}"
            )


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _let_traverse(folder: Path) -> None:
    """Let the service user reach `folder`: add search (x, never read) to any parent lacking it."""
    for parent in reversed(folder.parents):
        mode = parent.stat().st_mode
        if not mode & stat.S_IXOTH:
            parent.chmod(mode | stat.S_IXOTH)
