"""The `sentiment-training` flow end to end on real servers: MLflow (Postgres + MinIO artifacts) and Prefect (Postgres).

Flows run in this process against the session's Prefect server, on a 3,000-review sample of the real data.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from sentiment_core import registry
from sentiment_core.data import LABEL, TEXT, DatasetError, fingerprint, load_dataset, load_test_set, split_dataset
from sentiment_core.evaluation import evaluate
from sentiment_local.servers import MLFLOW_BUCKET, Minio
from sentiment_trainer import promotion
from sentiment_trainer.flow import TrainingOutcome, training_flow
from services.trainer.tests.trainer_helpers import BETTER_MODEL, SMALL_MODEL, TEST_FILE_OVERLAP, WORSE_MODEL

pytestmark = pytest.mark.slow

METRICS = ("accuracy", "f1", "precision", "recall", "roc_auc")


def _train(data: Path, model_name: str, overrides: dict[str, Any], champion: bool = True) -> TrainingOutcome:
    return training_flow(
        data_path=str(data),
        overrides=overrides,
        set_champion=champion,
        experiment_name=model_name,
        model_name=model_name,
    )


def _aliases(client: MlflowClient, model_name: str) -> dict[str, str]:
    return {alias: str(version) for alias, version in client.get_registered_model(model_name).aliases.items()}


def test_flow_logs_registers_and_promotes_a_first_model(
    trainer_data: Path, tracking_uri: str, prefect_api: str, model_name: str, minio_server: Minio
) -> None:
    outcome = _train(trainer_data, model_name, SMALL_MODEL)
    client = MlflowClient(tracking_uri)

    # The run: every parameter, the five metrics, lineage tags.
    run = client.get_run(outcome.run_id)
    assert run.info.status == "FINISHED"
    assert run.data.params["model.n_features"] == "4096"
    assert run.data.params["data.path"] == str(trainer_data)
    assert {"data.test_size", "data.seed", "model.C", "promotion.min_improvement", "mlflow.model_name"} <= set(
        run.data.params
    )
    assert set(METRICS) <= set(run.data.metrics)
    assert run.data.metrics["f1"] == pytest.approx(outcome.metrics["f1"])
    assert 0.7 < outcome.metrics["f1"] <= 1.0
    tags = run.data.tags
    assert tags[registry.TAG_DATASET_FINGERPRINT] == fingerprint(load_dataset(trainer_data))
    assert tags[registry.TAG_FLOW_RUN_ID] == outcome.flow_run_id
    assert tags[registry.TAG_GIT_COMMIT]
    assert len(tags[registry.TAG_PARAMS_HASH]) == 16

    # Artifacts, as stored in MinIO behind the tracking server's proxy.
    keys = [
        item["Key"]
        for page in minio_server.s3().get_paginator("list_objects_v2").paginate(Bucket=MLFLOW_BUCKET)
        for item in page.get("Contents", [])
    ]
    run_files = {key.rsplit("/artifacts/", 1)[1] for key in keys if f"/{outcome.run_id}/artifacts/" in key}
    assert {"confusion_matrix.png", "classification_report.txt", "dataset_summary.json", "split_summary.json"} <= (
        run_files
    )
    model_files = {key.rsplit("/", 1)[1] for key in keys if "/models/" in key}
    assert {"model.skops", "MLmodel", "requirements.txt", "input_example.json"} <= model_files
    summary_key = next(key for key in keys if key.endswith(f"{outcome.run_id}/artifacts/dataset_summary.json"))
    summary = json.loads(minio_server.s3().get_object(Bucket=MLFLOW_BUCKET, Key=summary_key)["Body"].read())
    assert summary["rows"] == 3000
    assert summary["fingerprint"] == tags[registry.TAG_DATASET_FINGERPRINT]
    # The drift reference profile of the held-out split, which the inference service fetches with the version.
    drift_reference = registry.load_drift_reference(client, outcome.run_id)
    assert drift_reference is not None
    assert 0 < drift_reference.n_samples < summary["rows"]

    # The registered version: tags, alias, explicit requirements, servable by pyfunc with a DataFrame.
    version = client.get_model_version(model_name, outcome.version)
    assert version.run_id == outcome.run_id
    assert version.tags[registry.TAG_DATASET_FINGERPRINT] == tags[registry.TAG_DATASET_FINGERPRINT]
    assert version.tags["promotion.decision"] == "promoted"
    assert version.tags["promotion.reason"] == "no champion yet"
    assert float(version.tags["metric.f1"]) == pytest.approx(outcome.metrics["f1"], abs=1e-6)
    assert _aliases(client, model_name) == {"champion": outcome.version}
    requirements = mlflow.artifacts.load_text(f"models:/{model_name}/{outcome.version}/requirements.txt")
    assert any(line.startswith("scikit-learn==") for line in requirements.splitlines())
    assert "pytest" not in requirements  # explicit, not inferred from this test environment
    pyfunc = mlflow.pyfunc.load_model(f"models:/{model_name}@champion")
    assert pyfunc.metadata.signature is not None
    predictions = pyfunc.predict(pd.DataFrame({"text": ["A wonderful, moving film.", "Dreadful. A waste of time."]}))
    assert list(predictions) == [1, 0]
    sklearn_model = mlflow.sklearn.load_model(f"models:/{model_name}/{outcome.version}")
    assert list(sklearn_model.predict(["loved it", "hated it"])) == [1, 0]


def test_promotion_is_decided_on_the_same_split(
    trainer_data: Path, tracking_uri: str, prefect_api: str, model_name: str
) -> None:
    client = MlflowClient(tracking_uri)
    first = _train(trainer_data, model_name, SMALL_MODEL)
    assert first.promoted
    assert first.alias == "champion"

    # A worse model, on another split (data.seed=7): challenger, champion unchanged.
    worse = _train(trainer_data, model_name, {**WORSE_MODEL, "data.seed": 7})
    assert not worse.promoted
    assert worse.alias == "challenger"
    assert _aliases(client, model_name) == {"champion": first.version, "challenger": worse.version}

    # Fairness: the recorded champion F1 is the champion re-scored on *this* run's held-out split,
    # not the F1 it logged on its own split.
    tags = client.get_model_version(model_name, worse.version).tags
    assert tags["promotion.exam"] == "held-out split"  # no test file beside this dataset
    test = split_dataset(load_dataset(trainer_data), test_size=0.2, seed=7).test
    champion = registry.load_version(client, model_name, first.version)
    fresh = evaluate(champion, test[TEXT].tolist(), test[LABEL].tolist())
    assert float(tags["promotion.champion_f1"]) == pytest.approx(fresh.f1, abs=1e-6)
    assert float(tags["promotion.champion_f1"]) != pytest.approx(first.metrics["f1"], abs=1e-6)
    assert tags["promotion.champion_version"] == first.version
    assert float(tags["promotion.candidate_f1"]) == pytest.approx(worse.metrics["f1"], abs=1e-6)
    assert tags["promotion.decision"] == "not-promoted"
    assert "not more than" in tags["promotion.reason"]
    run_tags = client.get_run(worse.run_id).data.tags
    assert run_tags["promotion.decision"] == "not-promoted"

    # A better model: champion.
    better = _train(trainer_data, model_name, BETTER_MODEL)
    assert better.promoted
    assert better.champion_version == first.version
    assert better.champion_f1 == pytest.approx(first.metrics["f1"], abs=1e-6)  # same split as first: same score
    assert _aliases(client, model_name) == {"champion": better.version, "challenger": worse.version}

    # Rollback restores the previous champion; the history is kept.
    previous, restored = registry.rollback_champion(client, model_name)
    assert (previous, restored) == (better.version, first.version)
    assert _aliases(client, model_name)["champion"] == first.version


def test_the_independent_test_file_is_measured_and_is_the_promotion_exam(
    trainer_data_with_test: Path, tracking_uri: str, prefect_api: str, model_name: str
) -> None:
    client = MlflowClient(tracking_uri)
    test_file = trainer_data_with_test.parent / "test.csv.gz"
    first = _train(trainer_data_with_test, model_name, SMALL_MODEL)

    # Both sets of metrics on the run, the test file's under `test.`, the overlap with training counted, not kept.
    run = client.get_run(first.run_id)
    assert set(METRICS) <= set(run.data.metrics)
    assert {f"test.{name}" for name in (*METRICS, "ece", "brier")} <= set(run.data.metrics)
    assert run.data.metrics["test.overlap_rows"] == TEST_FILE_OVERLAP
    assert run.data.metrics["test.rows"] == 1000
    assert run.data.tags["test.path"] == str(test_file)
    assert run.data.params["data.test_path"] == str(test_file)
    test = load_test_set(test_file, load_dataset(trainer_data_with_test)).frame
    fresh = evaluate(
        registry.load_version(client, model_name, first.version), test[TEXT].tolist(), test[LABEL].tolist()
    )
    assert run.data.metrics["test.accuracy"] == pytest.approx(fresh.accuracy, abs=1e-9)
    assert first.test_metrics["test.f1"] == pytest.approx(fresh.f1, abs=1e-9)
    # The held-out metrics keep their names and differ from the test file's (another exam).
    assert run.data.metrics["accuracy"] == pytest.approx(first.metrics["accuracy"])
    assert run.data.metrics["accuracy"] != pytest.approx(run.data.metrics["test.accuracy"], abs=1e-9)

    version = client.get_model_version(model_name, first.version)
    assert float(version.tags["metric.test.accuracy"]) == pytest.approx(fresh.accuracy, abs=1e-6)
    assert float(version.tags["metric.accuracy"]) == pytest.approx(first.metrics["accuracy"], abs=1e-6)
    assert version.tags["promotion.exam"] == "test file"

    # The champion is re-scored on the same test file, and the decision uses the test file's F1s.
    worse = _train(trainer_data_with_test, model_name, {**WORSE_MODEL, "data.seed": 7})
    assert not worse.promoted
    tags = client.get_model_version(model_name, worse.version).tags
    assert tags["promotion.exam"] == "test file"
    assert float(tags["promotion.champion_f1"]) == pytest.approx(fresh.f1, abs=1e-6)
    assert float(tags["promotion.candidate_f1"]) == pytest.approx(worse.test_metrics["test.f1"], abs=1e-6)
    assert client.get_run(worse.run_id).data.tags["promotion.exam"] == "test file"


def test_a_failed_run_registers_nothing_and_moves_no_alias(
    trainer_data: Path,
    one_class_data: Path,
    tracking_uri: str,
    prefect_api: str,
    model_name: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    client = MlflowClient(tracking_uri)
    first = _train(trainer_data, model_name, SMALL_MODEL)
    before = _aliases(client, model_name)
    versions_before = {v.version for v in client.search_model_versions(f"name='{model_name}'")}

    # Bad data: fails in load-data, before anything is logged.
    with pytest.raises(DatasetError, match="both classes are needed"):
        _train(one_class_data, model_name, SMALL_MODEL)
    assert _aliases(client, model_name) == before

    # A failure after the new version took `champion` (the worst moment): everything is undone.
    real_promote = promotion.promote_candidate

    def promote_then_crash(*args: Any, **kwargs: Any) -> Any:
        real_promote(*args, **kwargs)
        raise RuntimeError("simulated crash after the alias moved")

    monkeypatch.setattr(promotion, "promote_candidate", promote_then_crash)
    with pytest.raises(RuntimeError, match="simulated crash"):
        _train(trainer_data, model_name, BETTER_MODEL)
    assert _aliases(client, model_name) == before == {"champion": first.version}
    assert {v.version for v in client.search_model_versions(f"name='{model_name}'")} == versions_before
    assert registry.champion_history(client, model_name) == [first.version]
    experiment = client.get_experiment_by_name(model_name)
    failed = client.search_runs([experiment.experiment_id], "attributes.status = 'FAILED'")
    assert len(failed) == 1
    assert "simulated crash" in failed[0].data.tags["failure.reason"]


def test_the_first_run_of_a_new_model_leaves_no_registered_model_when_it_fails(
    trainer_data: Path, tracking_uri: str, prefect_api: str, model_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def crash(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("registry went away")

    monkeypatch.setattr(promotion, "promote_candidate", crash)
    with pytest.raises(RuntimeError, match="registry went away"):
        _train(trainer_data, model_name, SMALL_MODEL)
    assert MlflowClient(tracking_uri).search_registered_models(f"name='{model_name}'") == []
