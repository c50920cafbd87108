"""Drift of live traffic: the reference profile a model version carries, and PSI scores of a live window against it.

Signals, chosen for a text classifier whose inputs have no fixed schema:
- `confidence`: the probability of the predicted class. Falls when texts stop looking like reviews.
- `positive_rate`: the share of texts predicted positive (a one-class flood moves it).
- `text_length`: tokens per text (bots, truncation, one-word inputs).
- `unseen_tokens`: per text, the share of its tokens never seen in the training texts (other languages, code,
  other domains). "Seen" is a bitmap of hashed unigram buckets built from the training texts, not the model's
  own vocabulary: the default model hashes its features and keeps no vocabulary, a word list would be ~1 MB of
  JSON, while the bitmap is a fixed 128 KiB (before compression), works for every vectoriser, and costs one
  array lookup per token. A bucket shared by a seen and an unseen word counts the unseen one as seen (about
  7% of 2**20 buckets are set for ~20k reviews), so the share is slightly underestimated, the same way at
  training and serving time.

Each continuous signal is binned on the deciles of its held-out values (duplicates merged), so every bin holds
about a tenth of the reference; the Population Stability Index compares the live shares with those. Pure
functions over numpy arrays; no MLflow, no I/O: the trainer logs `DriftReference.to_dict()` as a run artifact
and the inference service reads it back with `DriftReference.from_dict`.
"""

from __future__ import annotations

import base64
import math
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from sklearn.feature_extraction.text import HashingVectorizer

from sentiment_core.errors import SentimentError
from sentiment_core.text import WORD_PATTERN, clean_text

# The run artifact that holds a version's profile; versions trained before it existed have none ("unknown").
DRIFT_REFERENCE_ARTIFACT = "drift_reference.json"
SCHEMA_VERSION = 1
SIGNALS: tuple[str, ...] = ("confidence", "positive_rate", "text_length", "unseen_tokens")
SEEN_BUCKETS = 2**20
QUANTILE_BINS = 10
# Laplace-style pseudo-count per bin: an empty bin must not make PSI infinite (log of zero).
PSEUDO_COUNT = 0.5
# Conventional PSI reading: < 0.1 no real change, 0.1-0.25 moderate, > 0.25 a population that moved.
DEFAULT_WARNING_PSI = 0.1
DEFAULT_DRIFT_PSI = 0.25

Status = Literal["ok", "warning", "drift"]


class DriftReferenceError(SentimentError, ValueError):
    """A stored reference profile that cannot be read; the message says what is wrong."""


@dataclass(frozen=True)
class Binned:
    """A signal's reference distribution: bin edges (bin i holds edges[i-1] <= x < edges[i]) and bin shares."""

    edges: tuple[float, ...]
    shares: tuple[float, ...]
    mean: float

    def __post_init__(self) -> None:
        if len(self.shares) != len(self.edges) + 1:
            raise DriftReferenceError(
                f"{len(self.edges)} edges need {len(self.edges) + 1} shares, got {len(self.shares)}"
            )
        if list(self.edges) != sorted(set(self.edges)):
            raise DriftReferenceError("bin edges must be strictly increasing")
        if any(not 0.0 < share <= 1.0 for share in self.shares) or not math.isclose(
            sum(self.shares), 1.0, abs_tol=1e-6
        ):
            raise DriftReferenceError("bin shares must be in (0, 1] and sum to 1")

    def counts(self, values: np.ndarray) -> np.ndarray:
        return np.bincount(np.searchsorted(self.edges, values, side="right"), minlength=len(self.shares))

    def to_dict(self) -> dict[str, Any]:
        return {"edges": list(self.edges), "shares": list(self.shares), "mean": self.mean}

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> Binned:
        return cls(
            edges=tuple(float(x) for x in raw["edges"]),
            shares=tuple(float(x) for x in raw["shares"]),
            mean=float(raw["mean"]),
        )


@dataclass(frozen=True)
class SeenTokens:
    """Which hashed unigram buckets occurred in the training texts (one bit per bucket)."""

    n_buckets: int
    bits: np.ndarray  # bool, shape (n_buckets,)

    def vectorizer(self) -> HashingVectorizer:
        # Same cleaning and token pattern as the model (sentiment_core.text), unigrams, raw counts.
        return HashingVectorizer(
            preprocessor=clean_text,
            token_pattern=WORD_PATTERN,
            lowercase=False,
            n_features=self.n_buckets,
            alternate_sign=False,
            norm=None,
            dtype=np.float32,
        )

    @classmethod
    def from_texts(cls, texts: Sequence[str], n_buckets: int = SEEN_BUCKETS) -> SeenTokens:
        empty = cls(n_buckets, np.zeros(n_buckets, dtype=bool))
        bits = np.zeros(n_buckets, dtype=bool)
        bits[np.unique(empty.vectorizer().transform(list(texts)).indices)] = True
        return cls(n_buckets, bits)

    def to_dict(self) -> dict[str, Any]:
        packed = zlib.compress(np.packbits(self.bits).tobytes(), level=9)
        return {"n_buckets": self.n_buckets, "bitmap_zlib_b64": base64.b64encode(packed).decode("ascii")}

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> SeenTokens:
        n_buckets = int(raw["n_buckets"])
        if n_buckets < 8 or n_buckets % 8:
            raise DriftReferenceError(f"seen-token buckets must be a positive multiple of 8, got {n_buckets}")
        try:
            packed = np.frombuffer(zlib.decompress(base64.b64decode(raw["bitmap_zlib_b64"])), dtype=np.uint8)
        except (ValueError, zlib.error) as error:
            raise DriftReferenceError(f"seen-token bitmap is not valid base64 zlib data: {error}") from None
        if packed.size * 8 != n_buckets:
            raise DriftReferenceError(f"seen-token bitmap has {packed.size * 8} bits, expected {n_buckets}")
        return cls(n_buckets, np.unpackbits(packed).astype(bool))


@dataclass(frozen=True)
class TextStats:
    """Per text: number of tokens and the share of them unseen in training (0 for a text without tokens)."""

    lengths: np.ndarray
    unseen_shares: np.ndarray


def text_stats(texts: Sequence[str], seen: SeenTokens) -> TextStats:
    """One vectorised pass over the texts (sklearn's hashing, no vocabulary), O(total tokens)."""
    if not texts:
        return TextStats(lengths=np.zeros(0), unseen_shares=np.zeros(0))
    counts = seen.vectorizer().transform(list(texts)).tocsr()
    lengths = np.asarray(counts.sum(axis=1)).ravel()
    unseen_entries = counts.data * ~seen.bits[counts.indices]
    # Row sums of the unseen entries, through the CSR row pointers (reduceat skips nothing for empty rows: mask them).
    unseen = np.zeros(counts.shape[0], dtype=np.float64)
    rows = np.flatnonzero(np.diff(counts.indptr))
    if rows.size:
        unseen[rows] = np.add.reduceat(unseen_entries, counts.indptr[rows])
    shares = np.divide(unseen, lengths, out=np.zeros_like(unseen), where=lengths > 0)
    return TextStats(lengths=lengths.astype(np.float64), unseen_shares=shares)


@dataclass(frozen=True)
class LiveSample:
    """The raw values of a window of live (or held-out) texts, one entry per text."""

    confidences: np.ndarray
    positives: np.ndarray  # bool: predicted positive
    lengths: np.ndarray
    unseen_shares: np.ndarray

    def __len__(self) -> int:
        return int(self.confidences.shape[0])

    def values(self, signal: str) -> np.ndarray:
        if signal == "confidence":
            return self.confidences
        if signal == "positive_rate":
            return self.positives.astype(np.float64)
        if signal == "text_length":
            return self.lengths
        if signal == "unseen_tokens":
            return self.unseen_shares
        raise KeyError(f"unknown drift signal {signal!r}; known: {', '.join(SIGNALS)}")


def sample_from_scores(texts: Sequence[str], positive_proba: np.ndarray, seen: SeenTokens) -> LiveSample:
    """What the service records for texts the model scored: confidence, predicted class, length, unseen share."""
    proba = np.asarray(positive_proba, dtype=np.float64)
    if proba.shape != (len(texts),):
        raise ValueError(f"expected {len(texts)} positive-class probabilities, got shape {proba.shape}")
    stats = text_stats(texts, seen)
    return LiveSample(
        confidences=np.maximum(proba, 1.0 - proba),
        positives=proba >= 0.5,
        lengths=stats.lengths,
        unseen_shares=stats.unseen_shares,
    )


def smoothed_shares(counts: np.ndarray) -> np.ndarray:
    padded = counts.astype(np.float64) + PSEUDO_COUNT
    return padded / padded.sum()


def binned(values: np.ndarray, edges: Sequence[float] | None = None) -> Binned:
    """Bin `values` on the given edges, or on their own deciles (duplicates merged) when none are given."""
    values = np.asarray(values, dtype=np.float64)
    if values.size == 0:
        raise ValueError("cannot profile an empty sample")
    if edges is None:
        quantiles = np.quantile(values, np.linspace(0, 1, QUANTILE_BINS + 1)[1:-1])
        # Edges strictly inside the range only: a point mass (e.g. many texts with no unseen token) is one bin.
        edges = [float(q) for q in np.unique(quantiles) if values.min() < q]
        if not edges:
            # A constant reference (e.g. no unseen token at all): one bin for it, one for anything above it.
            edges = [float(np.nextafter(values.max(), np.inf))]
    edges_t = tuple(float(e) for e in edges)
    counts = np.bincount(np.searchsorted(edges_t, values, side="right"), minlength=len(edges_t) + 1)
    return Binned(edges=edges_t, shares=tuple(smoothed_shares(counts).tolist()), mean=float(values.mean()))


def psi(expected: Sequence[float] | np.ndarray, actual: Sequence[float] | np.ndarray) -> float:
    """Population Stability Index: sum over bins of (actual - expected) * ln(actual / expected); both sum to 1."""
    e = np.asarray(expected, dtype=np.float64)
    a = np.asarray(actual, dtype=np.float64)
    if e.shape != a.shape or e.ndim != 1 or e.size < 2:
        raise ValueError(f"PSI needs two share vectors of the same length >= 2, got {e.shape} and {a.shape}")
    if np.any(e <= 0) or np.any(a <= 0):
        raise ValueError("PSI shares must be > 0 (smooth empty bins first)")
    return float(np.sum((a - e) * np.log(a / e)))


def status_of(score: float, warning: float, drift: float) -> Status:
    """ok below `warning`, drift from `drift` on, warning in between (the alert rule uses the same `>=`)."""
    if score >= drift:
        return "drift"
    if score >= warning:
        return "warning"
    return "ok"


@dataclass(frozen=True)
class SignalScore:
    signal: str
    score: float
    reference_mean: float
    live_mean: float


@dataclass(frozen=True)
class DriftReference:
    """What a model version carries about the traffic it was validated on (its held-out split)."""

    n_samples: int
    signals: Mapping[str, Binned]
    seen: SeenTokens

    def score(self, live: LiveSample) -> dict[str, SignalScore]:
        """PSI of each signal of a live window against this reference. The window must not be empty."""
        if len(live) == 0:
            raise ValueError("cannot score an empty window")
        scores: dict[str, SignalScore] = {}
        for name in SIGNALS:
            ref = self.signals[name]
            values = live.values(name)
            shares = smoothed_shares(ref.counts(values))
            scores[name] = SignalScore(name, psi(ref.shares, shares), ref.mean, float(values.mean()))
        return scores

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": SCHEMA_VERSION,
            "n_samples": self.n_samples,
            "signals": {name: self.signals[name].to_dict() for name in SIGNALS},
            "seen_tokens": self.seen.to_dict(),
        }

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> DriftReference:
        """Read a stored profile; DriftReferenceError (with the reason) for anything malformed or from the future."""
        if not isinstance(raw, Mapping):
            raise DriftReferenceError(f"a drift reference is a JSON object, got {type(raw).__name__}")
        version = raw.get("schema_version")
        if version != SCHEMA_VERSION:
            raise DriftReferenceError(f"drift reference schema_version {version!r} is not {SCHEMA_VERSION}")
        try:
            signals = {name: Binned.from_dict(raw["signals"][name]) for name in SIGNALS}
            return cls(n_samples=int(raw["n_samples"]), signals=signals, seen=SeenTokens.from_dict(raw["seen_tokens"]))
        except (KeyError, TypeError, ValueError) as error:
            if isinstance(error, DriftReferenceError):
                raise
            raise DriftReferenceError(f"drift reference is incomplete or malformed: {error!r}") from None


def build_reference(
    train_texts: Sequence[str], held_out_texts: Sequence[str], held_out_positive_proba: np.ndarray
) -> DriftReference:
    """The profile of a trained model: seen tokens from its training texts, signals from its held-out predictions."""
    if not train_texts or not held_out_texts:
        raise ValueError("a drift reference needs training texts and held-out texts")
    seen = SeenTokens.from_texts(train_texts)
    sample = sample_from_scores(held_out_texts, held_out_positive_proba, seen)
    signals = {name: binned(sample.values(name)) for name in SIGNALS}
    # The predicted class is binary: two fixed bins, whatever the deciles say.
    signals["positive_rate"] = binned(sample.values("positive_rate"), edges=[0.5])
    return DriftReference(n_samples=len(sample), signals=signals, seen=seen)
