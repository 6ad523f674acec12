"""The seams of the design hold: who may import whom, read from the import statements."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent / "server" / "dockgate_server"
BACKENDS = ("dockgate_server.store.sqlite", "dockgate_server.store.postgres")
DOORS = ("dockgate_server.service", "dockgate_server.frontends")


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Every module `path` imports, as absolute names (relative imports resolved)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = (
        _module_name(path).rsplit(".", 1)[0] if path.name != "__init__.py" else _module_name(path)
    )
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, *([base] if base else [])])
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def _modules(folder: str = "") -> list[Path]:
    return sorted((ROOT / folder).rglob("*.py"))


def _names(imports: set[str], prefixes: tuple[str, ...]) -> list[str]:
    return sorted(i for i in imports if any(i == p or i.startswith(p + ".") for p in prefixes))


def _within(path: Path, prefixes: tuple[str, ...]) -> bool:
    name = _module_name(path)
    return any(name == p or name.startswith(p + ".") for p in prefixes)


@pytest.mark.parametrize("path", _modules("engine"), ids=lambda p: p.name)
def test_the_engine_imports_no_backend_door_or_grpc(path: Path) -> None:
    forbidden = (
        *BACKENDS,
        *DOORS,
        "dockgate_server.store.port",
        "dockgate_server.registry",
        "grpc",
        "dockgate.v1",
        "sqlite3",
        "psycopg",
    )
    assert _names(_imports(path), forbidden) == []


def test_only_the_port_names_a_backend() -> None:
    offenders = {
        _module_name(path): _names(_imports(path), BACKENDS)
        for path in _modules()
        if not _within(path, BACKENDS) and path != ROOT / "store" / "port.py"
    }
    assert {name: found for name, found in offenders.items() if found} == {}


def test_the_backends_do_not_import_each_other() -> None:
    for path in _modules("store/sqlite"):
        assert _names(_imports(path), ("dockgate_server.store.postgres",)) == []
    for path in _modules("store/postgres"):
        assert _names(_imports(path), ("dockgate_server.store.sqlite",)) == []


@pytest.mark.parametrize("path", _modules("registry"), ids=lambda p: p.name)
def test_the_registry_imports_no_door(path: Path) -> None:
    assert _names(_imports(path), DOORS) == []


RUNTIME = ROOT / "frontends" / "runtime.py"
"""the one module of `frontends` that holds the decision state: the doors get it as a Runtime"""
BEHIND_THE_RUNTIME = (
    "dockgate_server.store",
    "dockgate_server.engine.snapshot",
    "dockgate_server.engine.cache",
    "dockgate_server.engine.build",
    "dockgate_server.service.state",
    "dockgate_server.service.follow",
    "sqlite3",
    "psycopg",
)


@pytest.mark.parametrize(
    "path", [p for p in _modules("frontends") if p != RUNTIME], ids=lambda p: p.name
)
def test_the_doors_reach_the_store_and_snapshot_only_through_the_runtime(path: Path) -> None:
    assert _names(_imports(path), BEHIND_THE_RUNTIME) == []


@pytest.mark.parametrize(
    "path",
    [p for p in _modules("frontends") if p.name not in ("app.py", "runtime.py")],
    ids=lambda p: p.name,
)
def test_a_door_is_handed_the_runtime_and_never_builds_one(path: Path) -> None:
    assert _names(_imports(path), ("dockgate_server.frontends.runtime",)) == []


@pytest.mark.parametrize(
    "path", [p for p in _modules("service") if p.name != "server.py"], ids=lambda p: p.name
)
def test_the_service_layer_imports_no_door(path: Path) -> None:
    """Doors build on the service layer, never the other way; `dockgate serve` (server.py) is
    where the two are put together."""
    assert _names(_imports(path), ("dockgate_server.frontends",)) == []


@pytest.mark.parametrize("path", _modules("policy"), ids=lambda p: p.name)
def test_the_policy_language_imports_nothing_above_it(path: Path) -> None:
    above = tuple(
        f"dockgate_server.{name}"
        for name in (
            "engine",
            "store",
            "service",
            "frontends",
            "registry",
            "bench",
            "cli",
            "simulate",
            "credentials",
        )
    )
    assert _names(_imports(path), above) == []


def test_the_store_imports_no_engine_or_door() -> None:
    for path in _modules("store"):
        imports = _imports(path)
        assert _names(imports, ("dockgate_server.engine", *DOORS)) == [], path


def test_the_checks_see_a_forbidden_import() -> None:
    """The parser resolves what a violation would look like, so the checks above can fail."""
    sample = ROOT / "engine" / "build.py"
    assert "dockgate_server.store.model" in _imports(sample)
    assert _names({"dockgate_server.store.sqlite.base"}, BACKENDS) == [
        "dockgate_server.store.sqlite.base"
    ]
    assert _names({"grpc.aio"}, ("grpc",)) == ["grpc.aio"]
    assert {
        "dockgate_server.engine.snapshot.Snapshot",
        "dockgate_server.service.state.DecisionState",
        "dockgate_server.store.port.open_store",
    } <= set(_names(_imports(RUNTIME), BEHIND_THE_RUNTIME))


@pytest.mark.parametrize("path", _modules("analysis"), ids=lambda p: p.name)
def test_analysis_reads_snapshots_and_imports_no_backend_door_or_grpc(path: Path) -> None:
    """The questions are pure functions of a snapshot (and a fleet, for a preview): any door
    asks them through its runtime."""
    forbidden = (
        *BACKENDS,
        *DOORS,
        "dockgate_server.store.port",
        "grpc",
        "dockgate.v1",
        "sqlite3",
        "psycopg",
    )
    assert _names(_imports(path), forbidden) == []
