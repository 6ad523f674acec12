"""The action catalogue is the Service Authorization Reference's, split by resource type (the
package's public surface is pinned in tests/server/test_exports.py)."""

from __future__ import annotations

import json
from pathlib import Path

from dockgate_server.analysis import ACCOUNT_ACTIONS, REPOSITORY_ACTIONS

CATALOGUE = Path(__file__).parents[3] / "docs" / "ecr-actions.json"


def test_repository_and_account_actions_follow_the_reference() -> None:
    actions = json.loads(CATALOGUE.read_text())["actions"]
    by_repository = sorted(
        f"ecr:{n}" for n, a in actions.items() if a["resources"] == ["repository"]
    )
    by_account = sorted(f"ecr:{n}" for n, a in actions.items() if a["resources"] == ["*"])
    assert list(REPOSITORY_ACTIONS) == by_repository
    assert list(ACCOUNT_ACTIONS) == by_account
