"""Scoring models on the held-out split, sharing the work that does not depend on what a model learned.

The candidate and the champion are scored on the same texts. Their first pipeline steps (text cleaning, feature
hashing) learn nothing from data: with equal parameters they turn the same texts into the same features, whichever
model they belong to. So those features are computed once (while the candidate's classifier trains) and reused for
both models; only the learned steps (TF-IDF weights, classifier) run per model.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
import pandas as pd
from sklearn.feature_extraction.text import HashingVectorizer
from sklearn.pipeline import Pipeline

from sentiment_core.data import LABEL, TEXT
from sentiment_core.evaluation import EvaluationReport, report_from_scores
from sentiment_core.text import TextCleaner

# Steps whose transform depends only on their parameters and input, never on fitted state. Listed by exact type
# (not by sklearn tags) because that is a promise about the code: a subclass could learn something.
STATELESS_STEPS: tuple[type, ...] = (TextCleaner, HashingVectorizer)

StepKey = tuple[str, str]


def stateless_prefix(pipeline: Pipeline) -> int:
    """How many leading steps are stateless. The final estimator is never counted: it is what we score."""
    count = 0
    for _, step in pipeline.steps[:-1]:
        if type(step) not in STATELESS_STEPS:
            break
        count += 1
    return count


def step_key(step: Any) -> StepKey:
    """Identity of a stateless step's output: its exact type and its parameters."""
    params = sorted(step.get_params(deep=False).items())
    return f"{type(step).__module__}.{type(step).__qualname__}", repr(params)


class HeldOut:
    """The test split, with the stateless-prefix features of every pipeline scored on it, computed once."""

    def __init__(self, frame: pd.DataFrame) -> None:
        self.texts: list[str] = frame[TEXT].tolist()
        self.labels: np.ndarray = frame[LABEL].to_numpy(dtype=int)
        self._features: dict[tuple[StepKey, ...], Any] = {}
        # Features may be computed in a helper thread while the classifier trains: guard the cache.
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self.texts)

    def prefix_features(self, pipeline: Pipeline) -> tuple[int, Any]:
        """(k, X): the texts passed through the pipeline's k stateless leading steps, from the cache when possible."""
        k = stateless_prefix(pipeline)
        steps = [step for _, step in pipeline.steps[:k]]
        keys = tuple(step_key(step) for step in steps)
        features: Any = self.texts
        done = 0
        with self._lock:
            # Longest cached prefix first: a champion with another vectoriser still reuses the cleaned texts.
            for length in range(k, 0, -1):
                if keys[:length] in self._features:
                    features, done = self._features[keys[:length]], length
                    break
        for index in range(done, k):
            # One step at a time so that every prefix is cached (a champion with another vectoriser reuses some).
            features = steps[index].transform(features)
            with self._lock:
                self._features[keys[: index + 1]] = features
        return k, features

    def score(self, pipeline: Pipeline) -> EvaluationReport:
        """The same report as `sentiment_core.evaluation.evaluate` on these texts, without recomputing shared work."""
        return report_from_scores(self.labels, self.positive_probabilities(pipeline))

    def positive_probabilities(self, pipeline: Pipeline) -> np.ndarray:
        """P(positive) for each held-out text, reusing the cached stateless-prefix features."""
        k, features = self.prefix_features(pipeline)
        rest = pipeline if k == 0 else Pipeline(pipeline.steps[k:])
        return np.asarray(rest.predict_proba(features)[:, 1])
