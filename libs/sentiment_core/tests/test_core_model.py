"""The sklearn pipeline: built from a typed config, servable from strings and DataFrames, safely (de)serialised."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import skops.io as sio
from sklearn.pipeline import Pipeline

from sentiment_core.data import load_dataset, sample_stratified, split_dataset
from sentiment_core.evaluation import evaluate
from sentiment_core.model import ModelConfig, build_pipeline, load_pipeline, save_pipeline

TRAIN = ["a great and wonderful film", "truly awful and boring", "loved every minute", "hated it, a waste"] * 5
LABELS = [1, 0, 1, 0] * 5


@pytest.fixture(scope="module")
def tiny_model() -> Pipeline:
    return build_pipeline(ModelConfig(n_features=2**12)).fit(TRAIN, LABELS)


def test_predicts_from_strings_and_from_a_text_dataframe(tiny_model: Pipeline) -> None:
    texts = ["wonderful film", "boring waste"]
    from_list = tiny_model.predict_proba(texts)
    from_frame = tiny_model.predict_proba(pd.DataFrame({"text": texts}))
    np.testing.assert_allclose(from_list, from_frame)
    assert tiny_model.predict(texts).tolist() == [1, 0]


def test_hashing_min_df_reaches_the_weighting_step() -> None:
    assert build_pipeline(ModelConfig(min_df=3)).named_steps["nb"].min_df == 3
    assert build_pipeline(ModelConfig(vectorizer="tfidf", min_df=3)).named_steps["nb"].min_df == 1


def test_skops_round_trip_keeps_predictions(tiny_model: Pipeline, tmp_path: Path) -> None:
    path = tmp_path / "model.skops"
    save_pipeline(tiny_model, path)
    loaded = load_pipeline(path)
    np.testing.assert_allclose(loaded.predict_proba(TRAIN), tiny_model.predict_proba(TRAIN))


def test_the_character_view_joins_the_words_and_round_trips(tmp_path: Path) -> None:
    config = ModelConfig(n_features=2**12, char_ngram_max=4, char_n_features=2**12, min_df=1)
    model = build_pipeline(config).fit(TRAIN, LABELS)
    assert list(model.named_steps["views"].named_transformers) == ["words", "chars"]
    # One classifier over both views, side by side.
    assert model.named_steps["classify"].coef_.shape == (1, 2**12 + 2**12)
    assert model.predict(["wonderful film", "boring waste"]).tolist() == [1, 0]
    path = tmp_path / "model.skops"
    save_pipeline(model, path)
    np.testing.assert_allclose(load_pipeline(path).predict_proba(TRAIN), model.predict_proba(TRAIN))


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"char_ngram_max": 6, "char_ngram_min": 7}, "char_ngram_min <= char_ngram_max"),
        ({"char_ngram_max": 9}, "char_ngram_max <= 8"),
        ({"char_ngram_max": -1}, "char_ngram_min <= char_ngram_max"),
        ({"char_ngram_max": 6, "char_n_features": 10}, "char_n_features"),
        ({"char_ngram_max": 6, "weighting": "tfidf"}, 'needs vectorizer "hashing" and weighting "nb"'),
        ({"char_ngram_max": 6, "vectorizer": "tfidf"}, 'needs vectorizer "hashing" and weighting "nb"'),
    ],
)
def test_character_view_settings_are_checked_by_name(values: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ModelConfig.from_mapping(values)


def test_load_refuses_types_outside_the_allow_list(tmp_path: Path) -> None:
    path = tmp_path / "evil.skops"
    sio.dump({"payload": Path("/etc/passwd")}, path)
    with pytest.raises(ValueError, match="outside the allow-list"):
        load_pipeline(path)


def test_config_validates_and_hashes() -> None:
    config = ModelConfig.from_mapping({"C": "2.5", "ngram_max": "2"})
    assert config.C == 2.5
    assert config.ngram_max == 2
    assert config.params_hash() == ModelConfig.from_mapping({"C": 2.5, "ngram_max": 2}).params_hash()
    assert config.params_hash() != ModelConfig().params_hash()
    with pytest.raises(ValueError, match="unknown model parameter"):
        ModelConfig.from_mapping({"learning_rate": 1})
    with pytest.raises(ValueError, match="C must be > 0"):
        ModelConfig(C=0)
    with pytest.raises(ValueError, match="must be float"):
        ModelConfig.from_mapping({"C": "lots"})
    with pytest.raises(ValueError, match="n-grams"):
        ModelConfig(ngram_min=3, ngram_max=1)


@pytest.mark.slow
def test_quality_on_a_real_sample(imdb_path: Path) -> None:
    """The default model, trained on 8,000 real reviews, classifies held-out reviews with >= 0.85 accuracy."""
    sample = sample_stratified(load_dataset(imdb_path), 8_000, seed=3)
    split = split_dataset(sample, test_size=0.25, seed=3)
    model = build_pipeline(ModelConfig()).fit(split.train["text"].tolist(), split.train["label"].tolist())
    report = evaluate(model, split.test["text"].tolist(), split.test["label"].tolist())
    assert report.accuracy >= 0.85, report
    assert report.roc_auc >= 0.9


def test_log_count_ratio_weights_follow_the_classes() -> None:
    from scipy import sparse

    from sentiment_core.model import LogCountRatio

    # Feature 0 appears only in positive documents, 1 only in negative ones, 2 in both, 3 never.
    counts = sparse.csr_matrix(np.array([[2, 0, 1, 0], [1, 0, 1, 0], [0, 3, 1, 0], [0, 1, 1, 0]], dtype=np.float32))
    step = LogCountRatio(alpha=1.0, use_idf=False).fit(counts, [1, 1, 0, 0])
    assert step.weight_[0] > 0 > step.weight_[1]
    assert step.weight_[2] == pytest.approx(0.0, abs=1e-6)
    assert step.weight_[3] == 0.0
    rows = step.transform(counts).toarray()
    np.testing.assert_allclose(np.linalg.norm(rows, axis=1), 1.0, rtol=1e-5)
    with pytest.raises(ValueError, match="exactly two classes"):
        LogCountRatio().fit(counts, [1, 1, 1, 1])
    # min_df: features in fewer documents get no weight (feature 1 is in two documents, feature 0 in two, 2 in four).
    pruned = LogCountRatio(alpha=1.0, use_idf=False, min_df=3).fit(counts, [1, 1, 0, 0])
    assert pruned.weight_[0] == pruned.weight_[1] == 0.0
    assert pruned.weight_[2] == pytest.approx(step.weight_[2])
