"""The generated contract under client/dockgate/v1 is exactly what `make proto` makes of protos/."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from dockgate.v1 import admin_pb2, authorizer_pb2

ROOT = Path(__file__).parents[2]
GENERATED = ROOT / "client" / "dockgate" / "v1"


def test_generated_code_is_not_stale(tmp_path: Path) -> None:
    protos = sorted(
        str(p.relative_to(ROOT)) for p in (ROOT / "protos" / "dockgate" / "v1").glob("*.proto")
    )
    environment = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
    }
    subprocess.run(
        [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            "-Iprotos",
            f"--python_out={tmp_path}",
            f"--grpc_python_out={tmp_path}",
            f"--mypy_out={tmp_path}",
            f"--mypy_grpc_out={tmp_path}",
            *protos,
        ],
        cwd=ROOT,
        env=environment,
        check=True,
        capture_output=True,
    )
    fresh = {p.name: p.read_text() for p in (tmp_path / "dockgate" / "v1").iterdir()}
    committed = {
        p.name: p.read_text()
        for p in GENERATED.iterdir()
        if p.name != "__init__.py" and p.is_file()
    }
    assert sorted(fresh) == sorted(committed), "run `make proto` and commit the result"
    stale = [name for name in fresh if fresh[name] != committed[name]]
    assert not stale, f"stale generated files (run `make proto`): {stale}"


def test_names_scripts_rely_on() -> None:
    assert (
        authorizer_pb2.DESCRIPTOR.services_by_name["Authorizer"].full_name
        == "dockgate.v1.Authorizer"
    )
    assert (
        admin_pb2.DESCRIPTOR.services_by_name["PolicyAdmin"].full_name == "dockgate.v1.PolicyAdmin"
    )
    fields = authorizer_pb2.AuthorizeRequest.DESCRIPTOR.fields_by_name
    assert {"principal", "action", "resource", "context"} <= set(fields)
    values = authorizer_pb2.ContextValues.DESCRIPTOR.fields_by_name["values"]
    assert values.is_repeated
    names = set(authorizer_pb2.Outcome.keys())
    for suffix in ("ALLOWED", "IMPLICITLY_DENIED", "EXPLICITLY_DENIED"):
        assert any(
            name.endswith(suffix) and "IMPLICITLY" not in name.replace(suffix, "") for name in names
        )
