"""The quality gate: the absolute floors a model must clear before it may hold `champion` or serve.

One definition, applied in three places: the trainer's promotion (before any alias moves), `sentiment-trainer
set-alias` / `rollback` (before they move `champion`), and the inference service (before it swaps a model in).
Comparing with the champion is relative; this is absolute: a run on 10 reviews, a model that answers one class
only, or one below the accuracy/F1 floors never becomes champion, whatever the champion scored.

Two kinds of evidence:
- held-out evidence, recorded on the version as tags at registration (size, accuracy, F1, predicted classes);
- canary texts, unambiguous reviews any sane model gets right, checked on the loaded pipeline itself.

No MLflow here: the lean inference process imports this module.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from sentiment_core.errors import SentimentError
from sentiment_core.evaluation import EvaluationReport
from sentiment_core.model import LABELS
from sentiment_core.tags import (
    METRIC_TAG_PREFIX,
    TAG_HELD_OUT_SIZE,
    TAG_PREDICTED_NEGATIVE,
    TAG_PREDICTED_POSITIVE,
)

# Unambiguous reviews (label 1 = positive, 0 = negative). Any sane sentiment model gets these right; a model
# that predicts one class only, or garbage, does not.
CANARIES: tuple[tuple[str, int], ...] = (
    ("An absolute masterpiece. The acting was brilliant and the story moved me to tears. I loved it.", 1),
    ("One of the best films I have ever seen: wonderful performances, a beautiful score, superb direction.", 1),
    ("Great movie! Funny, touching and perfectly paced. I would happily watch it again and again.", 1),
    ("A delightful, charming film with an excellent cast. Highly recommended to everyone.", 1),
    ("Fantastic from start to finish, a truly enjoyable and inspiring experience. Ten out of ten.", 1),
    ("The performances are outstanding and the script is smart and heartfelt. A wonderful surprise.", 1),
    ("The worst movie I have ever seen. Boring, stupid and a complete waste of time and money.", 0),
    ("Awful acting, a terrible script and horrible direction. I want those two hours of my life back.", 0),
    ("Dull and painfully bad. The plot makes no sense and the dialogue is laughable. Avoid it.", 0),
    ("A boring, poorly made mess. I walked out halfway through; utterly disappointing.", 0),
    ("Terrible. The characters are annoying, the jokes fall flat and the ending is just awful.", 0),
    ("Worst film of the year: badly written, badly acted and incredibly boring. Total waste.", 0),
)


class QualityGateError(SentimentError, ValueError):
    """A model below the floors. `failures` lists each failed floor in words; the message names the model."""

    def __init__(self, what: str, failures: list[str]) -> None:
        self.what = what
        self.failures = tuple(failures)
        super().__init__(f"{what} is below the quality floors: {'; '.join(failures)}")

    @property
    def reason(self) -> str:
        return "; ".join(self.failures)


@dataclass(frozen=True)
class QualityFloors:
    """The floors. Defaults must agree with params.yaml `promotion:` (a test checks) and are the API's defaults."""

    # Held-out reviews the recorded metrics were measured on: below this they are noise (10 reviews: +-30 points).
    min_held_out: int = 200
    min_accuracy: float = 0.7
    min_f1: float = 0.7
    # Share of CANARIES classified right. Both classes must always be predicted, on the held-out split and here.
    min_canary_accuracy: float = 0.75

    def __post_init__(self) -> None:
        if isinstance(self.min_held_out, bool) or not isinstance(self.min_held_out, int) or self.min_held_out < 2:
            raise ValueError(f"min_held_out must be an integer >= 2, got {self.min_held_out!r}")
        for name in ("min_accuracy", "min_f1", "min_canary_accuracy"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or not math.isfinite(value) or not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be a number between 0 and 1, got {value!r}")

    def to_dict(self) -> dict[str, Any]:
        return {field.name: getattr(self, field.name) for field in fields(self)}


@dataclass(frozen=True)
class HeldOutEvidence:
    """What a model did on its held-out split; None = not recorded (a version registered elsewhere or earlier)."""

    size: int | None
    accuracy: float | None
    f1: float | None
    predicted_negative: int | None
    predicted_positive: int | None

    @classmethod
    def from_report(cls, report: EvaluationReport) -> HeldOutEvidence:
        (tn, fp), (fn, tp) = report.confusion_matrix
        return cls(
            size=report.support,
            accuracy=report.accuracy,
            f1=report.f1,
            predicted_negative=tn + fn,
            predicted_positive=fp + tp,
        )

    @classmethod
    def from_tags(cls, tags: Mapping[str, str]) -> HeldOutEvidence:
        return cls(
            size=_int_tag(tags, TAG_HELD_OUT_SIZE),
            accuracy=_float_tag(tags, METRIC_TAG_PREFIX + "accuracy"),
            f1=_float_tag(tags, METRIC_TAG_PREFIX + "f1"),
            predicted_negative=_int_tag(tags, TAG_PREDICTED_NEGATIVE),
            predicted_positive=_int_tag(tags, TAG_PREDICTED_POSITIVE),
        )

    def tags(self) -> dict[str, str]:
        """The version tags the API and set-alias read back (metric.accuracy / metric.f1 are written elsewhere)."""
        values = {
            TAG_HELD_OUT_SIZE: self.size,
            TAG_PREDICTED_NEGATIVE: self.predicted_negative,
            TAG_PREDICTED_POSITIVE: self.predicted_positive,
        }
        return {key: str(value) for key, value in values.items() if value is not None}


def held_out_failures(evidence: HeldOutEvidence, floors: QualityFloors) -> list[str]:
    """Each floor the held-out evidence misses, in words.

    A missing accuracy or F1 fails: every version this project registers records them. A missing held-out size or
    predicted-class count does not: versions registered before those tags existed lack them, and refusing them
    would take an upgraded service's champion (and every fallback) away at once. Such a version is judged on its
    recorded accuracy and F1, and on the canaries, which check both classes on the loaded pipeline itself.
    """
    failures: list[str] = []
    if evidence.size is not None and evidence.size < floors.min_held_out:
        failures.append(f"held-out split of {evidence.size} reviews, fewer than the minimum {floors.min_held_out}")
    for name, value, floor in (
        ("accuracy", evidence.accuracy, floors.min_accuracy),
        ("F1", evidence.f1, floors.min_f1),
    ):
        if value is None or not math.isfinite(value):
            failures.append(f"no recorded held-out {name}; the floor is {floor:.3f}")
        elif value < floor:
            failures.append(f"held-out {name} {value:.4f} below the floor {floor:.4f}")
    negatives, positives = evidence.predicted_negative, evidence.predicted_positive
    if negatives == 0 or positives == 0:
        only = "positive" if negatives == 0 else "negative"
        failures.append(f"predicts only '{only}' on its held-out split (one-class model)")
    return failures


def canary_failures(pipeline: Any, floors: QualityFloors) -> tuple[list[str], float | None]:
    """Floors the pipeline misses on CANARIES, and its canary accuracy (None when it cannot predict)."""
    classes = [int(c) for c in getattr(pipeline, "classes_", [])]
    if sorted(classes) != sorted(LABELS):
        return [f"model classes are {classes}, expected {sorted(LABELS)} ({LABELS})"], None
    texts = [text for text, _ in CANARIES]
    try:
        proba = np.asarray(pipeline.predict_proba(texts), dtype=float)
    except Exception as error:
        return [f"cannot predict on plain strings: {error!r}"], None
    if proba.shape != (len(texts), 2):
        return [f"predict_proba returned shape {proba.shape}, expected ({len(texts)}, 2)"], None
    if not np.all(np.isfinite(proba)) or proba.min() < 0 or proba.max() > 1:
        return ["predict_proba returned values outside [0, 1]"], None
    if not np.allclose(proba.sum(axis=1), 1.0, atol=1e-4):
        return ["predict_proba rows do not sum to 1"], None
    predicted = [classes[i] for i in proba.argmax(axis=1).tolist()]
    failures: list[str] = []
    if len(set(predicted)) < 2:
        failures.append(f"predicts only '{LABELS[predicted[0]]}' on the {len(texts)} canary texts (one-class model)")
    hits = sum(got == want for got, (_, want) in zip(predicted, CANARIES, strict=True))
    accuracy = hits / len(texts)
    if accuracy < floors.min_canary_accuracy:
        failures.append(
            f"classifies {hits}/{len(texts)} canary texts correctly, below the floor {floors.min_canary_accuracy:.0%}"
        )
    return failures, accuracy


def check(what: str, evidence: HeldOutEvidence, pipeline: Any | None, floors: QualityFloors) -> float | None:
    """Raise QualityGateError naming every failed floor; returns the canary accuracy (None without a pipeline)."""
    failures = held_out_failures(evidence, floors)
    canary_accuracy = None
    if pipeline is not None:
        more, canary_accuracy = canary_failures(pipeline, floors)
        failures.extend(more)
    if failures:
        raise QualityGateError(what, failures)
    return canary_accuracy


def _float_tag(tags: Mapping[str, str], key: str) -> float | None:
    raw = tags.get(key)
    try:
        return float(raw) if raw is not None else None
    except ValueError:
        return None


def _int_tag(tags: Mapping[str, str], key: str) -> int | None:
    raw = tags.get(key)
    try:
        return int(raw) if raw is not None else None
    except ValueError:
        return None
