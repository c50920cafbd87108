"""The trainer's pure logic, without servers or the Prefect engine: params, scoring, promotion, templates, errors."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from mlflow.exceptions import MlflowException

from sentiment_core.data import LABEL, TEXT, load_dataset, split_dataset
from sentiment_core.evaluation import evaluate
from sentiment_core.model import ModelConfig, build_pipeline
from sentiment_core.params import DataParams
from sentiment_core.registry import RegistryError
from sentiment_trainer import deployments, promotion, steps
from sentiment_trainer.errors import TrainerError, is_transient, one_line
from sentiment_trainer.plots import confusion_matrix_png
from sentiment_trainer.run_config import find_params_file, parse_overrides, resolve_run_config
from sentiment_trainer.scoring import HeldOut, stateless_prefix
from sentiment_trainer.settings import TrainerSettings
from services.trainer.tests.trainer_helpers import SMALL_MODEL, TEST_FILE_OVERLAP

REPO_ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def split(trainer_data: Path) -> Any:
    return split_dataset(load_dataset(trainer_data), test_size=0.2, seed=42)


# ---- params ----------------------------------------------------------------------------------------------------


def test_overrides_parse_key_value_pairs() -> None:
    assert parse_overrides(["C=4", "model.n_features = 1024", "data.seed=7"]) == {
        "C": "4",
        "model.n_features": "1024",
        "data.seed": "7",
    }
    with pytest.raises(ValueError, match="key=value"):
        parse_overrides(["C"])


def test_run_config_reads_repo_params_and_applies_overrides(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MODEL_NAME", raising=False)
    monkeypatch.delenv("MLFLOW_EXPERIMENT_NAME", raising=False)
    monkeypatch.delenv("PARAMS_FILE", raising=False)
    trainer_dir = REPO_ROOT / "services" / "trainer"
    run = resolve_run_config(
        settings=TrainerSettings(), overrides={"C": "0.5", "data.seed": "7"}, set_champion=True, cwd=trainer_dir
    )
    # Found upwards from services/trainer; data.path is relative to params.yaml, not to the cwd.
    assert run.params_file == REPO_ROOT / "params.yaml"
    assert run.data_path == REPO_ROOT / "data" / "reviews.csv.gz"
    assert run.params.model.C == 0.5
    assert run.params.data.seed == 7
    assert run.model_name == "sentiment-classifier"
    assert run.experiment_name == "sentiment-classifier"
    params = run.mlflow_params()
    assert params["model.C"] == 0.5
    assert params["promotion.set_champion"] is True
    assert params["data.path"] == str(REPO_ROOT / "data" / "reviews.csv.gz")


def test_run_config_precedence_argument_over_environment_over_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    params = tmp_path / "params.yaml"
    params.write_text("data:\n  path: d.csv\nmlflow:\n  model_name: from-file\n  experiment_name: exp-file\n")
    monkeypatch.setenv("MODEL_NAME", "from-env")
    monkeypatch.delenv("MLFLOW_EXPERIMENT_NAME", raising=False)
    run = resolve_run_config(settings=TrainerSettings(), params_file=params, cwd=tmp_path)
    assert (run.model_name, run.experiment_name) == ("from-env", "exp-file")
    assert run.data_path == tmp_path / "d.csv"
    explicit = resolve_run_config(
        settings=TrainerSettings(), params_file=params, model_name="explicit", data_path="x.csv", cwd=tmp_path
    )
    assert explicit.model_name == "explicit"
    assert explicit.data_path == tmp_path / "x.csv"


def test_data_path_from_the_environment_beats_params_yaml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """compose and the k8s Job keep the dataset on a writable volume, apart from the read-only params.yaml."""
    params = tmp_path / "params.yaml"
    params.write_text("data:\n  path: d.csv\n")
    monkeypatch.setenv("DATA_PATH", "/data/reviews.csv.gz")
    run = resolve_run_config(settings=TrainerSettings(), params_file=params, cwd=tmp_path)
    assert run.data_path == Path("/data/reviews.csv.gz")
    explicit = resolve_run_config(settings=TrainerSettings(), params_file=params, data_path="x.csv", cwd=tmp_path)
    assert explicit.data_path == tmp_path / "x.csv"


def test_the_test_file_sits_beside_the_dataset_unless_told_otherwise(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Wherever the dataset goes (DATA_PATH on a volume or PVC), the test file of params' name goes with it."""
    params = tmp_path / "params.yaml"
    params.write_text("data:\n  path: d/reviews.csv.gz\n  test_path: d/held.csv.gz\n")
    assert (
        resolve_run_config(settings=TrainerSettings(), params_file=params).test_path == tmp_path / "d" / "held.csv.gz"
    )
    monkeypatch.setenv("DATA_PATH", "/data/reviews.csv.gz")
    assert resolve_run_config(settings=TrainerSettings(), params_file=params).test_path == Path("/data/held.csv.gz")
    monkeypatch.setenv("DATA_TEST_PATH", "/elsewhere/t.csv")
    assert resolve_run_config(settings=TrainerSettings(), params_file=params).test_path == Path("/elsewhere/t.csv")
    explicit = resolve_run_config(settings=TrainerSettings(), params_file=params, test_path="x.csv", cwd=tmp_path)
    assert explicit.test_path == tmp_path / "x.csv"


def test_the_test_file_is_scored_with_its_overlap_dropped(trainer_data_with_test: Path) -> None:
    loaded = steps.load_data(trainer_data_with_test, trainer_data_with_test.parent / "test.csv.gz")
    assert loaded.test is not None
    assert loaded.test.overlap_rows == TEST_FILE_OVERLAP
    split = steps.split_data(loaded.frame, DataParams())
    trained = steps.train_model(ModelConfig.from_mapping(SMALL_MODEL), split, loaded.test)
    report = steps.evaluate_test(trained)
    assert report is not None
    fresh = evaluate(trained.pipeline, loaded.test.frame[TEXT].tolist(), loaded.test.frame[LABEL].tolist())
    assert report.accuracy == fresh.accuracy
    assert report.ece == pytest.approx(fresh.ece)
    metrics = steps.test_metrics(report, loaded.test)
    assert metrics["test.accuracy"] == report.accuracy
    assert metrics["test.overlap_rows"] == TEST_FILE_OVERLAP
    assert metrics["test.rows"] == 1000
    # Promotion prefers the test file; without one it falls back to the held-out split.
    held_out = steps.evaluate_model(trained)
    exam = promotion.choose_exam(held_out, trained.held_out, report, trained.test)
    assert (exam.name, exam.candidate, exam.data) == ("test file", report, trained.test)
    assert promotion.choose_exam(held_out, trained.held_out, None, None).name == "held-out split"
    # No file, no test metrics.
    assert steps.load_data(trainer_data_with_test, trainer_data_with_test.parent / "absent.csv").test is None


def test_empty_path_variables_mean_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    """`DATA_SOURCE=` in .env means "download", not "the current directory"."""
    for name in ("DATA_SOURCE", "DATA_PATH", "PARAMS_FILE", "TRAINER_DIR"):
        monkeypatch.setenv(name, "")
    settings = TrainerSettings()
    assert (settings.data_source, settings.data_path, settings.params_file, settings.trainer_dir) == (None,) * 4


def test_run_config_rejects_unknown_parameters_and_missing_files(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown model parameter"):
        resolve_run_config(settings=TrainerSettings(), overrides={"not_a_param": "1"}, cwd=tmp_path)
    with pytest.raises(ValueError, match="params file not found"):
        resolve_run_config(settings=TrainerSettings(), params_file=tmp_path / "nope.yaml", cwd=tmp_path)


def test_params_hash_follows_model_and_split_settings_not_paths(tmp_path: Path) -> None:
    base = resolve_run_config(settings=TrainerSettings(), data_path="a.csv", cwd=tmp_path)
    moved = resolve_run_config(settings=TrainerSettings(), data_path="b.csv", cwd=tmp_path)
    reseeded = resolve_run_config(
        settings=TrainerSettings(), data_path="a.csv", overrides={"data.seed": 1}, cwd=tmp_path
    )
    retuned = resolve_run_config(settings=TrainerSettings(), data_path="a.csv", overrides={"C": 1}, cwd=tmp_path)
    assert base.params_hash() == moved.params_hash()
    assert len({base.params_hash(), reseeded.params_hash(), retuned.params_hash()}) == 3


def test_find_params_file_stops_at_nearest(tmp_path: Path) -> None:
    nested = tmp_path / "a" / "b"
    nested.mkdir(parents=True)
    (tmp_path / "params.yaml").write_text("{}\n")
    assert find_params_file(nested) == tmp_path / "params.yaml"


# ---- training and scoring ------------------------------------------------------------------------------------------


def test_train_model_matches_a_plain_pipeline_fit(split: Any) -> None:
    config = ModelConfig.from_mapping(SMALL_MODEL)
    trained = steps.train_model(config, split)
    plain = build_pipeline(config).fit(split.train[TEXT].tolist(), split.train[LABEL].to_numpy())
    texts = split.test[TEXT].tolist()
    np.testing.assert_allclose(trained.pipeline.predict_proba(texts), plain.predict_proba(texts))
    # The held-out features were computed during the fit, so evaluation only runs the learned steps.
    assert stateless_prefix(trained.pipeline) >= 1
    assert len(trained.held_out._features) == stateless_prefix(trained.pipeline)


def test_held_out_scoring_equals_the_library_evaluate(split: Any) -> None:
    config = ModelConfig.from_mapping(SMALL_MODEL)
    trained = steps.train_model(config, split)
    expected = evaluate(trained.pipeline, split.test[TEXT].tolist(), split.test[LABEL].tolist())
    assert steps.evaluate_model(trained) == expected


def test_held_out_cache_serves_models_with_other_settings_correctly(split: Any) -> None:
    """A champion with another vectoriser reuses only what is really shared, and scores exactly as evaluate()."""
    held_out = HeldOut(split.test)
    texts, labels = split.test[TEXT].tolist(), split.test[LABEL].tolist()
    with_chars = {"n_features": 2048, "char_ngram_max": 4, "char_n_features": 4096}
    for overrides in (
        SMALL_MODEL,
        {"n_features": 2048, "ngram_max": 2},
        {"vectorizer": "tfidf", "min_df": 1},
        with_chars,
    ):
        pipeline = build_pipeline(ModelConfig.from_mapping(overrides))
        pipeline.fit(split.train[TEXT].tolist(), split.train[LABEL].to_numpy())
        assert held_out.score(pipeline) == evaluate(pipeline, texts, labels), overrides


def _flipped_champion(split: Any) -> Any:
    """A champion trained on inverted labels: it scores terribly on any honest split."""
    flipped = 1 - split.train[LABEL].to_numpy()
    return build_pipeline(ModelConfig.from_mapping(SMALL_MODEL)).fit(split.train[TEXT].tolist(), flipped)


def test_promotion_rescores_the_champion_instead_of_trusting_its_logged_f1(split: Any) -> None:
    """The classic mistake is comparing with the F1 the champion logged long ago. Its logged 0.99 must not count."""
    trained = steps.train_model(ModelConfig.from_mapping(SMALL_MODEL), split)
    candidate = steps.evaluate_model(trained)
    champion = promotion.Champion(version="7", pipeline=_flipped_champion(split), logged_f1=0.99, run_id="r")
    comparison = promotion.compare(candidate, champion, trained.held_out, min_improvement=0.0)
    fresh = evaluate(champion.pipeline, split.test[TEXT].tolist(), split.test[LABEL].tolist())
    assert comparison.decision.promote
    assert comparison.decision.champion_score == fresh.f1 != 0.99
    assert comparison.decision.champion_version == "7"
    assert comparison.decision.tags()["promotion.champion_f1"] == f"{fresh.f1:.6f}"


def test_promotion_keeps_a_strong_champion_whatever_it_logged(split: Any) -> None:
    """The reverse trap: a champion that logged a low F1 elsewhere but is better on this split stays champion."""
    trained = steps.train_model(ModelConfig.from_mapping({"n_features": 1024, "C": 0.01}), split)
    candidate = steps.evaluate_model(trained)
    strong = build_pipeline(ModelConfig.from_mapping({"n_features": 65536, "ngram_max": 2}))
    strong.fit(split.train[TEXT].tolist(), split.train[LABEL].to_numpy())
    champion = promotion.Champion(version="3", pipeline=strong, logged_f1=0.10, run_id="r")
    comparison = promotion.compare(candidate, champion, trained.held_out, min_improvement=0.0)
    assert not comparison.decision.promote
    assert comparison.champion is not None
    assert comparison.champion.f1 > candidate.f1 > 0.10


def test_promotion_margin_and_first_model(split: Any) -> None:
    trained = steps.train_model(ModelConfig.from_mapping(SMALL_MODEL), split)
    candidate = steps.evaluate_model(trained)
    first = promotion.compare(candidate, None, trained.held_out, min_improvement=0.0)
    assert first.decision.promote
    assert first.decision.reason == "no champion yet"
    # The same model as champion: equal F1 is not "strictly better".
    itself = promotion.Champion(version="1", pipeline=trained.pipeline, logged_f1=None, run_id=None)
    assert not promotion.compare(candidate, itself, trained.held_out, min_improvement=0.0).decision.promote


def test_input_example_is_small_and_real(split: Any) -> None:
    example = steps.input_example(split)
    assert len(example) == steps.INPUT_EXAMPLE_ROWS
    assert set(example) <= set(split.test[TEXT])
    assert max(map(len, example)) <= split.test[TEXT].str.len().median()


def test_confusion_matrix_png(split: Any, tmp_path: Path) -> None:
    trained = steps.train_model(ModelConfig.from_mapping(SMALL_MODEL), split)
    path = confusion_matrix_png(steps.evaluate_model(trained), tmp_path / "cm.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_split_step_is_deterministic(trainer_data: Path) -> None:
    frame = load_dataset(trainer_data)
    first = steps.split_data(frame, DataParams(test_size=0.2, seed=3))
    again = steps.split_data(frame, DataParams(test_size=0.2, seed=3))
    pd.testing.assert_frame_equal(first.test, again.test)


# ---- errors ----------------------------------------------------------------------------------------------------


def test_transient_errors_are_retried_and_bad_inputs_are_not() -> None:
    import requests
    from mlflow.protos.databricks_pb2 import RESOURCE_DOES_NOT_EXIST, TEMPORARILY_UNAVAILABLE

    assert is_transient(requests.ConnectionError("refused"))
    assert is_transient(ConnectionResetError())
    assert is_transient(MlflowException("busy", error_code=TEMPORARILY_UNAVAILABLE))
    assert is_transient(MlflowException("API request to http://x failed: Max retries exceeded with url"))
    assert not is_transient(MlflowException("no such model", error_code=RESOURCE_DOES_NOT_EXIST))
    assert not is_transient(ValueError("label must be 0 or 1"))
    assert not is_transient(TrainerError("champion cannot be loaded"))
    assert not is_transient(FileNotFoundError(2, "missing"))


def test_io_tasks_retry_only_transient_errors() -> None:
    from prefect.states import Failed

    from sentiment_trainer import flow

    for task in (flow.load_data, flow.fetch_champion, flow.log_mlflow, flow.register_model, flow.promote_champion):
        assert task.retries == 3, task.name
        assert task.retry_condition_fn is flow._retry_if_transient, task.name
    for task in (flow.split_data, flow.train_model, flow.evaluate_model):
        assert task.retries == 0, task.name
    assert flow._retry_if_transient(flow.log_mlflow, None, Failed(data=ConnectionResetError()))  # type: ignore[arg-type]
    assert not flow._retry_if_transient(flow.log_mlflow, None, Failed(data=ValueError("bad")))  # type: ignore[arg-type]


def test_errors_read_as_one_line() -> None:
    down = MlflowException("API request to http://h:5000/api failed with exception\nMax retries exceeded with url")
    assert one_line(down, "http://h:5000") == "cannot reach MLflow at http://h:5000 (connection failed)"
    assert one_line(RegistryError("model 'm' has no version 9")) == "model 'm' has no version 9"
    assert "\n" not in one_line(ValueError("first\nsecond"))
    assert one_line(RuntimeError("boom\ntraceback-ish")) == "RuntimeError: boom"


# ---- deployment templates -----------------------------------------------------------------------------------------


def _contains(ours: Any, default: Any, path: str = "") -> list[str]:
    """Paths where `ours` lacks or changes something `default` has (lists compared item by item)."""
    if isinstance(default, dict):
        if not isinstance(ours, dict):
            return [path]
        return [p for key, value in default.items() for p in _contains(ours.get(key), value, f"{path}/{key}")]
    if isinstance(default, list):
        if not isinstance(ours, list) or len(ours) < len(default):
            return [path]
        return [p for index, value in enumerate(default) for p in _contains(ours[index], value, f"{path}/{index}")]
    return [] if ours == default else [path]


def test_k8s_template_is_prefect_kubernetes_default_plus_our_additions() -> None:
    from prefect_kubernetes.worker import KubernetesWorker

    default = KubernetesWorker.get_default_base_job_template()
    ours = deployments.k8s_base_job_template()
    # Every placeholder and fixed value of the default manifest is still there, but the container env: a list
    # (HOME, MLFLOW_TRACKING_URI, DATA_PATH, ...) instead of "{{ env }}", which prefect-kubernetes prepends the
    # run's env to.
    env_path = "/job_manifest/spec/template/spec/containers/0/env"
    assert _contains(ours["job_configuration"], default["job_configuration"]) == [env_path]
    container = ours["job_configuration"]["job_manifest"]["spec"]["template"]["spec"]["containers"][0]
    assert {"MLFLOW_TRACKING_URI", "DATA_PATH", "HOME"} <= {item["name"] for item in container["env"]}
    # Every default variable is kept with its schema (defaults aside: ours are set for this platform).
    for name, schema in default["variables"]["properties"].items():
        kept = {key: value for key, value in ours["variables"]["properties"][name].items() if key != "default"}
        assert kept == {key: value for key, value in schema.items() if key != "default"}, name
    variables = ours["variables"]["properties"]
    assert variables["namespace"]["default"] == "mlops"
    for name in ("cpu_request", "cpu_limit", "memory_request", "memory_limit"):
        assert variables[name]["default"], name
    assert {"volumes", "volume_mounts"} <= set(variables)


def test_k8s_template_file_is_where_the_helm_chart_reads_it() -> None:
    path = REPO_ROOT / "services/trainer/src/sentiment_trainer/k8s/base-job-template.json"
    assert path.is_file()
    assert deployments.k8s_base_job_template() == json.loads(path.read_text())
    # One source of truth: the chart's copy is a link to this file, not a second template.
    chart_copy = REPO_ROOT / "charts/sentiment-platform/files/base-job-template.json"
    assert chart_copy.is_symlink()
    assert chart_copy.resolve() == path.resolve()


def test_template_env_defaults_and_overrides(tmp_path: Path) -> None:
    assert deployments.template_env(tmp_path, {}) == {"TRAINER_DIR": str(tmp_path)}
    assert deployments.template_env(tmp_path, {"TRAINER_DIR": "/srv/trainer"}) == {"TRAINER_DIR": "/srv/trainer"}
    # Every {{ $VAR }} of prefect.yaml has a default, so `deploy` never registers a literal placeholder.
    deployments_yaml = yaml.safe_load((REPO_ROOT / "services/trainer/prefect.yaml").read_text())["deployments"]
    placeholders = set(re.findall(r"\{\{\s*\$(\w+)\s*\}\}", json.dumps(deployments_yaml)))
    assert placeholders == {"TRAINER_DIR"}


def test_project_dir_is_this_checkout_by_default(tmp_path: Path) -> None:
    assert deployments.find_project_dir() == REPO_ROOT / "services" / "trainer"
    with pytest.raises(TrainerError, match=r"no prefect\.yaml"):
        deployments.find_project_dir(tmp_path)
