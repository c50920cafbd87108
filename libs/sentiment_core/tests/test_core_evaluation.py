"""The evaluation report's metrics agree with their definitions."""

from __future__ import annotations

import numpy as np
import pytest

from sentiment_core.evaluation import report_from_scores


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
    assert set(report.metrics()) == {"accuracy", "f1", "precision", "recall", "roc_auc"}
    assert "positive" in report.classification_report
