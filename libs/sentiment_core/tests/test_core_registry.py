"""Registry logic: the pure promotion rule, and the MLflow helpers against a real tracking server."""

from __future__ import annotations

from pathlib import Path

import mlflow
import pandas as pd
import pytest
from mlflow.exceptions import MlflowException

from sentiment_core import registry
from sentiment_core.data import summarize, validate_dataset
from sentiment_core.drift import build_reference
from sentiment_core.evaluation import evaluate
from sentiment_core.model import ModelConfig, build_pipeline
from sentiment_core.settings import CHALLENGER_ALIAS, CHAMPION_ALIAS

TEXTS = ["a great and wonderful film", "truly awful and boring", "loved every minute", "hated it, a waste"] * 5
LABELS = [1, 0, 1, 0] * 5


class TestDecidePromotion:
    def test_no_champion_promotes(self) -> None:
        decision = registry.decide_promotion(0.8, None)
        assert decision.promote
        assert decision.reason == "no champion yet"
        assert registry.TAG_PROMOTION_CHAMPION_SCORE not in decision.tags()

    def test_strictly_better_by_default(self) -> None:
        assert registry.decide_promotion(0.91, 0.90, champion_version="3").promote
        equal = registry.decide_promotion(0.90, 0.90, champion_version="3")
        assert not equal.promote
        assert "not more than the required" in equal.reason

    def test_margin(self) -> None:
        assert not registry.decide_promotion(0.905, 0.90, min_improvement=0.01).promote
        promoted = registry.decide_promotion(0.92, 0.90, min_improvement=0.01, champion_version="1")
        assert promoted.promote
        assert promoted.tags()[registry.TAG_PROMOTION_DECISION] == "promoted"
        assert promoted.tags()[registry.TAG_PROMOTION_CHAMPION_VERSION] == "1"
        with pytest.raises(ValueError, match="min_improvement"):
            registry.decide_promotion(0.9, 0.8, min_improvement=-0.1)


def _register(tracking_uri: str, model_name: str, c: float = 1.0) -> str:
    pipeline = build_pipeline(ModelConfig(n_features=2**12, C=c)).fit(TEXTS, LABELS)
    report = evaluate(pipeline, TEXTS, LABELS)
    frame = validate_dataset(pd.DataFrame({"text": TEXTS, "label": LABELS}))
    lineage = registry.Lineage(
        git_commit="abc123", dataset_fingerprint=summarize(frame).fingerprint, params_hash="p1", dvc_data_hash="d1"
    )
    logged = registry.log_training_run(
        tracking_uri=tracking_uri,
        experiment_name=f"{model_name}-exp",
        pipeline=pipeline,
        params={"model.C": c},
        report=report,
        summary=summarize(frame),
        lineage=lineage,
        input_example=TEXTS[:2],
    )
    version = registry.register_version(registry.client(tracking_uri), model_name, logged, report, lineage)
    return str(version.version)


def test_log_register_alias_rollback_and_load(tracking_uri: str, model_name: str) -> None:
    client = registry.client(tracking_uri)
    assert registry.alias_version(client, model_name, CHAMPION_ALIAS) is None

    v1 = _register(tracking_uri, model_name)
    v2 = _register(tracking_uri, model_name, c=2.0)
    info = client.get_model_version(model_name, v1)
    assert info.tags[registry.TAG_DATASET_FINGERPRINT]
    assert info.tags[registry.TAG_DVC_DATA_HASH] == "d1"
    assert len(info.tags[registry.TAG_MODEL_SHA256]) == 64
    assert float(info.tags["metric.accuracy"]) == 1.0
    run = client.get_run(info.run_id)
    assert run.data.params["model.C"] == "1.0"
    assert set(run.data.metrics) == {"accuracy", "f1", "precision", "recall", "roc_auc", "ece", "brier"}
    artifacts = {a.path for a in client.list_artifacts(info.run_id)}
    assert {"classification_report.txt", "dataset_summary.json", "evaluation.json"} <= artifacts

    registry.set_alias(client, model_name, CHAMPION_ALIAS, v1)
    registry.set_alias(client, model_name, CHAMPION_ALIAS, v2)
    registry.set_alias(client, model_name, CHALLENGER_ALIAS, v1)
    assert registry.champion_history(client, model_name) == [v1, v2]
    versions = registry.list_versions(client, model_name)
    assert [v.version for v in versions] == [v2, v1]
    assert versions[0].aliases == (CHAMPION_ALIAS,)
    assert versions[1].aliases == (CHALLENGER_ALIAS,)
    assert versions[0].metric("f1") == 1.0

    assert registry.rollback_champion(client, model_name) == (v2, v1)
    assert registry.alias_version(client, model_name, CHAMPION_ALIAS).version == v1
    with pytest.raises(registry.RegistryError, match="no earlier champion"):
        registry.rollback_champion(client, model_name)

    pipeline = registry.load_version(client, model_name, v1)
    assert pipeline.predict(["wonderful film"]).tolist() == [1]


def test_load_refuses_an_artifact_whose_hash_differs(tracking_uri: str, model_name: str) -> None:
    client = registry.client(tracking_uri)
    version = _register(tracking_uri, model_name)
    client.set_model_version_tag(model_name, version, registry.TAG_MODEL_SHA256, "0" * 64)
    with pytest.raises(registry.RegistryError, match="hash differs"):
        registry.load_version(client, model_name, version)


def test_clear_errors_for_unknown_models_and_versions(tracking_uri: str, model_name: str) -> None:
    client = registry.client(tracking_uri)
    with pytest.raises(registry.RegistryError, match="no registered model"):
        registry.list_versions(client, model_name)
    _register(tracking_uri, model_name)
    with pytest.raises(registry.RegistryError, match="has no version 42"):
        registry.set_alias(client, model_name, CHAMPION_ALIAS, "42")


def test_drift_reference_travels_with_the_run(tracking_uri: str, model_name: str) -> None:
    client = registry.client(tracking_uri)
    pipeline = build_pipeline(ModelConfig(n_features=2**12)).fit(TEXTS, LABELS)
    reference = build_reference(TEXTS, TEXTS, pipeline.predict_proba(TEXTS)[:, 1])
    frame = validate_dataset(pd.DataFrame({"text": TEXTS, "label": LABELS}))
    common = {
        "tracking_uri": tracking_uri,
        "experiment_name": f"{model_name}-drift",
        "pipeline": pipeline,
        "params": {},
        "report": evaluate(pipeline, TEXTS, LABELS),
        "summary": summarize(frame),
        "lineage": registry.Lineage("abc123", summarize(frame).fingerprint, "p1"),
        "input_example": TEXTS[:2],
    }
    with_profile = registry.log_training_run(**common, drift_reference=reference)
    loaded = registry.load_drift_reference(client, with_profile.run_id)
    assert loaded is not None
    assert loaded.to_dict() == reference.to_dict()
    # A run logged without one (as every run before profiles existed): "no profile", not an error.
    without = registry.log_training_run(**common)
    assert registry.load_drift_reference(client, without.run_id) is None


def test_promotion_lock_excludes_a_second_holder_and_takes_over_a_stale_one(tracking_uri: str, model_name: str) -> None:
    """Issue 15, item 2: the lock the register-and-promote section, set-alias and rollback hold."""
    client = registry.client(tracking_uri)
    lock_name = model_name + registry.PROMOTION_LOCK_SUFFIX
    with registry.promotion_lock(client, model_name):
        assert client.get_registered_model(lock_name).tags["lock.holder"]
        second = registry.promotion_lock(client, model_name, timeout=1.0, poll_seconds=0.2)
        with pytest.raises(registry.RegistryError, match="another run is promoting"), second:
            pass
    assert client.search_registered_models(f"name='{lock_name}'") == []

    # A holder that died long ago left its lock behind: the next one takes it over instead of waiting forever.
    client.create_registered_model(lock_name, tags={"lock.id": "dead", "lock.acquired_at": "0"})
    with registry.promotion_lock(client, model_name, timeout=5.0, poll_seconds=0.1):
        assert client.get_registered_model(lock_name).tags["lock.id"] != "dead"
    assert client.search_registered_models(f"name='{lock_name}'") == []


def test_the_registry_uses_the_uri_it_is_given_not_mlflows_global(
    tracking_uri: str, model_name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 15, item 3: every call goes to the server it was given, whatever MLflow's process-wide URI says."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    elsewhere = (tmp_path / "elsewhere").as_uri()
    mlflow.set_tracking_uri(elsewhere)
    try:
        version = _register(tracking_uri, model_name)
        # The training run pointed the fluent API at the server for its own block only.
        assert mlflow.get_tracking_uri() == elsewhere
        client = registry.client(tracking_uri)
        assert registry.load_version(client, model_name, version).predict(["wonderful film"]).tolist() == [1]
        registry.set_alias(client, model_name, CHAMPION_ALIAS, version, floors=None)
        run_id = client.get_model_version(model_name, version).run_id
        assert registry.load_drift_reference(client, run_id) is None
    finally:
        mlflow.set_tracking_uri(None)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("code", "missing"),
    [
        ("RESOURCE_DOES_NOT_EXIST", True),
        ("INVALID_PARAMETER_VALUE", True),
        ("NOT_FOUND", True),
        ("TEMPORARILY_UNAVAILABLE", False),
        ("INTERNAL_ERROR", False),
    ],
)
def test_is_not_found_tells_missing_objects_from_failures(code: str, missing: bool) -> None:
    from mlflow.protos import databricks_pb2

    error = MlflowException("x", error_code=getattr(databricks_pb2, code))
    assert registry.is_not_found(error) is missing


def test_library_errors_share_one_root() -> None:
    from sentiment_core.data import DatasetError
    from sentiment_core.drift import DriftReferenceError
    from sentiment_core.errors import SentimentError
    from sentiment_core.quality_gate import QualityGateError

    for error_type in (DatasetError, DriftReferenceError, QualityGateError, registry.RegistryError):
        assert issubclass(error_type, SentimentError)
    assert issubclass(registry.UnservableVersionError, SentimentError)
