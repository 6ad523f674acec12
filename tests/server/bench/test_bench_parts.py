"""The harness's pure parts: the request mix, the key stream, the wire encoding, the agreement
check and the figures."""

from __future__ import annotations

from collections import Counter

import pytest

from dockgate.v1 import authorizer_pb2
from dockgate_server.bench.check import check_samples
from dockgate_server.bench.fleet import FleetShape, synthetic_fleet
from dockgate_server.bench.load import Load, LoadResult, Phase, Sample, encode_request
from dockgate_server.bench.report import Measured, figures, histogram, percentile
from dockgate_server.bench.scenario import PULL, PUSH, MixShape, Scenario, build_scenario
from dockgate_server.bench.stream import KeyStream
from dockgate_server.engine.decision import Outcome


@pytest.fixture(scope="module")
def scenario() -> Scenario:
    fleet = synthetic_fleet(FleetShape(60, 30, 6, groups=4))
    return build_scenario(fleet, MixShape(keys=400, denied_share=0.25, cross_account_share=0.2))


def test_the_pools_hold_what_they_say(scenario: Scenario) -> None:
    assert len(scenario.keys) >= 300
    for pool in scenario.pools:
        for index in pool.keys:
            key = scenario.keys[index]
            assert key.cross_account == pool.cross_account
            assert (key.outcome is not Outcome.ALLOWED) == pool.denied
            assert key.action in (PUSH if key.push else PULL)
            assert key.cross_account == (key.principal.split(":")[4] != key.resource.split(":")[4])
    identities = {(k.principal, k.action, k.resource, *k.context.values()) for k in scenario.keys}
    assert len(identities) == len(scenario.keys)  # distinct keys
    assert scenario.shares()["denied"] == pytest.approx(0.25, abs=0.01)
    assert scenario.shares()["cross_account"] == pytest.approx(0.2, abs=0.01)


def test_without_zipf_every_key_comes_once_before_any_repeats(scenario: Scenario) -> None:
    stream = KeyStream(scenario, zipf=0)
    biggest = max(scenario.pools, key=lambda pool: len(pool.keys))
    taken = stream.take(20_000)
    from_biggest = [k for k in taken if k in set(biggest.keys)][: len(biggest.keys)]
    assert sorted(from_biggest) == sorted(biggest.keys)


def test_zipf_repeats_the_first_ranks_most(scenario: Scenario) -> None:
    counts = Counter(KeyStream(scenario, zipf=1.2).take(20_000))
    biggest = max(scenario.pools, key=lambda pool: len(pool.keys))
    first, tenth = counts[biggest.keys[0]], counts[biggest.keys[9]]
    assert first > 5 * tenth
    shares = Counter(scenario.keys[k].outcome is not Outcome.ALLOWED for k in counts.elements())
    assert shares[True] / 20_000 == pytest.approx(0.25, abs=0.03)


def test_a_batch_is_the_concatenation_of_its_items(scenario: Scenario) -> None:
    requests = [encode_request(key) for key in scenario.keys[:3]]
    load = Load("127.0.0.1:1", requests)
    batch = authorizer_pb2.BatchAuthorizeRequest.FromString(b"".join(load.items))
    assert list(batch.items) == [authorizer_pb2.AuthorizeRequest.FromString(r) for r in requests]
    assert (
        batch.items[0].context["aws:SourceIp"].values[0] == scenario.keys[0].context["aws:SourceIp"]
    )


def test_the_check_finds_a_disagreement_and_sets_other_revisions_apart(
    scenario: Scenario,
) -> None:
    key = scenario.keys[0]
    wrong: authorizer_pb2.Outcome.ValueType = (
        authorizer_pb2.OUTCOME_EXPLICITLY_DENIED
        if key.outcome is Outcome.ALLOWED
        else authorizer_pb2.OUTCOME_ALLOWED
    )
    right = {
        Outcome.ALLOWED: authorizer_pb2.OUTCOME_ALLOWED,
        Outcome.IMPLICITLY_DENIED: authorizer_pb2.OUTCOME_IMPLICITLY_DENIED,
        Outcome.EXPLICITLY_DENIED: authorizer_pb2.OUTCOME_EXPLICITLY_DENIED,
    }[key.outcome]

    def answer(outcome: authorizer_pb2.Outcome.ValueType, revision: int = 3) -> bytes:
        response = authorizer_pb2.AuthorizeResponse(outcome=outcome, revision=revision)
        return response.SerializeToString()

    samples = [
        Sample((0,), answer(right)),
        Sample((0,), answer(wrong)),
        Sample((0,), answer(wrong, revision=2)),
    ]
    found = check_samples(samples, scenario.keys, batch=False, revision=3)
    assert (found["decisions_checked"], found["agreed"], found["other_revision"]) == (2, 1, 1)
    assert found["all_agree"] is False
    assert found["disagreements"][0]["engine"] == str(key.outcome)


def test_percentiles_are_nearest_rank() -> None:
    values = [float(v) for v in range(1, 1001)]
    assert percentile(values, 50) == 500
    assert percentile(values, 99.9) == 999
    assert percentile(values, 100) == 1000
    assert percentile([], 50) != percentile([], 50)  # nan


def test_the_histogram_counts_every_latency() -> None:
    latencies = sorted([0.0004, 0.001, 0.0011, 0.002, 0.05])
    found = histogram(latencies)
    assert sum(found["counts"]) == 5
    assert found["edges_ms"][0] <= 0.4 and found["edges_ms"][-1] >= 50


def test_figures_of_a_run() -> None:
    result = LoadResult(Phase("x", batch_size=10), seconds=2.0, calls=4, decisions=40)
    result.latencies.extend([0.001, 0.002, 0.003, 0.004])
    result.finished.extend([0.1, 0.6, 1.2, 1.9])
    result.keys_sent.extend([1] * 20 + list(range(20)))
    found = figures(Measured(result, 0.5, (30, 10)), connections=2)
    assert (found["calls_per_second"], found["decisions_per_second"]) == (2.0, 20.0)
    assert found["latency_ms"]["p50"] == 2.0 and found["latency_ms"]["max"] == 4.0
    assert found["server_cpu_us_per_decision"] == 12500.0
    assert found["cache_hit_share"] == 0.75
    assert found["keys"] == {"sent": 40, "distinct": 20, "repeat_share": 0.5}
    assert found["throughput"]["decisions_per_second"][:2] == [40.0, 0.0]
