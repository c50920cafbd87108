"""The model being served: an immutable `LoadedModel`, swapped in whole by one reference assignment.

A candidate is validated on built-in canary texts and warmed *before* it becomes `ModelStore.current`, so a
request that read `current` once is served wholly by one model, old or new, never a mix.
"""

from __future__ import annotations

import gc
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import numpy as np

from sentiment_core.drift import DriftReference
from sentiment_core.model import LABELS
from sentiment_core.tags import LINEAGE_TAG_PREFIX, METRIC_TAG_PREFIX

logger = logging.getLogger(__name__)


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


class ModelRejectedError(Exception):
    """The candidate must not serve: bad artifact, unsafe content, or failed validation. Not retried soon."""


@dataclass(frozen=True)
class LoadedModel:
    """A validated, warmed pipeline and what the registry says about it. Never mutated after creation."""

    name: str
    version: str
    alias: str
    pipeline: Any
    run_id: str | None = None
    tags: Mapping[str, str] = field(default_factory=dict)
    loaded_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    # Column j of predict_proba is the probability of label _labels[j] (from the estimator's classes_).
    _labels: tuple[str, ...] = ("negative", "positive")
    # The version's reference profile for drift_monitor.py; None for versions logged without one ("unknown").
    drift_reference: DriftReference | None = None

    @classmethod
    def create(
        cls, *, name: str, version: str, alias: str, pipeline: Any, run_id: str | None, tags: Mapping[str, str]
    ) -> LoadedModel:
        classes = [int(c) for c in getattr(pipeline, "classes_", [])]
        if sorted(classes) != sorted(LABELS):
            raise ModelRejectedError(f"model classes are {classes}, expected {sorted(LABELS)} ({LABELS})")
        labels = tuple(LABELS[c] for c in classes)
        return cls(
            name=name, version=version, alias=alias, pipeline=pipeline, run_id=run_id, tags=dict(tags), _labels=labels
        )

    def with_registry_info(self, alias: str, run_id: str | None, tags: Mapping[str, str]) -> LoadedModel:
        """The same pipeline swapped back in (rollback to the standby), with fresh registry metadata."""
        return replace(self, alias=alias, run_id=run_id, tags=dict(tags), loaded_at=datetime.now(UTC))

    @property
    def metrics(self) -> dict[str, float]:
        values: dict[str, float] = {}
        for key, raw in self.tags.items():
            if key.startswith(METRIC_TAG_PREFIX):
                try:
                    values[key[len(METRIC_TAG_PREFIX) :]] = float(raw)
                except ValueError:
                    continue
        return values

    @property
    def lineage(self) -> dict[str, str]:
        return {key: value for key, value in self.tags.items() if key.startswith(LINEAGE_TAG_PREFIX)}

    def predict(self, texts: Sequence[str]) -> tuple[list[str], list[float]]:
        """One vectorised call on plain strings (no pandas on the hot path): labels and their probabilities."""
        proba = self.pipeline.predict_proba(list(texts))
        best = proba.argmax(axis=1)
        confidence = proba[np.arange(len(best)), best]
        labels = self._labels
        return [labels[i] for i in best.tolist()], confidence.tolist()


def recorded_accuracy(tags: Mapping[str, str]) -> float | None:
    raw = tags.get(METRIC_TAG_PREFIX + "accuracy")
    if raw is None:
        return None
    try:
        return float(raw)
    except ValueError:
        return None


def validate(model: LoadedModel, *, min_accuracy: float, canary_min_accuracy: float) -> dict[str, float]:
    """Refuse a candidate that could not serve well. Raises ModelRejectedError with a reason a human can act on."""
    accuracy = recorded_accuracy(model.tags)
    if min_accuracy > 0:
        if accuracy is None:
            raise ModelRejectedError(
                f"version {model.version} has no readable '{METRIC_TAG_PREFIX}accuracy' tag; the floor is"
                f" {min_accuracy:.3f} (MODEL_MIN_ACCURACY)"
            )
        if accuracy < min_accuracy:
            raise ModelRejectedError(
                f"version {model.version} recorded accuracy {accuracy:.4f} is below the floor {min_accuracy:.4f}"
                " (MODEL_MIN_ACCURACY)"
            )
    texts = [text for text, _ in CANARIES]
    expected = [LABELS[label] for _, label in CANARIES]
    try:
        proba = np.asarray(model.pipeline.predict_proba(texts), dtype=float)
        labels, confidence = model.predict(texts)
    except Exception as error:
        raise ModelRejectedError(f"version {model.version} cannot predict on plain strings: {error!r}") from error
    if proba.shape != (len(texts), 2):
        raise ModelRejectedError(f"predict_proba returned shape {proba.shape}, expected ({len(texts)}, 2)")
    if not np.all(np.isfinite(proba)) or proba.min() < 0 or proba.max() > 1:
        raise ModelRejectedError("predict_proba returned values outside [0, 1]")
    if not np.allclose(proba.sum(axis=1), 1.0, atol=1e-4):
        raise ModelRejectedError("predict_proba rows do not sum to 1")
    if not all(math.isfinite(c) and 0.5 <= c <= 1.0 for c in confidence):
        raise ModelRejectedError("confidences are not probabilities of the predicted class")
    predicted = set(labels)
    if predicted != set(LABELS.values()):
        raise ModelRejectedError(
            f"version {model.version} predicts only {sorted(predicted)} on the {len(texts)} canary texts;"
            " a usable model returns both classes"
        )
    hits = sum(got == want for got, want in zip(labels, expected, strict=True))
    canary_accuracy = hits / len(texts)
    if canary_accuracy < canary_min_accuracy:
        raise ModelRejectedError(
            f"version {model.version} classifies {hits}/{len(texts)} canary texts correctly; at least"
            f" {canary_min_accuracy:.0%} is required (CANARY_MIN_ACCURACY)"
        )
    return {"canary_accuracy": canary_accuracy, "recorded_accuracy": accuracy if accuracy is not None else math.nan}


def warm(model: LoadedModel, rounds: int = 3) -> None:
    """Pay first-call costs (allocations, lazy imports, caches) before the first real request does."""
    texts = [text for text, _ in CANARIES]
    for _ in range(rounds):
        model.predict(texts[:1])
        model.predict(texts)


def freeze_heap() -> None:
    """Move every object alive now (imports, the app, the models) out of the garbage collector's reach.

    Why: the process holds ~250k long-lived objects (scikit-learn, scipy, pandas, MLflow's client); each full
    collection walks all of them, ~100-200 ms on a busy core, during which nothing is served. Measured here:
    p99 at 8 connections fell from ~90-140 ms to ~10 ms and throughput doubled. Reference counting still frees
    a replaced model; only cyclic garbage alive at the moment of a freeze stays (small, once per swap).
    """
    gc.freeze()


class ModelStore:
    """Holds the serving model and a warm standby (the previous one) for an instant rollback.

    Readers take `store.current` once per request/batch. Writers run only in the poller, one at a time.
    """

    def __init__(self) -> None:
        self.current: LoadedModel | None = None
        self.standby: LoadedModel | None = None

    def swap(self, model: LoadedModel) -> LoadedModel | None:
        """Serve `model` from now on; the model it replaces becomes the standby. Returns the replaced one."""
        previous = self.current
        # The one assignment every request observes: before it, all old; after it, all new.
        self.current = model
        if previous is not None and previous.version != model.version:
            self.standby = previous
        return previous

    def standby_for(self, version: str) -> LoadedModel | None:
        standby = self.standby
        return standby if standby is not None and standby.version == version else None
