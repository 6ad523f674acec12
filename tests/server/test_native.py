"""The compiled decision path: present where a C compiler is, and never older than its source."""

from __future__ import annotations

import os
import shutil

import pytest

from dockgate_server import native


def test_every_native_module_is_compiled_where_a_compiler_is() -> None:
    if os.environ.get("DOCKGATE_INTERPRETED") or shutil.which("gcc") is None:
        pytest.skip("interpreted on purpose, or no C compiler: setup.py builds no extensions")
    missing = set(native.NATIVE_MODULES) - set(native.compiled_modules())
    assert not missing, f"interpreted: {sorted(missing)}; run `make install`"
    assert native.describe() == f"engine compiled with mypyc ({len(native.NATIVE_MODULES)} modules)"


@pytest.mark.parametrize("name", native.NATIVE_MODULES)
def test_a_compiled_module_is_not_older_than_its_source(name: str) -> None:
    """A .so beside its source wins the import: a stale one would test yesterday's code."""
    compiled = native.compiled_path(name)
    if compiled is None:
        pytest.skip("interpreted: the source itself runs")
    source = native.source_path(name)
    assert source.is_file(), f"{name}: no source at {source}"
    assert compiled.stat().st_mtime >= source.stat().st_mtime, (
        f"{compiled.name} is older than {source.name}: run `make install` to rebuild it"
    )
