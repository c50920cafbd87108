"""The character n-gram view: stable buckets, every n-gram counted once per occurrence, any text accepted."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from sentiment_core.char_ngrams import CharNgramHasher, char_ngram_buckets


def test_every_ngram_is_counted_once_per_occurrence() -> None:
    text = "not bad at all"
    matrix = CharNgramHasher(ngram_min=2, ngram_max=4, n_features=2**20).transform([text])
    # n-grams of length 2, 3 and 4 of 14 bytes: 13 + 12 + 11 occurrences.
    assert matrix.sum() == 13 + 12 + 11
    assert matrix.dtype == np.float32
    assert matrix.shape == (1, 2**20)


def test_buckets_are_stable_in_range_and_repeat_with_the_text() -> None:
    first = char_ngram_buckets("a great film", 2, 6, 1000)
    assert np.array_equal(first, char_ngram_buckets("a great film", 2, 6, 1000))
    assert first.min() >= 0
    assert first.max() < 1000
    # "abab": "ab" occurs twice, so its bucket gets a count of 2.
    matrix = CharNgramHasher(ngram_min=2, ngram_max=2, n_features=2**16).transform(["abab"])
    assert sorted(matrix.data.tolist()) == [1.0, 2.0]


def test_the_same_ngram_in_other_texts_lands_in_the_same_bucket() -> None:
    hasher = CharNgramHasher(ngram_min=3, ngram_max=3, n_features=2**20)
    one, other = hasher.transform(["xyz", "__xyz"])
    assert set(one.indices) <= set(other.indices)


def test_empty_short_and_non_ascii_texts_are_accepted() -> None:
    matrix = CharNgramHasher(ngram_min=2, ngram_max=6, n_features=2**12).transform(["", "a", "ab", "très émouvant 😀"])
    assert matrix.shape == (4, 2**12)
    assert matrix[0].nnz == 0
    assert matrix[1].nnz == 0
    assert matrix[2].sum() == 1
    assert matrix[3].nnz > 0


def test_a_text_dataframe_gives_the_same_counts_as_a_list() -> None:
    hasher = CharNgramHasher(n_features=2**12)
    texts = ["loved it", "hated it"]
    assert (hasher.transform(pd.DataFrame({"text": texts})) != hasher.transform(texts)).nnz == 0


def test_an_impossible_range_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="ngram_min <= ngram_max"):
        CharNgramHasher(ngram_min=4, ngram_max=2).transform(["text"])
