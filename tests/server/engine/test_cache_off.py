"""A decision cache of size 0 is off (`dockgate serve --cache-size 0`): it decides afresh, keeps
nothing, and counts every lookup as a miss."""

from __future__ import annotations

from pathlib import Path

from dockgate_server.engine.cache import DecisionCache
from dockgate_server.service.follow import SnapshotFollower
from dockgate_server.store.model import User
from dockgate_server.store.port import open_store

ALICE = "arn:aws:iam::111122223333:user/alice"
APP = "arn:aws:ecr:us-east-1:111122223333:repository/app"
ALLOW = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "ecr:BatchGetImage", "Resource": "*"}],
}


def test_a_cache_of_size_zero_keeps_nothing(tmp_path: Path) -> None:
    with open_store(tmp_path / "store.db") as store:
        store.put_user(User("111122223333", "alice", inline={"access": ALLOW}))
        snapshot = SnapshotFollower(store).build()
    cache = DecisionCache(maxsize=0)
    for action in ("ecr:BatchGetImage", "ecr:BatchGetImage", "ecr:PutImage"):
        assert cache.decide(snapshot, ALICE, action, APP) == snapshot.authorize(ALICE, action, APP)
    assert (len(cache), cache.hits, cache.misses) == (0, 0, 3)
