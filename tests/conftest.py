"""Shared test fixtures: where the committed conformance corpora live."""

from __future__ import annotations

from pathlib import Path

import pytest

CONFORMANCE = Path(__file__).parent / "conformance"


@pytest.fixture
def conformance_dir() -> Path:
    return CONFORMANCE
