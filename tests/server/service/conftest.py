"""A real `dockgate serve` process on 127.0.0.1, started and stopped by the tests that need it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pytest

TOKEN = "test-admin-token"


@dataclass
class RunningServer:
    process: subprocess.Popen[bytes]
    data_dir: Path
    decision_port: int
    admin_port: int
    metrics_port: int | None
    token: str = TOKEN
    workers: list[int] = field(default_factory=list)

    @property
    def decision(self) -> str:
        return f"127.0.0.1:{self.decision_port}"

    @property
    def admin(self) -> str:
        return f"127.0.0.1:{self.admin_port}"

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        return self.process.wait(timeout=timeout)


def serve_command(data_dir: Path, *extra: str) -> list[str]:
    """`dockgate serve` on ephemeral 127.0.0.1 ports with its data in `data_dir`, quiet logs."""
    return [
        sys.executable,
        "-m",
        "dockgate_server.cli",
        "serve",
        "--data-dir",
        str(data_dir),
        "--listen",
        "127.0.0.1:0",
        "--admin-listen",
        "127.0.0.1:0",
        "--metrics-listen",
        "127.0.0.1:0",
        "--log-level",
        "warning",
        *extra,
    ]


def start_server(
    data_dir: Path,
    *extra: str,
    seed: bool = True,
    timeout: float = 30,
    env: Mapping[str, str | None] | None = None,
) -> RunningServer:
    """Start `dockgate serve` on ephemeral ports and wait until it says where it listens.

    `env` changes the server's environment: a name with a value sets it, with None removes it.
    """
    ready = data_dir / "ready.json"
    ready.unlink(missing_ok=True)
    command = serve_command(
        data_dir, "--ready-file", str(ready), *([] if seed else ["--no-sample"]), *extra
    )
    environment = {**os.environ, "DOCKGATE_ADMIN_TOKEN": TOKEN}
    for name, value in (env or {}).items():
        if value is None:
            environment.pop(name, None)
        else:
            environment[name] = value
    with (data_dir / "server.log").open("ab") as log:  # the child keeps its own copy
        process = subprocess.Popen(command, env=environment, stdout=log, stderr=log)
    deadline = time.monotonic() + timeout
    while not ready.exists():
        if process.poll() is not None:
            raise RuntimeError(
                f"dockgate serve exited {process.returncode}: "
                + (data_dir / "server.log").read_text()
            )
        if time.monotonic() > deadline:
            process.kill()
            raise TimeoutError("dockgate serve did not become ready")
        time.sleep(0.05)
    ports = json.loads(ready.read_text())
    return RunningServer(
        process,
        data_dir,
        ports["decision_port"],
        ports["admin_port"],
        ports["metrics_port"],
        workers=ports["workers"],
    )


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RunningServer]:
    running = start_server(tmp_path)
    try:
        yield running
    finally:
        if running.process.poll() is None:
            running.process.kill()
            running.process.wait()


@pytest.fixture(scope="module")
def shared_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    running = start_server(tmp_path_factory.mktemp("dockgate"))
    try:
        yield running
    finally:
        running.stop()
