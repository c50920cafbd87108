"""Inference test helpers: tiny real models, registering them in a real MLflow, waiting on the live service.

The models are small (2**14 hashed unigram features, 800 real reviews: ~0.1 s to train) but real: the service
downloads, verifies, loads with skops and validates them exactly as it would a production model.
"""

from __future__ import annotations

import hashlib
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

import httpx
import numpy as np
import pandas as pd
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sklearn.pipeline import Pipeline

from sentiment_core import registry
from sentiment_core.data import load_dataset, summarize
from sentiment_core.drift import DriftReference
from sentiment_core.evaluation import EvaluationReport, evaluate
from sentiment_core.model import ModelConfig, build_pipeline, save_pipeline
from sentiment_core.settings import CHAMPION_ALIAS
from sentiment_local.process import tail
from sentiment_local.servers import HttpServer

T = TypeVar("T")
TINY_CONFIG = ModelConfig(n_features=2**14, ngram_max=1)


@dataclass(frozen=True)
class TinyModels:
    good_a: Pipeline
    good_b: Pipeline
    good_c: Pipeline
    single_class: Pipeline  # predicts "positive" for everything
    eval_texts: list[str]
    eval_labels: list[int]


@dataclass(frozen=True)
class Logged:
    """A model logged to an MLflow server, ready to be registered under any model name."""

    logged: registry.LoggedModel
    report: EvaluationReport
    lineage: registry.Lineage
    extra_tags: dict[str, str]


def _train(frame: Any) -> Pipeline:
    return build_pipeline(TINY_CONFIG).fit(frame["text"].tolist(), frame["label"].tolist())


def make_tiny_models(data_path: Path) -> TinyModels:
    frame = load_dataset(data_path)
    held_out = frame.iloc[-400:]
    pool = frame.iloc[:-400]
    good_a, good_b, good_c = (_train(pool.sample(800, random_state=seed)) for seed in (1, 2, 3))
    single = _train(pool.sample(800, random_state=4))
    classifier = single.named_steps["classify"]
    # Zero weights and a large intercept: a well-formed pipeline that always answers "positive".
    classifier.coef_ = np.zeros_like(classifier.coef_)
    classifier.intercept_ = np.full_like(classifier.intercept_, 6.0)
    return TinyModels(good_a, good_b, good_c, single, held_out["text"].tolist(), held_out["label"].tolist())


class ModelRegistry:
    """Logs and registers tiny models on one MLflow server (tests share the server, not model names)."""

    def __init__(self, tracking_uri: str, models: TinyModels) -> None:
        self.tracking_uri = tracking_uri
        self.models = models
        self.experiment = f"inference-tests-{uuid.uuid4().hex[:6]}"

    def client(self) -> Any:
        return registry.client(self.tracking_uri)

    def log(self, pipeline: Pipeline, drift_reference: DriftReference | None = None) -> Logged:
        report = evaluate(pipeline, self.models.eval_texts, self.models.eval_labels)
        frame = pd.DataFrame({"text": self.models.eval_texts, "label": self.models.eval_labels})
        lineage = registry.Lineage(
            git_commit="test-commit",
            dataset_fingerprint=summarize(frame).fingerprint,
            params_hash=TINY_CONFIG.params_hash(),
        )
        logged = registry.log_training_run(
            tracking_uri=self.tracking_uri,
            experiment_name=self.experiment,
            pipeline=pipeline,
            params=TINY_CONFIG.to_dict(),
            report=report,
            summary=summarize(frame),
            lineage=lineage,
            input_example=self.models.eval_texts[:2],
            drift_reference=drift_reference,
        )
        return Logged(logged, report, lineage, {})

    def log_with_artifact(self, pipeline: Pipeline, content: bytes, recorded_hash: str | None) -> Logged:
        """Log a model, then replace its model.skops by `content` (a corrupted or foreign artifact).

        recorded_hash: the sha256 registered with the version (None keeps the hash of the original file).
        """
        base = self.log(pipeline)
        model_id = base.logged.model_uri.rstrip("/").split("/")[-1]
        with tempfile.TemporaryDirectory() as scratch:
            (Path(scratch) / registry.MODEL_FILE).write_bytes(content)
            self.client().log_model_artifacts(model_id, scratch)
        logged = base.logged if recorded_hash is None else replace(base.logged, sha256=recorded_hash)
        return replace(base, logged=logged)

    def register(self, model_name: str, logged: Logged, tags: dict[str, str] | None = None) -> str:
        client = self.client()
        version = registry.register_version(client, model_name, logged.logged, logged.report, logged.lineage)
        if tags:
            registry.tag_version(client, model_name, str(version.version), tags)
        return str(version.version)

    def promote(self, model_name: str, version: str) -> None:
        registry.set_alias(self.client(), model_name, CHAMPION_ALIAS, version)


def skops_bytes(pipeline: Pipeline) -> bytes:
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "model.skops"
        save_pipeline(pipeline, path)
        return path.read_bytes()


def sha256(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


@dataclass(frozen=True)
class SharedLogged:
    """Models logged once per session on the shared MLflow server; each test registers them under its own name."""

    good_a: Logged
    good_b: Logged
    single_class: Logged
    hash_mismatch: Logged
    unloadable: Logged


# --- the service under uvicorn --------------------------------------------------------------------------------
BASE_ENV = {
    "POLL_INTERVAL_SECONDS": "1",
    "POLL_MAX_BACKOFF_SECONDS": "2",
    "MLFLOW_REQUEST_MAX_RETRIES": "0",
    "MLFLOW_REQUEST_TIMEOUT_SECONDS": "5",
    "LOG_LEVEL": "INFO",
    "MODEL_MIN_ACCURACY": "0.7",
}


def wait_for(
    check: Callable[[], T | None], timeout: float, what: str, server: HttpServer | None = None, interval: float = 0.2
) -> T:
    """Call `check` until it returns something truthy; fail with the service log when it does not in time."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
        except httpx.HTTPError as error:
            last = error
        else:
            if last:
                return last
        time.sleep(interval)
    log = f"\nservice log:\n{tail(server.process.log_path, 60)}" if server else ""
    pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}; last value: {last!r}{log}")


def metric_values(server: HttpServer) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """/metrics as {(sample name, sorted labels): value}."""
    text = httpx.get(f"{server.url}/metrics", timeout=5).text
    values: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            values[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return values


def metric(server: HttpServer, metric_name: str, **labels: str) -> float:
    return metric_values(server).get((metric_name, tuple(sorted(labels.items()))), 0.0)


def serving_version(server: HttpServer) -> str | None:
    response = httpx.post(f"{server.url}/predict", json={"text": "a fine film"}, timeout=5)
    return response.json()["model_version"] if response.status_code == 200 else None
