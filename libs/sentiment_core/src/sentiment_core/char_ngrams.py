"""Hashed character n-gram counts: the optional second view of a review (model.char_ngram_max > 0)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, TransformerMixin

from sentiment_core.text import as_text_list

# FNV-1a's 64-bit prime: each byte is xor-ed in, then the state multiplied (wrapping modulo 2**64).
_FNV_PRIME = np.uint64(0x100000001B3)
# splitmix64's finaliser constant: spreads the rolling hash's low bits before they pick a bucket.
_MIX = np.uint64(0xBF58476D1CE4E5B9)


def char_ngram_buckets(text: str, ngram_min: int, ngram_max: int, n_features: int) -> np.ndarray:
    """Bucket of every character n-gram (n in ngram_min..ngram_max) of the text's UTF-8 bytes, one per occurrence.

    Vectorised over the text with numpy: one pass per byte offset and n, so a 1,000-character review takes ~0.2 ms,
    where sklearn's char analyzer builds every n-gram as a Python string (4-7 ms). Bytes, not characters: a non-ASCII
    letter is 2-4 bytes, which only shifts which n-grams exist, the same way in training and serving.
    """
    data = np.frombuffer(text.encode("utf-8"), dtype=np.uint8).astype(np.uint64)
    buckets = []
    for size in range(ngram_min, ngram_max + 1):
        count = len(data) - size + 1
        if count <= 0:
            break
        # Seeded with n: each length starts from its own state.
        hashed = np.full(count, size, dtype=np.uint64)
        for offset in range(size):
            hashed = (hashed ^ data[offset : offset + count]) * _FNV_PRIME
        hashed ^= hashed >> np.uint64(29)
        hashed *= _MIX
        hashed ^= hashed >> np.uint64(32)
        buckets.append(hashed % np.uint64(n_features))
    return np.concatenate(buckets) if buckets else np.zeros(0, dtype=np.uint64)


class CharNgramHasher(TransformerMixin, BaseEstimator):
    """Texts -> sparse counts of their hashed character n-grams (float32, n_features columns). Stateless."""

    def __init__(self, ngram_min: int = 2, ngram_max: int = 6, n_features: int = 2**21) -> None:
        self.ngram_min = ngram_min
        self.ngram_max = ngram_max
        self.n_features = n_features

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.requires_fit = False
        tags.input_tags.string = True
        # Counts come out as float32 whatever the input, like the word vectoriser's (dtype=np.float32).
        tags.transformer_tags.preserves_dtype = ["float32"]
        return tags

    def fit(self, X: Any, y: Any = None) -> CharNgramHasher:
        return self

    def transform(self, X: Sequence[str] | Any) -> sp.csr_matrix:
        if not 1 <= self.ngram_min <= self.ngram_max:
            raise ValueError(f"need 1 <= ngram_min <= ngram_max, got {self.ngram_min}..{self.ngram_max}")
        texts = as_text_list(X)
        indptr = np.zeros(len(texts) + 1, dtype=np.int64)
        indices: list[np.ndarray] = []
        counts: list[np.ndarray] = []
        for row, text in enumerate(texts):
            buckets, per_bucket = np.unique(
                char_ngram_buckets(text, self.ngram_min, self.ngram_max, self.n_features), return_counts=True
            )
            indices.append(buckets.astype(np.int32))
            counts.append(per_bucket.astype(np.float32))
            indptr[row + 1] = indptr[row] + len(buckets)
        return sp.csr_matrix(
            (
                np.concatenate(counts) if counts else np.zeros(0, np.float32),
                np.concatenate(indices) if indices else np.zeros(0, np.int32),
                indptr,
            ),
            shape=(len(texts), self.n_features),
        )
