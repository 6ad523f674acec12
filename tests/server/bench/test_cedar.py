"""The Cedar comparison: both engines answer every question alike before either is timed."""

from __future__ import annotations

import dataclasses
import json

import pytest

from dockgate_server.bench import cedar
from dockgate_server.engine.build import build_snapshot
from dockgate_server.store.model import Credentials

cedarpy = pytest.importorskip("cedarpy")


def handles(policies: str, model: cedar.Model) -> tuple[object, object, object]:
    return (
        cedarpy.PolicySet.from_str(policies),
        cedarpy.Entities.from_json_str(json.dumps(model.entities)),
        cedarpy.Schema.from_str(model.schema),
    )


def test_both_engines_agree_on_every_question_of_the_model() -> None:
    model = cedar.build_model(principals=10, repositories=40)
    snapshot = build_snapshot(model.fleet, Credentials(), 1)
    allowed = cedar.compare(model, snapshot, *handles(model.policies, model))
    assert 0 < allowed < len(model.asks)  # the mix holds both answers


def test_a_disagreement_is_refused_before_anything_is_timed() -> None:
    model = cedar.build_model(principals=10, repositories=40)
    snapshot = build_snapshot(model.fleet, Credentials(), 1)
    everything = "permit (principal, action, resource);"
    loose = dataclasses.replace(model, sliced=dict.fromkeys(model.sliced, everything))
    with pytest.raises(ValueError, match="differently"):
        cedar.compare(model, snapshot, *handles(everything, model))
    with pytest.raises(ValueError, match="disagree"):
        cedar.compare(loose, snapshot, *handles(everything, model))


def test_measure_prints_every_engine_against_cedarpy() -> None:
    found = cedar.measure(cedar.build_model(principals=6, repositories=20), seconds=0.05)
    assert found.questions == 200 and found.dockgate_us > 0 and found.cedar_us > 0
    text = cedar.format_figures(found)
    assert "dockgate decide (uncached)" in text and "goal: dockgate <= 1.0 x cedarpy" in text
