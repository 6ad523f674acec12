"""Action names: what can name an action, and ECR's own names (semantics §2.4)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dockgate_server.policy.actions import ECR_ACTIONS, is_action_name, matches_ecr_action

CATALOGUE = Path(__file__).parents[3] / "docs" / "ecr-actions.json"


def test_the_ecr_actions_are_those_of_the_catalogue() -> None:
    catalogue = json.loads(CATALOGUE.read_text(encoding="utf-8"))
    assert set(catalogue["actions"]) == ECR_ACTIONS


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("BatchGetImage", True),
        ("Batch*", True),
        ("*Image?", True),
        ("*", True),
        ("GetObject,PutObject", False),
        ("Batch GetImage", False),
        ("Batch-GetImage", False),
        ("Get.Image", False),
        ("Pull!", False),
        ("", False),
    ],
)
def test_is_action_name(name: str, expected: bool) -> None:
    assert is_action_name(name) is expected


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("BatchGetImage", True),
        ("batchgetimage", True),
        ("Batch*", True),
        ("*LayerUpload", True),
        ("Get?uthorizationToken", True),
        ("*", True),
        ("BatchGetImages", False),
        ("NoSuchAction", False),
        ("Pull*", False),
    ],
)
def test_matches_ecr_action(pattern: str, expected: bool) -> None:
    assert matches_ecr_action(pattern) is expected
