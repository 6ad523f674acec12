"""Moving a fleet between backends (issue 12, item 12): `dockgate export --store A | dockgate
import - --store B`, SQLite to PostgreSQL and back, as the README shows it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.server.store.fleet_bundles import realistic_bundle


def _dockgate(*argv: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dockgate_server.cli", *argv],
        input=stdin,
        capture_output=True,
        text=True,
        check=False,
        env={key: value for key, value in os.environ.items() if key != "DOCKGATE_STORE"},
        timeout=120,
    )


def _pipe(source: str, target: str) -> dict[str, Any]:
    """`dockgate export --store SOURCE | dockgate import - --store TARGET`; what import says."""
    exported = subprocess.Popen(
        [sys.executable, "-m", "dockgate_server.cli", "export", "--store", source],
        stdout=subprocess.PIPE,
    )
    imported = subprocess.run(
        [sys.executable, "-m", "dockgate_server.cli", "import", "-", "--store", target],
        stdin=exported.stdout,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert exported.stdout is not None
    exported.stdout.close()
    assert exported.wait(timeout=120) == 0
    assert imported.returncode == 0, imported.stderr
    said: dict[str, Any] = json.loads(imported.stdout)
    return said


def _export(store: str) -> dict[str, Any]:
    done = _dockgate("export", "--store", store)
    assert done.returncode == 0, done.stderr
    bundle: dict[str, Any] = json.loads(done.stdout)
    return bundle


def test_a_fleet_moves_from_sqlite_to_postgresql_and_back(
    tmp_path: Path, postgres_url: str
) -> None:
    sqlite = str(tmp_path / "store.sqlite3")
    (tmp_path / "fleet.json").write_text(json.dumps(realistic_bundle()))
    loaded = _dockgate("import", str(tmp_path / "fleet.json"), "--store", sqlite)
    assert loaded.returncode == 0, loaded.stderr
    original = _export(sqlite)

    said = _pipe(sqlite, postgres_url)
    assert said["revision"] == 1
    assert _export(postgres_url) == original

    back = f"sqlite://{tmp_path / 'back.sqlite3'}"  # sqlite:///tmp/...: the path is absolute
    assert _pipe(postgres_url, back)["revision"] == 1
    assert _export(back) == original


def test_exporting_a_store_that_is_not_there_names_it(tmp_path: Path) -> None:
    url = "postgresql://postgres@127.0.0.1:1/nowhere?timeout=1"
    done = _dockgate("export", "--store", url)
    assert done.returncode != 0
    assert done.stderr.startswith(f"dockgate: store `{url}`: unavailable: ")
    assert "Traceback" not in done.stderr
