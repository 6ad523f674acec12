"""The agreement check: sampled answers of a server against the in-process engine's decisions."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from dockgate.v1 import authorizer_pb2
from dockgate_server.bench.load import Sample
from dockgate_server.bench.scenario import Key
from dockgate_server.engine.decision import Outcome

__all__ = ["check_samples"]

_OUTCOMES = {
    authorizer_pb2.OUTCOME_ALLOWED: Outcome.ALLOWED,
    authorizer_pb2.OUTCOME_IMPLICITLY_DENIED: Outcome.IMPLICITLY_DENIED,
    authorizer_pb2.OUTCOME_EXPLICITLY_DENIED: Outcome.EXPLICITLY_DENIED,
}
_SHOWN = 10
"""Disagreements listed in full in the report."""


def check_samples(
    samples: Sequence[Sample], keys: Sequence[Key], *, batch: bool, revision: int
) -> dict[str, Any]:
    """Decode each sampled answer and compare every decision in it with its key's.

    Answers made at another revision than `revision` (the fleet the reference was built from)
    are counted apart: they may rightly differ.
    """
    checked = agreed = other_revision = 0
    disagreements: list[dict[str, str]] = []
    for sample in samples:
        if batch:
            response = authorizer_pb2.BatchAuthorizeResponse.FromString(sample.answer)
            answers: list[tuple[str | Outcome, int]] = [
                (
                    _OUTCOMES.get(result.decision.outcome, "Unspecified")
                    if result.HasField("decision")
                    else f"error {result.error.reason}",
                    result.decision.revision if result.HasField("decision") else revision,
                )
                for result in response.results
            ]
        else:
            response_one = authorizer_pb2.AuthorizeResponse.FromString(sample.answer)
            answers = [(_OUTCOMES.get(response_one.outcome, "Unspecified"), response_one.revision)]
        if len(answers) != len(sample.keys):
            answers = [(f"{len(answers)} answers to {len(sample.keys)} items", revision)] * len(
                sample.keys
            )
        for key_index, (outcome, at) in zip(sample.keys, answers, strict=True):
            if at != revision:
                other_revision += 1
                continue
            checked += 1
            key = keys[key_index]
            if outcome == key.outcome:
                agreed += 1
            elif len(disagreements) < _SHOWN:
                disagreements.append(
                    {
                        "principal": key.principal,
                        "action": key.action,
                        "resource": key.resource,
                        "server": str(outcome),
                        "engine": str(key.outcome),
                    }
                )
    return {
        "sampled_calls": len(samples),
        "decisions_checked": checked,
        "agreed": agreed,
        "other_revision": other_revision,
        "all_agree": checked > 0 and agreed == checked,
        "disagreements": disagreements,
    }
