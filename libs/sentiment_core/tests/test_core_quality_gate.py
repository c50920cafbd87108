"""The quality floors: held-out evidence and canary texts, one definition for the trainer, the CLI and the API."""

from __future__ import annotations

import numpy as np
import pytest

from sentiment_core import quality_gate
from sentiment_core.evaluation import evaluate
from sentiment_core.model import ModelConfig, build_pipeline
from sentiment_core.quality_gate import HeldOutEvidence, QualityFloors, QualityGateError

TEXTS = [
    "a great and wonderful film, loved it",
    "truly awful and boring, a waste",
    "brilliant acting and a moving story",
    "terrible script, dull and stupid",
] * 30
LABELS = [1, 0, 1, 0] * 30
GOOD = HeldOutEvidence(size=5000, accuracy=0.91, f1=0.91, predicted_negative=2500, predicted_positive=2500)


def _fitted() -> object:
    return build_pipeline(ModelConfig(n_features=2**12, ngram_max=1)).fit(TEXTS, LABELS)


def test_a_good_model_passes() -> None:
    assert quality_gate.held_out_failures(GOOD, QualityFloors()) == []
    assert quality_gate.check("v1", GOOD, _fitted(), QualityFloors()) >= 0.75


def test_ten_reviews_prove_nothing() -> None:
    """The junk of issue 12 item 4: a 10-review run with accuracy 0.5 and F1 0.6667."""
    junk = HeldOutEvidence(size=10, accuracy=0.5, f1=0.6667, predicted_negative=0, predicted_positive=10)
    with pytest.raises(QualityGateError) as raised:
        quality_gate.check("version 2", junk, None, QualityFloors())
    message = str(raised.value)
    assert message.startswith("version 2 is below the quality floors: ")
    assert "held-out split of 10 reviews, fewer than the minimum 200" in message
    assert "held-out accuracy 0.5000 below the floor 0.7000" in message
    assert "held-out F1 0.6667 below the floor 0.7000" in message
    assert "predicts only 'positive' on its held-out split (one-class model)" in message


def test_missing_metrics_fail() -> None:
    failures = quality_gate.held_out_failures(HeldOutEvidence.from_tags({}), QualityFloors())
    assert failures == [
        "no recorded held-out accuracy; the floor is 0.700",
        "no recorded held-out F1; the floor is 0.700",
    ]


def test_a_version_registered_before_the_evidence_tags_is_judged_on_its_metrics() -> None:
    """An upgrade must not take away a champion that only lacks the newer size and class-count tags."""
    older = HeldOutEvidence.from_tags({"metric.accuracy": "0.91", "metric.f1": "0.90"})
    assert quality_gate.held_out_failures(older, QualityFloors()) == []
    weak = HeldOutEvidence.from_tags({"metric.accuracy": "0.52", "metric.f1": "0.90"})
    assert quality_gate.held_out_failures(weak, QualityFloors()) == ["held-out accuracy 0.5200 below the floor 0.7000"]


def test_evidence_round_trips_through_version_tags() -> None:
    pipeline = _fitted()
    report = evaluate(pipeline, TEXTS, LABELS)
    evidence = HeldOutEvidence.from_report(report)
    assert evidence.size == 120
    assert evidence.predicted_negative == 60
    tags = {**evidence.tags(), "metric.accuracy": str(report.accuracy), "metric.f1": str(report.f1)}
    assert HeldOutEvidence.from_tags(tags) == evidence


def test_one_class_pipeline_fails_the_canaries() -> None:
    pipeline = _fitted()
    classifier = pipeline.named_steps["classify"]
    classifier.coef_ = np.zeros_like(classifier.coef_)
    classifier.intercept_ = np.full_like(classifier.intercept_, 6.0)
    failures, accuracy = quality_gate.canary_failures(pipeline, QualityFloors())
    assert accuracy == 0.5
    assert any("predicts only 'positive' on the 12 canary texts" in failure for failure in failures)
    assert any("classifies 6/12 canary texts correctly, below the floor 75%" in failure for failure in failures)


def test_floors_are_validated() -> None:
    with pytest.raises(ValueError, match="min_accuracy must be a number between 0 and 1"):
        QualityFloors(min_accuracy=float("nan"))
    with pytest.raises(ValueError, match="min_held_out must be an integer >= 2"):
        QualityFloors(min_held_out=0)
