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
from sentiment_core.data import LABEL, TEXT, DatasetSplit, DatasetSummary, load_dataset, split_dataset, summarize
from sentiment_core.drift import DriftReference, build_reference
from sentiment_core.evaluation import EvaluationReport
from sentiment_core.model import ModelConfig, build_pipeline
from sentiment_core.params import DataParams
from sentiment_trainer.params import RunConfig
from sentiment_trainer.plots import confusion_matrix_png
from sentiment_trainer.scoring import HeldOut

INPUT_EXAMPLE_ROWS = 3


@dataclass(frozen=True)
class LoadedData:
    path: Path
    frame: pd.DataFrame
    summary: DatasetSummary


@dataclass(frozen=True)
class TrainedModel:
    pipeline: Pipeline
    held_out: HeldOut
    fit_seconds: float


def load_data(path: Path) -> LoadedData:
    """Read and validate the dataset (DatasetError names the file, the row and the problem)."""
    frame = load_dataset(path)
    return LoadedData(path=path, frame=frame, summary=summarize(frame))


def split_data(frame: pd.DataFrame, data: DataParams) -> DatasetSplit:
    return split_dataset(frame, test_size=data.test_size, seed=data.seed)


def train_model(config: ModelConfig, split: DatasetSplit) -> TrainedModel:
    """Fit the library's pipeline on the train side; featurise the held-out texts while the classifier trains.

    Same result as `Pipeline.fit` (which also fit_transforms every step but the last, then fits the last). Splitting
    it lets the held-out featurisation, pure Python that needs the GIL, overlap liblinear's fit, which releases it.
    """
    started = time.perf_counter()
    pipeline = build_pipeline(config)
    held_out = HeldOut(split.test)
    texts = split.train[TEXT].tolist()
    labels = split.train[LABEL].to_numpy(dtype=int)
    features = Pipeline(pipeline.steps[:-1]).fit_transform(texts, labels) if len(pipeline.steps) > 1 else texts
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="held-out-features") as pool:
        prefetch = pool.submit(held_out.prefix_features, pipeline)
        pipeline.steps[-1][1].fit(features, labels)
        prefetch.result()
    return TrainedModel(pipeline=pipeline, held_out=held_out, fit_seconds=time.perf_counter() - started)


def evaluate_model(trained: TrainedModel) -> EvaluationReport:
    return trained.held_out.score(trained.pipeline)


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
    return str(registry.register_version(run.model_name, logged, report, lineage).version)


def mark_run_failed(client: MlflowClient, run_id: str, reason: str) -> None:
    """A run whose model was not registered must not look like a usable result in the MLflow UI."""
    client.set_tag(run_id, "failure.reason", reason[:5000])
    client.set_terminated(run_id, status="FAILED")
