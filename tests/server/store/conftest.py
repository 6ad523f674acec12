"""The `store_factory` fixture: every contract test runs once per store backend."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from dockgate_server.store.port import FleetStore, open_store

__all__ = [
    "StoreFactory",
    "store",
    "store_factory",
    "store_url",
]

StoreFactory = Callable[[], FleetStore]
"""opens one more connection to the test's store (each opened one is closed after the test)"""

BACKENDS = ["sqlite", "postgres"]


@pytest.fixture(params=BACKENDS)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Where a fresh, empty store of each backend lives (nothing opened yet)."""
    if request.param == "sqlite":
        return str(tmp_path / "store.sqlite3")
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
def store_factory(store_url: str) -> Iterator[StoreFactory]:
    """Calling the factory opens one more connection to the test's store (on this thread)."""
    url = store_url
    opened: list[FleetStore] = []

    def factory() -> FleetStore:
        store = open_store(url)
        opened.append(store)
        return store

    yield factory
    for store in reversed(opened):
        store.close()


@pytest.fixture
def store(store_factory: StoreFactory) -> FleetStore:
    return store_factory()
