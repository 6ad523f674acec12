"""Shared test fixtures: where the committed conformance corpora live, a throw-away PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest

# `postgres_cluster`, `postgres_url` and `own_postgres_cluster` for every test that needs them
pytest_plugins = ["tests.postgres_cluster"]

CONFORMANCE = Path(__file__).parent / "conformance"


@pytest.fixture
def conformance_dir() -> Path:
    return CONFORMANCE
