"""The evaluation report's metrics agree with their definitions."""

from __future__ import annotations

import numpy as np
import pytest

from sentiment_core.evaluation import (
    apply_temperature,
    brier_score,
    expected_calibration_error,
    fit_temperature,
    report_from_scores,
)


def test_report_from_scores() -> None:
    y_true = np.array([1, 1, 1, 0, 0, 0])
    scores = np.array([0.9, 0.8, 0.2, 0.1, 0.6, 0.3])  # one false negative, one false positive
    report = report_from_scores(y_true, scores)
    assert report.confusion_matrix == ((2, 1), (1, 2))
    assert report.accuracy == pytest.approx(4 / 6)
    assert report.precision == pytest.approx(2 / 3)
    assert report.recall == pytest.approx(2 / 3)
    assert report.f1 == pytest.approx(2 / 3)
    assert report.roc_auc == pytest.approx(7 / 9)
    assert report.support == 6
    assert set(report.metrics()) == {"accuracy", "f1", "precision", "recall", "roc_auc", "ece", "brier"}
    assert report.brier == pytest.approx(np.mean((scores - y_true) ** 2))
    assert "positive" in report.classification_report


def test_expected_calibration_error_by_hand() -> None:
    y_true = np.array([1, 0, 1, 0])
    # Confidences 0.9 (right), 0.9 (right: p=0.1 for a negative), 0.7 (right), 0.7 (wrong: p=0.3 -> predicts 0 ... )
    scores = np.array([0.9, 0.1, 0.7, 0.7])
    # Bins (15 over [0, 1]): 0.9 -> one bin with accuracy 1, confidence 0.9; 0.7 -> accuracy 1/2, confidence 0.7.
    expected = 0.5 * abs(1.0 - 0.9) + 0.5 * abs(0.5 - 0.7)
    assert expected_calibration_error(y_true, scores) == pytest.approx(expected)
    # Perfectly confident and right: no calibration error, no Brier loss.
    assert expected_calibration_error(np.array([1, 0]), np.array([1.0, 0.0])) == pytest.approx(0.0)
    assert brier_score(np.array([1, 0]), np.array([1.0, 0.0])) == pytest.approx(0.0)
    assert brier_score(np.array([1, 0]), np.array([0.5, 0.5])) == pytest.approx(0.25)


def _labels_from(probability: np.ndarray, seed: int) -> np.ndarray:
    return (np.random.default_rng(seed).random(probability.shape[0]) < probability).astype(int)


def test_temperature_scaling_recovers_the_distortion_and_keeps_every_decision() -> None:
    rng = np.random.default_rng(0)
    true_logits = rng.normal(0.0, 2.5, 20_000)
    labels = _labels_from(1.0 / (1.0 + np.exp(-true_logits)), 1)
    # An overconfident model: the right ranking, logits twice too large.
    overconfident = 1.0 / (1.0 + np.exp(-2.0 * true_logits))
    temperature = fit_temperature(labels, overconfident)
    assert temperature == pytest.approx(2.0, rel=0.1)
    scaled = apply_temperature(overconfident, temperature)
    assert np.array_equal(scaled >= 0.5, overconfident >= 0.5)
    assert expected_calibration_error(labels, scaled) < expected_calibration_error(labels, overconfident) / 3
    # Already calibrated: T stays near 1.
    calibrated = 1.0 / (1.0 + np.exp(-true_logits))
    assert fit_temperature(labels, calibrated) == pytest.approx(1.0, rel=0.1)
