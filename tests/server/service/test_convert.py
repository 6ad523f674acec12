"""Wire conversion: the quick context path answers as the exact one; a batch result filled in
place is the message `decision_to_wire` builds; a batch counts its outcomes once."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry

from dockgate.v1 import authorizer_pb2
from dockgate_server.engine.decision import Decision, Outcome, Phase, Reason
from dockgate_server.policy.model import Effect
from dockgate_server.service.convert import (
    MAX_CONTEXT_BYTES,
    MAX_CONTEXT_VALUES,
    context_from_wire,
    decision_to_wire,
    fill_decision,
)
from dockgate_server.service.errors import ServiceError
from dockgate_server.service.metrics import Metrics


def _wire(**context: str | list[str]) -> authorizer_pb2.AuthorizeRequest:
    request = authorizer_pb2.AuthorizeRequest()
    for key, value in context.items():
        request.context[key].values.extend([value] if isinstance(value, str) else value)
    return request


@pytest.mark.parametrize(
    "context",
    [
        {},
        {"aws:SourceIp": "198.51.100.4", "aws:SecureTransport": "true"},
        {"aws:SourceVpce": ["vpce-1", "vpce-2"], "ecr:tag": []},
        {"aws:userid": "é" * 100},
        # past the quick path's character bound, within the byte bound: the exact path answers
        {"big": "a" * (MAX_CONTEXT_BYTES // 4 + 10)},
        {"big": "a" * (MAX_CONTEXT_BYTES - 10)},
    ],
)
def test_a_context_within_the_bounds_converts_whole(context: dict[str, str | list[str]]) -> None:
    assert context_from_wire(_wire(**context).context) == context


@pytest.mark.parametrize(
    ("context", "message"),
    [
        ({"big": "a" * (MAX_CONTEXT_BYTES + 1)}, "is larger than"),
        ({"big": "é" * (MAX_CONTEXT_BYTES // 2 + 1)}, "is larger than"),
        ({"many": [""] * (MAX_CONTEXT_VALUES + 1)}, "has more than"),
        ({"one": "x", "many": [""] * MAX_CONTEXT_VALUES}, "has more than"),
    ],
)
def test_a_context_past_a_bound_is_refused(
    context: dict[str, str | list[str]], message: str
) -> None:
    with pytest.raises(ServiceError) as refused:
        context_from_wire(_wire(**context).context)
    assert message in refused.value.message
    assert refused.value.reason_name == "REQUEST_TOO_LARGE"


@pytest.mark.parametrize("explain", [False, True])
@pytest.mark.parametrize(
    "decision",
    [
        Decision(Outcome.IMPLICITLY_DENIED, ()),
        Decision(
            Outcome.ALLOWED,
            (
                Reason(Phase.IDENTITY_POLICY, "allowed", Effect.ALLOW, "ci-push", 2, "Push"),
                Reason(Phase.REQUEST, "no statement"),
            ),
            ("`aws:SourceIp`: `x` is not an IP address",),
        ),
    ],
)
def test_a_result_filled_in_place_is_the_built_message(decision: Decision, explain: bool) -> None:
    result = authorizer_pb2.BatchAuthorizeResult()
    fill_decision(result.decision, decision, 7, explain)
    assert result.decision == decision_to_wire(decision, 7, explain)


def test_a_batch_counts_each_outcome_once() -> None:
    registry = CollectorRegistry()
    metrics = Metrics(registry)
    metrics.count_decision("Allowed", 98)
    metrics.count_decision("Allowed")
    labels = {"outcome": "Allowed"}
    assert registry.get_sample_value("dockgate_decisions_total", labels) == 99
