"""Which of the engine's hot modules run compiled (mypyc) in this installation.

`setup.py` compiles the modules named here to C extensions with mypyc: the same source, typed
under `mypy --strict`, run as native code (about twice as fast on the decision path). An
installation without a C compiler runs them interpreted, with the same answers; `dockgate serve`
logs which, and `make bench` prints it beside its figures.
"""

from __future__ import annotations

import importlib.machinery
from pathlib import Path

__all__ = ["NATIVE_MODULES", "compiled_modules", "compiled_path", "describe", "source_path"]

NATIVE_MODULES = (
    "dockgate_server.conditions.arn",
    "dockgate_server.conditions.boolean",
    "dockgate_server.conditions.evaluate",
    "dockgate_server.conditions.keys",
    "dockgate_server.conditions.string",
    "dockgate_server.engine.authorize",
    "dockgate_server.engine.cache",
    "dockgate_server.engine.compile",
    "dockgate_server.engine.decide",
    "dockgate_server.engine.decision",
    "dockgate_server.engine.index",
    "dockgate_server.engine.request",
    "dockgate_server.engine.sessions",
    "dockgate_server.engine.snapshot",
    "dockgate_server.policy.arn",
    "dockgate_server.policy.glob",
    "dockgate_server.policy.principal",
    "dockgate_server.policy.variables",
)
"""The decision path, leaf to root. Left out: modules whose functions are `lru_cache`d across
module boundaries (`conditions.numeric`, `.date`, `.ip` and `.operators`, which mypyc cannot
type), and everything off the hot path."""


def source_path(module: str) -> Path:
    """Where `module`'s Python source lives in this tree (what `setup.py` hands to mypyc)."""
    return Path(__file__).parent.parent.joinpath(*module.split(".")).with_suffix(".py")


def compiled_path(module: str) -> Path | None:
    """The compiled extension beside `module`'s source, if there is one: the import system
    prefers it to the source. (Not the module's `__file__` or `__spec__`: mypyc sets both
    relative to its shared library, a path that does not exist.)"""
    source = source_path(module)
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        candidate = source.with_name(source.stem + suffix)
        if candidate.is_file():
            return candidate
    return None


def compiled_modules() -> tuple[str, ...]:
    """The modules of `NATIVE_MODULES` that import from a compiled extension."""
    return tuple(name for name in NATIVE_MODULES if compiled_path(name) is not None)


def describe() -> str:
    """One line: whether the decision path is compiled."""
    count = len(compiled_modules())
    if count == len(NATIVE_MODULES):
        return f"engine compiled with mypyc ({count} modules)"
    if count == 0:
        return "engine interpreted (no compiled modules: `make install` with a C compiler)"
    return f"engine partly compiled ({count} of {len(NATIVE_MODULES)} modules)"
