"""A port in use fails `dockgate serve` at once: one line naming the option, exit 2, no traceback,
nothing left running; with several workers too, whoever holds the port (SO_REUSEPORT is shared
only among a server's own workers)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.server.service.conftest import TOKEN, RunningServer, serve_command, start_server

REGISTRY = ("--registry-account", "111122223333", "--registry-region", "us-east-1")
STARTUP = 60.0
"""Seconds a failing start may take before the test gives up (a liveness bound)."""


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    server = start_server(
        tmp_path_factory.mktemp("holder"), "--http-auth-listen", "127.0.0.1:0", *REGISTRY
    )
    try:
        yield server
    finally:
        server.stop()


def _serve(data_dir: Path, *options: str) -> subprocess.CompletedProcess[str]:
    command = serve_command(data_dir, *options)
    environment = {**os.environ, "DOCKGATE_ADMIN_TOKEN": TOKEN}
    return subprocess.run(
        command, env=environment, capture_output=True, text=True, timeout=STARTUP, check=False
    )


def _http_port(server: RunningServer) -> int:
    port: int = json.loads((server.data_dir / "ready.json").read_text())["http_auth_port"]
    return port


@pytest.mark.parametrize("workers", ["1", "2"])
@pytest.mark.parametrize(
    "option", ["--listen", "--admin-listen", "--metrics-listen", "--http-auth-listen"]
)
def test_a_port_in_use_fails_at_once_naming_the_option(
    running: RunningServer, tmp_path: Path, option: str, workers: str
) -> None:
    port = {
        "--listen": running.decision_port,
        "--admin-listen": running.admin_port,
        "--metrics-listen": running.metrics_port,
        "--http-auth-listen": _http_port(running),
    }[option]
    address = f"127.0.0.1:{port}"
    extra = [option, address, *(REGISTRY if option == "--http-auth-listen" else ())]
    finished = _serve(tmp_path, "--workers", workers, *extra)
    assert finished.returncode == 2
    assert finished.stderr == f"dockgate: {option} {address}: address already in use\n"
    assert not (tmp_path / "ready.json").exists()


def test_a_foreign_process_sharing_the_port_fails_a_server_of_several_workers(
    tmp_path: Path,
) -> None:
    """A socket that set SO_REUSEPORT itself, as another server would: the workers must not join
    it and split its callers between two stores."""
    with socket.socket() as holder:
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        holder.bind(("127.0.0.1", 0))
        holder.listen(8)
        address = f"127.0.0.1:{holder.getsockname()[1]}"
        finished = _serve(tmp_path, "--workers", "2", "--listen", address)
    assert finished.returncode == 2
    assert finished.stderr == f"dockgate: --listen {address}: address already in use\n"


def test_a_second_server_on_the_same_decision_port_fails(
    running: RunningServer, tmp_path: Path
) -> None:
    """The first server answers on, alone on its port."""
    finished = _serve(tmp_path, "--listen", running.decision)
    assert finished.returncode == 2
    assert "Traceback" not in finished.stderr
    assert running.process.poll() is None
