"""The app runs whatever the table lists: a door only this test knows is opened with a runtime,
served, told the store's freshness, announced, and drained on SIGTERM; a door that cannot open
releases the ones opened before it."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from dockgate_server.frontends import app
from dockgate_server.frontends.config import ServeConfig
from dockgate_server.frontends.door import Listen, Placement, Site, StartupError
from dockgate_server.frontends.http import HttpRequest, HttpResponse, HttpServer, Route
from dockgate_server.frontends.table import DOORS
from dockgate_server.service.metrics import Metrics
from dockgate_server.store.port import open_store
from tests.server.frontends.test_nginx import Client

LIVENESS = 30.0
"""Seconds a step may take before the test gives up (a liveness bound, not a latency goal)."""


@dataclass
class _Journal:
    events: list[str] = field(default_factory=list)
    reflected: list[tuple[bool, bool]] = field(default_factory=list)


class _ReposDoor:
    """An HTTP door listing the repositories its runtime knows: `GET /repositories`."""

    name = "repos"
    placement = Placement.ONE_PROCESS
    announces = ("repos_port",)
    uses_registry = False
    options = ()

    def __init__(self, journal: _Journal, *, fail: bool = False) -> None:
        self.journal = journal
        self.fail = fail

    def configure(self, arguments: argparse.Namespace) -> str | None:
        return None

    def listens(self, settings: str) -> tuple[Listen, ...]:
        return (Listen("--repos-listen", settings, "repos_port"),)

    async def open(self, settings: str, site: Site) -> _Opened:
        if self.fail:
            raise StartupError(f"--repos-listen {settings}: address already in use")
        runtime = site.runtime

        async def repositories(request: HttpRequest) -> HttpResponse:
            return HttpResponse(200, (), json.dumps(runtime.repositories()).encode())

        host, _, port = settings.rpartition(":")
        server = HttpServer([Route("/repositories", repositories)], host, int(port))
        await server.start()
        self.journal.events.append("open")
        return _Opened(self.journal, server)


class _Opened:
    def __init__(self, journal: _Journal, server: HttpServer) -> None:
        self.journal = journal
        self.server = server
        self.ports = {"repos_port": server.port}

    async def serve(self) -> None:
        self.journal.events.append("serve")

    async def reflect(self, reachable: bool, fresh: bool) -> None:
        self.journal.reflected.append((reachable, fresh))

    async def drain(self, grace: float) -> None:
        self.journal.events.append("drain")
        await self.server.close()


@pytest.fixture(autouse=True)
def _own_metrics(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each run its own registry: a process runs the app once, this test module several times."""
    monkeypatch.setattr(app, "Metrics", lambda: Metrics(CollectorRegistry()))


@pytest.fixture
def config(tmp_path: Path) -> ServeConfig:
    store = tmp_path / "store.sqlite3"
    with open_store(store):  # a new, empty store
        pass
    return ServeConfig(
        data_dir=tmp_path,
        store=store,
        doors={"repos": "127.0.0.1:0"},
        ready_file=tmp_path / "ready.json",
    )


def test_a_door_of_the_table_runs_from_open_to_drain(
    config: ServeConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    journal = _Journal()
    monkeypatch.setattr(app, "DOORS", (*DOORS, _ReposDoor(journal)))
    listed: list[Any] = []
    real_announce = app._announce

    def announce(config: ServeConfig, ports: Mapping[str, int], **more: Any) -> None:
        real_announce(config, ports, **more)
        asyncio.get_running_loop().create_task(ask_then_stop(ports["repos_port"]))

    async def ask_then_stop(port: int) -> None:
        client = await Client.open(port)
        try:
            reply = await asyncio.wait_for(client.request("GET", "/repositories", {}), LIVENESS)
            listed.append(json.loads(reply.body))
        finally:
            await client.close()
        os.kill(os.getpid(), signal.SIGTERM)

    monkeypatch.setattr(app, "_announce", announce)
    assert app.run(config) == 0
    assert journal.events == ["open", "serve", "drain"]
    assert journal.reflected[0] == (True, True)
    assert listed == [[]]
    assert config.ready_file is not None
    ready = json.loads(config.ready_file.read_text())
    assert ready["repos_port"] > 0
    # the doors that are off are announced as null, in the table's order
    assert list(ready)[:4] == ["decision_port", "admin_port", "metrics_port", "http_auth_port"]
    assert ready["decision_port"] is None


def test_a_door_that_cannot_open_releases_those_opened_before(
    config: ServeConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    journal = _Journal()
    failing = _ReposDoor(journal, fail=True)
    failing.name = "failing"
    monkeypatch.setattr(app, "DOORS", (_ReposDoor(journal), failing))
    doors = {"repos": "127.0.0.1:0", "failing": "127.0.0.1:0"}
    refused = r"^--repos-listen 127\.0\.0\.1:0: address already in use$"
    with pytest.raises(StartupError, match=refused):
        app.run(ServeConfig(data_dir=config.data_dir, store=config.store, doors=doors))
    assert journal.events == ["open", "drain"]
