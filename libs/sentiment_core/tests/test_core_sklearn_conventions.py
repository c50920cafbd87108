"""Our custom pipeline steps against scikit-learn's estimator checks: only documented, expected failures."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.feature_extraction.text import HashingVectorizer
from sklearn.pipeline import Pipeline
from sklearn.utils.estimator_checks import parametrize_with_checks
from sklearn.utils.validation import check_is_fitted

from sentiment_core.char_ngrams import CharNgramHasher
from sentiment_core.model import LogCountRatio
from sentiment_core.text import TextCleaner

# Both text steps take texts: the checks' numeric inputs are turned into strings (as for serving), so every check of
# numeric input behaviour fails by design.
_TEXT_IN = "text in (a sequence of strings), not a numeric array"
TEXT_INPUT_EXPECTED: dict[str, str] = {
    "check_n_features_in_after_fitting": _TEXT_IN,
    "check_n_features_in": _TEXT_IN,
    "check_complex_data": "every value is turned into text, complex numbers too",
    "check_estimators_empty_data_messages": "stateless: fit learns nothing, so it does not inspect X",
    "check_estimators_nan_inf": "NaN and inf become the texts 'nan' and 'inf'",
    "check_estimator_sparse_tag": "sparse input is turned into text like anything else",
    "check_transformer_data_not_an_array": _TEXT_IN,
    "check_fit1d": "a 1-d sequence of texts is its normal input",
    "check_fit2d_predict1d": "a 1-d sequence of texts is its normal input",
}

# TextCleaner also returns a list of strings, the input a vectoriser expects, not an array: every check of the
# output's shape/dtype fails by design too. (CharNgramHasher returns a sparse float32 matrix and passes those.)
_LIST_OUT = "list of strings out (not a numeric array transformer)"
TEXT_CLEANER_EXPECTED: dict[str, str] = {
    **TEXT_INPUT_EXPECTED,
    **{
        name: _LIST_OUT
        for name in (
            "check_pipeline_consistency",
            "check_estimators_pickle",
            "check_transformer_general",
            "check_transformer_preserve_dtypes",
            "check_transformers_unfitted_stateless",
            "check_methods_sample_order_invariance",
            "check_methods_subset_invariance",
            "check_fit_idempotent",
        )
    },
}

# The naive-Bayes log-count ratio is defined for two classes; these checks fit on three or more.
_BINARY_ONLY = "the log-count ratio needs exactly two classes; this check fits on three or more"
LOG_COUNT_RATIO_EXPECTED: dict[str, str] = {
    name: _BINARY_ONLY
    for name in (
        "check_fit_score_takes_y",
        "check_estimators_overwrite_params",
        "check_dont_overwrite_parameters",
        "check_estimators_fit_returns_self",
        "check_readonly_memmap_input",
        "check_n_features_in_after_fitting",
        "check_dtype_object",
        "check_estimator_sparse_tag",
        "check_estimator_sparse_array",
        "check_estimator_sparse_matrix",
        "check_f_contiguous_array_estimator",
        "check_methods_sample_order_invariance",
        "check_methods_subset_invariance",
        "check_dict_unchanged",
        "check_fit2d_predict1d",
    )
}


def _expected(estimator: Any) -> dict[str, str]:
    if isinstance(estimator, TextCleaner):
        return TEXT_CLEANER_EXPECTED
    if isinstance(estimator, CharNgramHasher):
        return TEXT_INPUT_EXPECTED
    return LOG_COUNT_RATIO_EXPECTED


@parametrize_with_checks(
    [TextCleaner(), LogCountRatio(), CharNgramHasher(n_features=2**10)], expected_failed_checks=_expected
)
def test_sklearn_estimator_checks(estimator: Any, check: Any) -> None:
    check(estimator)


def test_text_cleaner_needs_no_fit_so_a_stateless_prefix_counts_as_fitted() -> None:
    # Without requires_fit=False, check_is_fitted raises on an unfitted TextCleaner (it has no fitted attributes).
    check_is_fitted(TextCleaner())
    prefix = Pipeline([("clean", TextCleaner()), ("hash", HashingVectorizer(n_features=2**10))])
    check_is_fitted(prefix)
    assert prefix.transform(["<b>Good</b> film"]).shape == (1, 2**10)


def test_log_count_ratio_refuses_negative_counts_and_a_missing_target() -> None:
    with pytest.raises(ValueError, match="Negative values"):
        LogCountRatio().fit(sp.csr_matrix(np.array([[1.0, -1.0], [0.0, 2.0]])), [0, 1])
    with pytest.raises(ValueError, match="requires y"):
        LogCountRatio().fit(np.ones((2, 2)), None)
