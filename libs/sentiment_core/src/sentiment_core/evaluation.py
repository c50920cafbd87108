"""Scoring a fitted pipeline on held-out data, as a typed report."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    classification_report,
    confusion_matrix,
    f1_score,
    precision_score,
    recall_score,
    roc_auc_score,
)
from sklearn.pipeline import Pipeline

from sentiment_core.model import LABELS


@dataclass(frozen=True)
class EvaluationReport:
    accuracy: float
    f1: float
    precision: float
    recall: float
    roc_auc: float
    # Calibration: expected calibration error (15 equal-width confidence bins) and Brier score, lower is better.
    ece: float
    brier: float
    # [[true negatives, false positives], [false negatives, true positives]]
    confusion_matrix: tuple[tuple[int, int], tuple[int, int]]
    support: int
    classification_report: str

    def metrics(self) -> dict[str, float]:
        """The scalar metrics, as MLflow logs them."""
        return {
            "accuracy": self.accuracy,
            "f1": self.f1,
            "precision": self.precision,
            "recall": self.recall,
            "roc_auc": self.roc_auc,
            "ece": self.ece,
            "brier": self.brier,
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.metrics(),
            "confusion_matrix": [list(row) for row in self.confusion_matrix],
            "support": self.support,
        }


def evaluate(pipeline: Pipeline, texts: Sequence[str], labels: Sequence[int]) -> EvaluationReport:
    """Accuracy, F1, precision, recall (positive class = 1), ROC AUC, ECE, Brier score and the confusion matrix."""
    y_true = np.asarray(labels, dtype=int)
    probabilities = pipeline.predict_proba(list(texts))[:, 1]
    return report_from_scores(y_true, probabilities)


ECE_BINS = 15


def expected_calibration_error(y_true: np.ndarray, positive_probability: np.ndarray, bins: int = ECE_BINS) -> float:
    """Top-label ECE (Guo et al. 2017): confidence of the predicted class vs its accuracy, over equal-width bins."""
    confidence = np.maximum(positive_probability, 1.0 - positive_probability)
    correct = ((positive_probability >= 0.5).astype(int) == y_true).astype(float)
    # Confidence of the predicted class lies in [0.5, 1]; bins over [0, 1] as usual, the lower half stays empty.
    index = np.clip(np.ceil(confidence * bins).astype(int) - 1, 0, bins - 1)
    total = 0.0
    for b in np.unique(index):
        members = index == b
        total += members.mean() * abs(correct[members].mean() - confidence[members].mean())
    return float(total)


def fit_temperature(y_true: np.ndarray, positive_probability: np.ndarray) -> float:
    """Temperature scaling (Guo et al. 2017): the T > 0 minimising log loss of sigmoid(logit / T) on these labels.

    One parameter: it moves confidence, never which side of 0.5 a text falls on, so accuracy and ranking are kept.
    Fit it on held-out data, never on the data it is judged on. A golden-section search on log T: no scipy solver.
    """
    y = np.asarray(y_true, dtype=float)
    eps = 1e-12
    p = np.clip(np.asarray(positive_probability, dtype=float), eps, 1.0 - eps)
    logits = np.log(p) - np.log1p(-p)

    def loss(log_t: float) -> float:
        q = np.clip(scale_temperature_logits(logits, float(np.exp(log_t))), eps, 1.0 - eps)
        return float(-np.mean(y * np.log(q) + (1.0 - y) * np.log1p(-q)))

    low, high = np.log(0.05), np.log(20.0)
    ratio = (np.sqrt(5.0) - 1.0) / 2.0
    for _ in range(60):
        a, b = high - ratio * (high - low), low + ratio * (high - low)
        if loss(a) <= loss(b):
            high = b
        else:
            low = a
    return float(np.exp((low + high) / 2.0))


def scale_temperature_logits(logits: np.ndarray, temperature: float) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.asarray(logits, dtype=float) / temperature))


def apply_temperature(positive_probability: np.ndarray, temperature: float) -> np.ndarray:
    """P(positive) after temperature scaling: sigmoid(logit(p) / T)."""
    p = np.clip(np.asarray(positive_probability, dtype=float), 1e-12, 1.0 - 1e-12)
    return scale_temperature_logits(np.log(p) - np.log1p(-p), temperature)


def brier_score(y_true: np.ndarray, positive_probability: np.ndarray) -> float:
    return float(np.mean((positive_probability - y_true) ** 2))


def report_from_scores(y_true: np.ndarray, positive_probability: np.ndarray) -> EvaluationReport:
    y_pred = (positive_probability >= 0.5).astype(int)
    matrix = confusion_matrix(y_true, y_pred, labels=[0, 1])
    return EvaluationReport(
        accuracy=float(accuracy_score(y_true, y_pred)),
        f1=float(f1_score(y_true, y_pred, zero_division=0)),
        precision=float(precision_score(y_true, y_pred, zero_division=0)),
        recall=float(recall_score(y_true, y_pred, zero_division=0)),
        roc_auc=float(roc_auc_score(y_true, positive_probability)),
        ece=expected_calibration_error(y_true, positive_probability),
        brier=brier_score(y_true, positive_probability),
        confusion_matrix=((int(matrix[0, 0]), int(matrix[0, 1])), (int(matrix[1, 0]), int(matrix[1, 1]))),
        support=len(y_true),
        classification_report=classification_report(
            y_true, y_pred, labels=[0, 1], target_names=[LABELS[0], LABELS[1]], digits=4, zero_division=0
        ),
    )
