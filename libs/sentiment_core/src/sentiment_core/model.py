"""The sentiment model: one sklearn Pipeline built from a frozen, typed config, and its safe (de)serialisation."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Literal

import numpy as np
import skops.io as sio
from sklearn.feature_extraction.text import HashingVectorizer, TfidfTransformer, TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

from sentiment_core.text import TextCleaner

VectorizerKind = Literal["hashing", "tfidf"]

LABELS: dict[int, str] = {0: "negative", 1: "positive"}


@dataclass(frozen=True)
class ModelConfig:
    """Every hyper-parameter of the pipeline. `params.yaml` -> `model:` maps onto these fields."""

    # "hashing" keeps no vocabulary: a small artifact that loads fast. "tfidf" keeps one (larger, slower to load).
    vectorizer: VectorizerKind = "hashing"
    ngram_min: int = 1
    ngram_max: int = 3
    n_features: int = 2**21
    min_df: int = 2
    max_df: float = 0.95
    sublinear_tf: bool = True
    C: float = 8.0
    max_iter: int = 1000
    random_state: int = 42

    def __post_init__(self) -> None:
        if self.vectorizer not in ("hashing", "tfidf"):
            raise ValueError(f"model.vectorizer must be 'hashing' or 'tfidf', got {self.vectorizer!r}")
        if not 1 <= self.ngram_min <= self.ngram_max <= 5:
            raise ValueError(
                f"model n-grams must satisfy 1 <= ngram_min <= ngram_max <= 5, got {self.ngram_min}..{self.ngram_max}"
            )
        if not 2**10 <= self.n_features <= 2**24:
            raise ValueError(f"model.n_features must be between 2**10 and 2**24, got {self.n_features}")
        if self.min_df < 1:
            raise ValueError(f"model.min_df must be >= 1, got {self.min_df}")
        if not 0.0 < self.max_df <= 1.0:
            raise ValueError(f"model.max_df must be in (0, 1], got {self.max_df}")
        if self.C <= 0:
            raise ValueError(f"model.C must be > 0, got {self.C}")
        if self.max_iter < 1:
            raise ValueError(f"model.max_iter must be >= 1, got {self.max_iter}")

    @classmethod
    def from_mapping(cls, values: dict[str, Any]) -> ModelConfig:
        """Build from a plain mapping (params.yaml, CLI overrides), rejecting unknown keys by name."""
        known = {field.name: field for field in fields(cls)}
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise ValueError(f"unknown model parameter(s): {', '.join(unknown)}; known: {', '.join(known)}")
        coerced: dict[str, Any] = {}
        for name, value in values.items():
            default = getattr(cls, name)
            coerced[name] = _coerce(name, value, type(default))
        return cls(**coerced)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def params_hash(self) -> str:
        """Stable hash of the parameters, for lineage: equal configs give equal hashes."""
        payload = json.dumps(self.to_dict(), sort_keys=True).encode()
        return hashlib.sha256(payload).hexdigest()[:16]


def _coerce(name: str, value: Any, kind: type) -> Any:
    if isinstance(value, kind) and not (kind is int and isinstance(value, bool)):
        return value
    try:
        if kind is bool:
            if isinstance(value, str) and value.lower() in ("true", "1", "yes", "false", "0", "no"):
                return value.lower() in ("true", "1", "yes")
            raise ValueError
        if kind is int:
            return int(str(value).replace("_", ""))
        if kind is float:
            return float(value)
        return kind(value)
    except (TypeError, ValueError):
        raise ValueError(f"model parameter {name} must be {kind.__name__}, got {value!r}") from None


def build_pipeline(config: ModelConfig) -> Pipeline:
    """TextCleaner -> vectoriser -> LogisticRegression. Accepts a list of strings or a DataFrame with `text`."""
    ngram_range = (config.ngram_min, config.ngram_max)
    if config.vectorizer == "hashing":
        # alternate_sign=False keeps counts non-negative so TF-IDF weighting behaves as with a vocabulary.
        vectorize: list[tuple[str, Any]] = [
            (
                "hash",
                HashingVectorizer(
                    ngram_range=ngram_range,
                    n_features=config.n_features,
                    alternate_sign=False,
                    norm=None,
                    lowercase=False,
                    dtype=np.float32,
                ),
            ),
            ("tfidf", TfidfTransformer(sublinear_tf=config.sublinear_tf)),
        ]
    else:
        vectorize = [
            (
                "tfidf",
                TfidfVectorizer(
                    ngram_range=ngram_range,
                    min_df=config.min_df,
                    max_df=config.max_df,
                    sublinear_tf=config.sublinear_tf,
                    lowercase=False,
                    dtype=np.float32,
                ),
            )
        ]
    classifier = LogisticRegression(
        C=config.C, max_iter=config.max_iter, solver="liblinear", random_state=config.random_state
    )
    return Pipeline([("clean", TextCleaner()), *vectorize, ("classify", classifier)])


# The only types a model file may contain beyond skops' own defaults: what build_pipeline produces.
TRUSTED_TYPES: list[str] = [
    "sentiment_core.text.TextCleaner",
    "sklearn.feature_extraction.text.HashingVectorizer",
    "sklearn.feature_extraction.text.TfidfTransformer",
    "sklearn.feature_extraction.text.TfidfVectorizer",
    "sklearn.linear_model._logistic.LogisticRegression",
    "sklearn.pipeline.Pipeline",
    "numpy.float32",
    "numpy.float64",
    "numpy.int64",
    "numpy.dtype",
    "builtins.slice",
]


def save_pipeline(pipeline: Pipeline, path: Path) -> None:
    sio.dump(pipeline, path)


def load_pipeline(path: Path) -> Pipeline:
    """Load a skops file, trusting only the types our pipeline is made of; anything else is refused."""
    untrusted = [t for t in sio.get_untrusted_types(file=path) if t not in TRUSTED_TYPES]
    if untrusted:
        raise ValueError(f"model file {path} contains types outside the allow-list: {', '.join(untrusted)}")
    pipeline = sio.load(path, trusted=TRUSTED_TYPES)
    if not isinstance(pipeline, Pipeline):
        raise ValueError(f"model file {path} holds a {type(pipeline).__name__}, not an sklearn Pipeline")
    return pipeline
