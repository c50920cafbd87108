"""The training recipe's steps as plain functions: the Prefect tasks in `flow.py` are thin wrappers over these.

Every step here runs without the Prefect engine, so tests can drive them one by one.
"""

from __future__ import annotations

import json
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from mlflow.tracking import MlflowClient
from sklearn.pipeline import Pipeline

from sentiment_core import registry
from sentiment_core.data import (
    LABEL,
    TEXT,
    DatasetSplit,
    DatasetSummary,
    TestSet,
    load_dataset,
    load_test_set,
    split_dataset,
    summarize,
)
from sentiment_core.drift import DriftReference, build_reference
from sentiment_core.evaluation import EvaluationReport
from sentiment_core.model import ModelConfig, build_pipeline
from sentiment_core.params import DataParams
from sentiment_trainer.plots import confusion_matrix_png
from sentiment_trainer.run_config import RunConfig
from sentiment_trainer.scoring import HeldOut

INPUT_EXAMPLE_ROWS = 3
# Metrics on the independent test file are logged as `test.accuracy`, `test.f1`, ...; the held-out split's keep
# their plain names (`accuracy`, `f1`), which the inference service, alerts and dashboards read.
TEST_METRIC_PREFIX = "test."
TAG_TEST_PATH = "test.path"
TAG_TEST_FINGERPRINT = "test.dataset_fingerprint"


@dataclass(frozen=True)
class LoadedData:
    path: Path
    frame: pd.DataFrame
    summary: DatasetSummary
    # The independent test file, checked against `frame` (None when there is no file).
    test: TestSet | None = None


@dataclass(frozen=True)
class TrainedModel:
    pipeline: Pipeline
    held_out: HeldOut
    fit_seconds: float
    # The independent test file (other films), when there is one: scored like the held-out split.
    test: HeldOut | None = None


def load_test_data(path: Path, training: pd.DataFrame) -> TestSet | None:
    """The independent test file when it exists (else None); rows whose text is in `training` are dropped, counted."""
    if not path.is_file():
        return None
    return load_test_set(path, training)


def test_metrics(report: EvaluationReport, test: TestSet) -> dict[str, float]:
    """`test.accuracy`, `test.f1`, ... plus `test.rows` and `test.overlap_rows` (rows dropped as seen in training)."""
    return {
        **{TEST_METRIC_PREFIX + name: value for name, value in report.metrics().items()},
        TEST_METRIC_PREFIX + "rows": float(len(test.frame)),
        TEST_METRIC_PREFIX + "overlap_rows": float(test.overlap_rows),
    }


def test_tags(test: TestSet) -> dict[str, str]:
    return {TAG_TEST_PATH: str(test.path), TAG_TEST_FINGERPRINT: test.summary.fingerprint}


def load_data(path: Path, test_path: Path | None = None) -> LoadedData:
    """Read and validate the dataset (DatasetError names the file, the row and the problem), and the test file."""
    frame = load_dataset(path)
    test = load_test_data(test_path, frame) if test_path is not None else None
    return LoadedData(path=path, frame=frame, summary=summarize(frame), test=test)


def split_data(frame: pd.DataFrame, data: DataParams) -> DatasetSplit:
    return split_dataset(frame, test_size=data.test_size, seed=data.seed)


def train_model(config: ModelConfig, split: DatasetSplit, test: TestSet | None = None) -> TrainedModel:
    """Fit the library's pipeline on the train side; featurise the held-out texts while the classifier trains.

    Same result as `Pipeline.fit` (which also fit_transforms every step but the last, then fits the last). Splitting
    it lets the held-out featurisation, pure Python that needs the GIL, overlap liblinear's fit, which releases it.
    """
    started = time.perf_counter()
    pipeline = build_pipeline(config)
    held_out = HeldOut(split.test)
    test_held_out = HeldOut(test.frame) if test is not None else None
    texts = split.train[TEXT].tolist()
    labels = split.train[LABEL].to_numpy(dtype=int)
    features = Pipeline(pipeline.steps[:-1]).fit_transform(texts, labels) if len(pipeline.steps) > 1 else texts
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="held-out-features") as pool:
        prefetch = pool.submit(held_out.prefix_features, pipeline)
        prefetch_test = pool.submit(test_held_out.prefix_features, pipeline) if test_held_out is not None else None
        pipeline.steps[-1][1].fit(features, labels)
        prefetch.result()
        if prefetch_test is not None:
            prefetch_test.result()
    return TrainedModel(
        pipeline=pipeline, held_out=held_out, fit_seconds=time.perf_counter() - started, test=test_held_out
    )


def evaluate_model(trained: TrainedModel) -> EvaluationReport:
    return trained.held_out.score(trained.pipeline)


def evaluate_test(trained: TrainedModel) -> EvaluationReport | None:
    """The model on the independent test file (None without one)."""
    return trained.test.score(trained.pipeline) if trained.test is not None else None


def log_test_results(client: MlflowClient, run_id: str, report: EvaluationReport, test: TestSet) -> None:
    """The test-file metrics and where they came from, on the MLflow run next to the held-out ones."""
    from mlflow.entities import Metric, RunTag

    now = int(time.time() * 1000)
    metrics = [Metric(key, value, now, 0) for key, value in test_metrics(report, test).items()]
    tags = [RunTag(key, value) for key, value in test_tags(test).items()]
    client.log_batch(run_id, metrics=metrics, tags=tags)


def version_test_tags(report: EvaluationReport, test: TestSet) -> dict[str, str]:
    """`metric.test.accuracy`, ... on a registered version: the model card without fetching the run."""
    return {
        **{registry.METRIC_TAG_PREFIX + key: f"{value:.6f}" for key, value in test_metrics(report, test).items()},
        **test_tags(test),
    }


def drift_reference(trained: TrainedModel, split: DatasetSplit) -> DriftReference:
    """The profile live traffic is compared with (sentiment_core.drift): seen tokens of the train side, held-out
    predictions of this model."""
    held_out = trained.held_out
    return build_reference(
        split.train[TEXT].tolist(), held_out.texts, held_out.positive_probabilities(trained.pipeline)
    )


def build_lineage(run: RunConfig, summary: DatasetSummary, flow_run_id: str | None) -> registry.Lineage:
    return registry.Lineage(
        # Where the code lives, not the cwd: the commit of this checkout (or $GIT_COMMIT in an image).
        git_commit=registry.git_commit(Path(__file__).resolve().parent),
        dataset_fingerprint=summary.fingerprint,
        params_hash=run.params_hash(),
        dvc_data_hash=registry.dvc_data_hash(run.data_path),
        prefect_flow_run_id=flow_run_id,
    )


def input_example(split: DatasetSplit, rows: int = INPUT_EXAMPLE_ROWS) -> list[str]:
    """The shortest held-out reviews: a real, small example for the model's signature and serving docs."""
    texts = split.test[TEXT]
    return texts.loc[texts.str.len().sort_values(kind="stable").index[:rows]].tolist()


def split_summary(split: DatasetSplit) -> dict[str, dict[str, object]]:
    return {"train": summarize(split.train).to_dict(), "test": summarize(split.test).to_dict()}


def log_run(
    run: RunConfig,
    trained: TrainedModel,
    report: EvaluationReport,
    data: LoadedData,
    split: DatasetSplit,
    lineage: registry.Lineage,
) -> registry.LoggedModel:
    """One MLflow run through the library: params, metrics, lineage, report artifacts, the skops model."""
    with tempfile.TemporaryDirectory(prefix="sentiment-run-") as scratch:
        directory = Path(scratch)
        plot = confusion_matrix_png(report, directory / "confusion_matrix.png")
        splits = directory / "split_summary.json"
        splits.write_text(json.dumps(split_summary(split), indent=2))
        return registry.log_training_run(
            tracking_uri=run.tracking_uri,
            experiment_name=run.experiment_name,
            pipeline=trained.pipeline,
            params=run.mlflow_params(),
            report=report,
            summary=data.summary,
            lineage=lineage,
            input_example=input_example(split),
            extra_artifacts=[plot, splits],
            drift_reference=drift_reference(trained, split),
        )


def versions_of_run(client: MlflowClient, model_name: str, run_id: str) -> list[str]:
    """Versions of `model_name` created from `run_id` (empty when the model does not exist)."""
    found = client.search_model_versions(f"name='{model_name}' and run_id='{run_id}'")
    return sorted((str(version.version) for version in found), key=int)


def register_model(
    client: MlflowClient,
    run: RunConfig,
    logged: registry.LoggedModel,
    report: EvaluationReport,
    lineage: registry.Lineage,
) -> str:
    """Register the run's model as a new version. Idempotent per run: a retry re-tags the version it already made."""
    existing = versions_of_run(client, run.model_name, logged.run_id)
    if existing:
        version = existing[-1]
        registry.tag_version(client, run.model_name, version, registry.version_tags(logged, report, lineage))
        return version
    return str(registry.register_version(client, run.model_name, logged, report, lineage).version)


def mark_run_failed(client: MlflowClient, run_id: str, reason: str) -> None:
    """A run whose model was not registered must not look like a usable result in the MLflow UI."""
    client.set_tag(run_id, "failure.reason", reason[:5000])
    client.set_terminated(run_id, status="FAILED")
