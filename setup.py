"""Compile the decision path to C with mypyc (the modules `dockgate_server.native` names).

Everything else is in pyproject.toml. `DOCKGATE_INTERPRETED=1` builds without extensions; so
does a machine without a C compiler or Python's headers, saying so in one line.
"""

from __future__ import annotations

import os
import shutil
import sys
import sysconfig
from pathlib import Path

from setuptools import setup

sys.path.insert(0, str(Path(__file__).parent / "server"))
from dockgate_server.native import NATIVE_MODULES, source_path


def _extensions() -> list[object]:
    if os.environ.get("DOCKGATE_INTERPRETED"):
        return []
    headers = Path(sysconfig.get_paths()["include"]) / "Python.h"
    compiler = (sysconfig.get_config_var("CC") or "cc").split()[0]
    if shutil.which(compiler) is None or not headers.exists():
        print(
            f"dockgate: no C compiler ({compiler}) or no {headers}: the engine runs interpreted "
            "(about half the speed); install gcc and python3-dev, then `make install` again",
            file=sys.stderr,
        )
        return []
    from mypyc.build import mypycify  # noqa: PLC0415 (a build requirement; not when skipped)

    root = Path(__file__).parent
    paths = [str(source_path(name).relative_to(root)) for name in NATIVE_MODULES]
    # mypy checks what it compiles and follows its imports silently: a build environment holds
    # mypy, not the runtime's packages (psycopg, grpc), whose types the compiled modules never use
    options = ["--follow-imports=silent", "--ignore-missing-imports"]
    return list(
        mypycify([*options, *paths], opt_level="3", group_name="dockgate_server.native_group")
    )


setup(ext_modules=_extensions())
