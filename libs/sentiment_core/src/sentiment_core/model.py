"""The sentiment model: one sklearn Pipeline built from a frozen, typed config, and its safe (de)serialisation."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Literal

import numpy as np
import scipy.sparse as sp
import skops.io as sio
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.feature_extraction.text import HashingVectorizer, TfidfTransformer, TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import FeatureUnion, Pipeline
from sklearn.preprocessing import normalize
from sklearn.utils.validation import check_array, check_is_fitted

from sentiment_core.char_ngrams import CharNgramHasher
from sentiment_core.text import WORD_PATTERN, TextCleaner

VectorizerKind = Literal["hashing", "tfidf"]
WeightingKind = Literal["nb", "tfidf"]

LABELS: dict[int, str] = {0: "negative", 1: "positive"}


@dataclass(frozen=True)
class ModelConfig:
    """Every hyper-parameter of the pipeline. `params.yaml` -> `model:` maps onto these fields."""

    # Defaults tuned on the IMDb reviews' held-out split (bench/train_quality.py; see bench/README.md): ~0.93 there,
    # ~0.915 on the independent test file (other films), a ~17 MB artifact that loads in well under a second.
    # "hashing" keeps no vocabulary: a small artifact that loads fast. "tfidf" keeps one (larger, slower to load).
    vectorizer: VectorizerKind = "hashing"
    ngram_min: int = 1
    ngram_max: int = 2
    n_features: int = 2**21
    # Vocabulary pruning (max_df: "tfidf" vectorizer only).
    # Features in fewer training documents: dropped by "tfidf", weight 0 in the "nb" weighting of hashed features.
    min_df: int = 3
    max_df: float = 0.95
    sublinear_tf: bool = True
    # Tokens: words with inner apostrophes ("don't") and the "!" / "?" marks, which carry sentiment.
    token_pattern: str = WORD_PATTERN
    # "nb": TF-IDF scaled by the naive-Bayes log-count ratio of each feature (NBSVM, Wang & Manning 2012).
    # "tfidf": plain TF-IDF.
    weighting: WeightingKind = "nb"
    # Additive smoothing of the per-class feature counts behind the log-count ratio ("nb" weighting only).
    nb_alpha: float = 2.0
    C: float = 32.0
    # liblinear's dual solver: much faster than the primal when features outnumber documents, as here.
    dual: bool = True
    max_iter: int = 1000
    random_state: int = 42
    # Optional second view: hashed character n-grams of the cleaned text, NB-weighted and L2-normalised on their own,
    # then fed to the same logistic regression as the words. 0 = words only. Needs "hashing" + "nb".
    # 2..6 with word 1-3-grams, 2**21 each: +0.2-0.4 points on film-grouped CV and the test file, for 2x the artifact,
    # ~5x the fit and the peak memory (~4 GB on the full data), ~3x the single-text latency (2.2 ms: over the 1.5 ms
    # bar), so not the default (bench/README.md).
    char_ngram_min: int = 2
    char_ngram_max: int = 0
    char_n_features: int = 2**21

    def __post_init__(self) -> None:
        # NaN passes every `<=` check below and then fails deep in sklearn naming no parameter: refuse it here.
        for item in fields(self):
            value = getattr(self, item.name)
            if isinstance(value, float) and not np.isfinite(value):
                raise ValueError(f"model.{item.name} must be a finite number, got {value}")
        if self.vectorizer not in ("hashing", "tfidf"):
            raise ValueError(f"model.vectorizer must be 'hashing' or 'tfidf', got {self.vectorizer!r}")
        if self.weighting not in ("nb", "tfidf"):
            raise ValueError(f"model.weighting must be 'nb' or 'tfidf', got {self.weighting!r}")
        try:
            groups = re.compile(self.token_pattern).groups
        except re.error as error:
            raise ValueError(f"model.token_pattern is not a valid regular expression: {error}") from None
        if groups > 1:
            raise ValueError(f"model.token_pattern may have at most one capturing group, got {groups}")
        if self.nb_alpha <= 0:
            raise ValueError(f"model.nb_alpha must be > 0, got {self.nb_alpha}")
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
        if self.char_ngram_max:
            if not 1 <= self.char_ngram_min <= self.char_ngram_max <= 8:
                raise ValueError(
                    "model char n-grams must satisfy 1 <= char_ngram_min <= char_ngram_max <= 8 (or char_ngram_max 0),"
                    f" got {self.char_ngram_min}..{self.char_ngram_max}"
                )
            if not 2**10 <= self.char_n_features <= 2**24:
                raise ValueError(f"model.char_n_features must be between 2**10 and 2**24, got {self.char_n_features}")
            if self.vectorizer != "hashing" or self.weighting != "nb":
                raise ValueError(
                    'model.char_ngram_max > 0 needs vectorizer "hashing" and weighting "nb",'
                    f" got {self.vectorizer!r} and {self.weighting!r}"
                )
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


class LogCountRatio(TransformerMixin, BaseEstimator):
    """NBSVM-style feature weighting of a term-count matrix, learnt from the labels.

    Each feature is weighted by its naive-Bayes log-count ratio r = log((p / |p|) / (q / |q|)), where p and q
    count the positive and negative documents containing it (plus `alpha`), optionally times its IDF; counts
    can be dampened to 1 + log(tf) first. Rows are then L2-normalised. Features never seen in training get
    weight 0. The fitted state is one float32 vector, so the step adds n_features * 4 bytes to the artifact.
    """

    def __init__(self, alpha: float = 1.0, sublinear_tf: bool = True, use_idf: bool = True, min_df: int = 1) -> None:
        self.alpha = alpha
        self.sublinear_tf = sublinear_tf
        self.use_idf = use_idf
        self.min_df = min_df

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.target_tags.required = True
        # Input: a term-count matrix, usually sparse; counts are never negative (log(tf) needs tf > 0).
        tags.input_tags.sparse = True
        tags.input_tags.positive_only = True
        # The output is float32 whatever the input: the weights are float32 and the artifact stays small.
        tags.transformer_tags.preserves_dtype = ["float32"]
        return tags

    def fit(self, X: Any, y: Any) -> LogCountRatio:
        if y is None:
            raise ValueError("LogCountRatio requires y to be passed, but the target y is None")
        counts = check_array(X, accept_sparse="csr", dtype=None)
        if (counts.data if sp.issparse(counts) else counts).min(initial=0) < 0:
            raise ValueError("Negative values in data passed to LogCountRatio: it expects term counts")
        labels = np.asarray(y)
        classes = np.unique(labels)
        if classes.shape[0] != 2:
            raise ValueError(f"LogCountRatio needs exactly two classes, got {classes.shape[0]} class(es)")
        present = sp.csr_matrix(counts > 0, dtype=np.float64)
        positive = np.asarray(present[labels == classes[1]].sum(axis=0)).ravel()
        negative = np.asarray(present[labels == classes[0]].sum(axis=0)).ravel()
        document_frequency = positive + negative
        p = positive + self.alpha
        q = negative + self.alpha
        weight = np.log((p / p.sum()) / (q / q.sum()))
        if self.use_idf:
            n_documents = present.shape[0]
            weight *= np.log((1.0 + n_documents) / (1.0 + document_frequency)) + 1.0
        # Features in fewer than min_df training documents get weight 0, as if never seen: on IMDb they are mostly
        # names and titles of one film, which do not carry over to reviews of other films.
        weight[document_frequency < max(self.min_df, 1)] = 0.0
        self.weight_ = weight.astype(np.float32)
        self.n_features_in_ = counts.shape[1]
        return self

    def transform(self, X: Any) -> sp.csr_matrix:
        check_is_fitted(self, "weight_")
        matrix = sp.csr_matrix(check_array(X, accept_sparse="csr", dtype=np.float32, copy=True))
        if matrix.shape[1] != self.weight_.shape[0]:
            raise ValueError(f"expected {self.weight_.shape[0]} features, got {matrix.shape[1]}")
        if self.sublinear_tf:
            np.log(matrix.data, out=matrix.data)
            matrix.data += 1.0
        # Scale the stored entries in place: O(non-zeros), so a single text stays fast with 2**21 features.
        matrix.data *= self.weight_[matrix.indices]
        return normalize(matrix, norm="l2", copy=False)


class CompactLogisticRegression(LogisticRegression):
    """LogisticRegression whose fitted coefficients are kept as float32.

    liblinear fits in float64; the weights are then stored in half the bytes (one per hashed feature), so twice
    the hash space fits the same artifact budget. Probabilities move by ~1e-7, far below anything we measure.
    """

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> CompactLogisticRegression:
        super().fit(X, y, sample_weight=sample_weight)
        self.coef_ = self.coef_.astype(np.float32)
        return self


def build_pipeline(config: ModelConfig) -> Pipeline:
    """TextCleaner -> vectoriser -> weighting -> LogisticRegression. Accepts a list of strings or a DataFrame."""
    ngram_range = (config.ngram_min, config.ngram_max)
    nb = config.weighting == "nb"
    vectorize: list[tuple[str, Any]]
    if config.vectorizer == "hashing":
        # alternate_sign=False keeps counts non-negative so TF-IDF weighting behaves as with a vocabulary.
        vectorize = [
            (
                "hash",
                HashingVectorizer(
                    ngram_range=ngram_range,
                    n_features=config.n_features,
                    token_pattern=config.token_pattern,
                    alternate_sign=False,
                    norm=None,
                    lowercase=False,
                    dtype=np.float32,
                ),
            )
        ]
        if not nb:
            vectorize.append(("tfidf", TfidfTransformer(sublinear_tf=config.sublinear_tf)))
    else:
        # With "nb" weighting the vectoriser only counts (no IDF, no norm): LogCountRatio does the weighting.
        vectorize = [
            (
                "tfidf",
                TfidfVectorizer(
                    ngram_range=ngram_range,
                    min_df=config.min_df,
                    max_df=config.max_df,
                    token_pattern=config.token_pattern,
                    sublinear_tf=config.sublinear_tf and not nb,
                    use_idf=not nb,
                    norm=None if nb else "l2",
                    lowercase=False,
                    dtype=np.float32,
                ),
            )
        ]
    if nb:
        # The vocabulary vectoriser already dropped rare terms; hashing keeps them, so the weighting drops them.
        min_df = config.min_df if config.vectorizer == "hashing" else 1
        vectorize.append(("nb", LogCountRatio(alpha=config.nb_alpha, sublinear_tf=config.sublinear_tf, min_df=min_df)))
    classifier = CompactLogisticRegression(
        C=config.C,
        max_iter=config.max_iter,
        solver="liblinear",
        dual=config.dual,
        random_state=config.random_state,
    )
    if config.char_ngram_max:
        # Each view is weighted and normalised on its own (as one model over both, the ~7x more character n-grams
        # would dominate the norm), then the classifier sees both side by side.
        chars = [
            ("hash", CharNgramHasher(config.char_ngram_min, config.char_ngram_max, config.char_n_features)),
            ("nb", LogCountRatio(alpha=config.nb_alpha, sublinear_tf=config.sublinear_tf, min_df=config.min_df)),
        ]
        views = FeatureUnion([("words", Pipeline(vectorize)), ("chars", Pipeline(chars))])
        return Pipeline([("clean", TextCleaner()), ("views", views), ("classify", classifier)])
    return Pipeline([("clean", TextCleaner()), *vectorize, ("classify", classifier)])


# The only types a model file may contain beyond skops' own defaults: what build_pipeline produces.
TRUSTED_TYPES: list[str] = [
    "sentiment_core.text.TextCleaner",
    "sentiment_core.model.LogCountRatio",
    "sentiment_core.char_ngrams.CharNgramHasher",
    "sklearn.pipeline.FeatureUnion",
    "sklearn.feature_extraction.text.HashingVectorizer",
    "sklearn.feature_extraction.text.TfidfTransformer",
    "sklearn.feature_extraction.text.TfidfVectorizer",
    "sentiment_core.model.CompactLogisticRegression",
    # Versions trained before CompactLogisticRegression: still loadable (champions, rollback targets).
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
