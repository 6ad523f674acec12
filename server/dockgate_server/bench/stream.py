"""The order a load test asks its keys in: Zipf-ranked repeats, or each key in turn.

Each request first picks a pool by its share (same-account or cross-account, allowed or denied),
then a key of that pool: with a Zipf exponent s > 0, the key of rank r with a weight of 1 / r**s
(a few hot keys, a long tail: what a decision cache sees); with s = 0, the pool's keys in a
shuffled order, each once before any repeats (what a cache cannot help with).
"""

from __future__ import annotations

import bisect
import itertools
import random
from collections.abc import Iterator

from dockgate_server.bench.scenario import Scenario

__all__ = ["KeyStream"]


class KeyStream:
    def __init__(self, scenario: Scenario, zipf: float, seed: int = 11) -> None:
        self.zipf = zipf
        self._rng = random.Random(seed)
        pools = [pool for pool in scenario.pools if pool.keys and pool.share > 0]
        if not pools:
            raise ValueError("the scenario has no keys to ask")
        self._pool_weights = list(itertools.accumulate(pool.share for pool in pools))
        self._pools = [pool.keys for pool in pools]
        self._ranks = [
            list(itertools.accumulate(1 / rank**zipf for rank in range(1, len(keys) + 1)))
            for keys in self._pools
        ]
        self._turns = [self._in_turn(keys) for keys in self._pools]

    def take(self, count: int) -> list[int]:
        """The next `count` key indexes."""
        rng = self._rng
        chosen = rng.choices(range(len(self._pools)), cum_weights=self._pool_weights, k=count)
        if self.zipf <= 0:
            return [next(self._turns[pool]) for pool in chosen]
        result = []
        for pool in chosen:
            ranks = self._ranks[pool]
            rank = bisect.bisect_left(ranks, rng.random() * ranks[-1])
            result.append(self._pools[pool][min(rank, len(ranks) - 1)])
        return result

    def _in_turn(self, keys: tuple[int, ...]) -> Iterator[int]:
        order = list(keys)
        while True:
            self._rng.shuffle(order)
            yield from order
