"""The Prefect flow `sentiment-training`: load-data -> split-data -> train-model -> evaluate-model -> log-mlflow ->
register-model -> promote-champion (only with `set_champion`).

Tasks are thin wrappers over `steps` / `promotion`. With `set_champion`, a `fetch-champion` task downloads the current
champion while the run is logged, and the champion is scored on the held-out features the candidate already computed,
so the fair comparison costs little wall time.
A run that fails registers nothing and leaves every alias as it was (see `_undo`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.client.schemas.objects import TaskRun
from prefect.runtime import flow_run
from prefect.states import State
from prefect.tasks import Task

from sentiment_core import registry
from sentiment_core.data import DatasetSplit, TestSet
from sentiment_core.evaluation import EvaluationReport
from sentiment_core.model import ModelConfig
from sentiment_core.params import DataParams
from sentiment_core.settings import CHALLENGER_ALIAS, CHAMPION_ALIAS
from sentiment_trainer import FLOW_NAME, promotion, registration_undo, steps
from sentiment_trainer.errors import is_transient, one_line
from sentiment_trainer.logs import configure_logging
from sentiment_trainer.run_config import RunConfig, resolve_run_config
from sentiment_trainer.settings import TrainerSettings

T = TypeVar("T")

# Steps in the order the CLI shows them.
STEPS = (
    "load-data",
    "split-data",
    "train-model",
    "evaluate-model",
    # Only when the run has an independent test file.
    "evaluate-test",
    "log-mlflow",
    "fetch-champion",
    "register-model",
    "promote-champion",
)

Event = Literal["start", "done", "failed"]
ProgressListener = Callable[[str, Event, float], None]
_listener: ContextVar[ProgressListener | None] = ContextVar("sentiment_trainer_progress", default=None)


@contextmanager
def progress_listener(listener: ProgressListener) -> Iterator[None]:
    """Let an in-process caller (the CLI's progress bar) follow the steps of flows run in this context."""
    token = _listener.set(listener)
    try:
        yield
    finally:
        _listener.reset(token)


def _retry_if_transient(task: Task[..., Any], task_run: TaskRun, state: State[Any]) -> bool:
    """Prefect asks this before each retry: network and server hiccups yes, bad data or parameters no."""
    error = state.data if isinstance(state.data, BaseException) else None
    if error is None:
        try:
            state.result()
        except BaseException as raised:
            error = raised
    return error is not None and is_transient(error)


# I/O steps (files, MLflow): a few retries with growing delays, only for transient errors.
_IO = {"retries": 3, "retry_delay_seconds": [2, 5, 15], "retry_condition_fn": _retry_if_transient}
# Inputs are DataFrames and fitted pipelines: hashing them for a cache key would cost seconds for nothing.
_NO_CACHE = {"cache_policy": NO_CACHE, "persist_result": False}


@task(name="load-data", **_IO, **_NO_CACHE)
def load_data(path: Path, test_path: Path | None = None) -> steps.LoadedData:
    loaded = steps.load_data(path, test_path)
    summary = loaded.summary
    get_run_logger().info(
        "loaded %d reviews from %s (%.1f%% positive, fingerprint %s)",
        summary.rows,
        path,
        100 * summary.positive_share,
        summary.fingerprint[:12],
    )
    if loaded.test is not None:
        get_run_logger().info(
            "independent test file %s: %d reviews (%d dropped: their text is also in the dataset)",
            loaded.test.path,
            len(loaded.test.frame),
            loaded.test.overlap_rows,
        )
    else:
        get_run_logger().info("no independent test file at %s: held-out metrics only", test_path)
    return loaded


@task(name="split-data", **_NO_CACHE)
def split_data(loaded: steps.LoadedData, data: DataParams) -> DatasetSplit:
    split = steps.split_data(loaded.frame, data)
    get_run_logger().info(
        "split %d train / %d test (test_size %s, seed %s)", len(split.train), len(split.test), data.test_size, data.seed
    )
    return split


@task(name="train-model", **_NO_CACHE)
def train_model(config: ModelConfig, split: DatasetSplit, test: TestSet | None = None) -> steps.TrainedModel:
    trained = steps.train_model(config, split, test)
    get_run_logger().info("fitted %s in %.1fs", " -> ".join(trained.pipeline.named_steps), trained.fit_seconds)
    return trained


@task(name="evaluate-model", **_NO_CACHE)
def evaluate_model(trained: steps.TrainedModel) -> EvaluationReport:
    report = steps.evaluate_model(trained)
    get_run_logger().info(
        "held-out (%d reviews): %s", report.support, ", ".join(f"{k} {v:.4f}" for k, v in report.metrics().items())
    )
    return report


@task(name="evaluate-test", **_NO_CACHE)
def evaluate_test(trained: steps.TrainedModel) -> EvaluationReport | None:
    report = steps.evaluate_test(trained)
    if report is not None:
        get_run_logger().info(
            "independent test file (%d reviews): %s",
            report.support,
            ", ".join(f"{k} {v:.4f}" for k, v in report.metrics().items()),
        )
    return report


@task(name="fetch-champion", **_IO, **_NO_CACHE)
def fetch_champion(tracking_uri: str, model_name: str) -> tuple[promotion.Champion | None, float]:
    started = time.perf_counter()
    champion = promotion.fetch_champion(registry.client(tracking_uri), model_name)
    if champion is None:
        get_run_logger().info("'%s' has no champion yet", model_name)
    else:
        get_run_logger().info("fetched champion v%s of '%s' to re-score it on this split", champion.version, model_name)
    return champion, time.perf_counter() - started


@task(name="log-mlflow", **_IO, **_NO_CACHE)
def log_mlflow(
    run: RunConfig,
    trained: steps.TrainedModel,
    report: EvaluationReport,
    loaded: steps.LoadedData,
    split: DatasetSplit,
    lineage: registry.Lineage,
    test_report: EvaluationReport | None = None,
) -> registry.LoggedModel:
    logged = steps.log_run(run, trained, report, loaded, split, lineage)
    if test_report is not None and loaded.test is not None:
        steps.log_test_results(registry.client(run.tracking_uri), logged.run_id, test_report, loaded.test)
    get_run_logger().info("logged MLflow run %s in experiment '%s'", logged.run_id, run.experiment_name)
    return logged


@task(name="register-model", **_IO, **_NO_CACHE)
def register_model(
    run: RunConfig,
    logged: registry.LoggedModel,
    report: EvaluationReport,
    lineage: registry.Lineage,
    test_tags: dict[str, str] | None = None,
) -> str:
    client = registry.client(run.tracking_uri)
    version = steps.register_model(client, run, logged, report, lineage)
    if test_tags:
        registry.tag_version(client, run.model_name, version, test_tags)
    get_run_logger().info("registered '%s' version %s", run.model_name, version)
    return version


@task(name="promote-champion", **_IO, **_NO_CACHE)
def promote_champion(
    run: RunConfig,
    version: str,
    report: EvaluationReport,
    trained: steps.TrainedModel,
    champion: promotion.Champion | None,
    test_report: EvaluationReport | None = None,
) -> promotion.Comparison:
    exam = promotion.choose_exam(report, trained.held_out, test_report, trained.test)
    comparison = promotion.promote_candidate(
        registry.client(run.tracking_uri),
        run.model_name,
        version,
        exam.candidate,
        exam.data,
        champion,
        run.params.promotion.min_improvement,
        trained.pipeline,
        run.params.promotion.floors(),
        exam.name,
    )
    decision = comparison.decision
    alias = CHAMPION_ALIAS if decision.promote else CHALLENGER_ALIAS
    # print, not only log: log_prints sends it to the Prefect UI and it is the line people look for.
    print(f"promotion: v{version} -> {alias} (both scored on the {exam.name}): {decision.reason}")
    if comparison.champion_logged_f1 is not None and comparison.champion is not None:
        print(
            f"champion v{decision.champion_version}: F1 {comparison.champion.f1:.4f} on this {exam.name}"
            f" (it logged {comparison.champion_logged_f1:.4f} on its own split; not used)"
        )
    return comparison


@dataclass(frozen=True)
class TrainingOutcome:
    """What a run produced; the CLI prints it, the benchmark reads `timings`."""

    run_id: str
    experiment_name: str
    model_name: str
    version: str
    model_uri: str
    metrics: dict[str, float]
    flow_run_id: str | None
    # `test.accuracy`, ... on the independent test file (empty without one); `metrics` are the held-out split's.
    test_metrics: dict[str, float] = field(default_factory=dict)
    promoted: bool | None = None
    alias: str | None = None
    reason: str | None = None
    champion_version: str | None = None
    champion_f1: float | None = None
    timings: dict[str, float] = field(default_factory=dict)


@flow(name=FLOW_NAME, log_prints=True, description=__doc__)
def training_flow(
    data_path: str | None = None,
    params_file: str | None = None,
    test_data_path: str | None = None,
    overrides: dict[str, Any] | None = None,
    set_champion: bool = False,
    experiment_name: str | None = None,
    model_name: str | None = None,
) -> TrainingOutcome:
    """Train, evaluate, log and register the sentiment model; with `set_champion`, promote it if it wins.

    Args:
        data_path: dataset file (CSV, CSV.gz, Parquet); default params.yaml `data.path`.
        test_data_path: independent test file (other films); default $DATA_TEST_PATH, else params.yaml
            `data.test_path`'s file name beside the dataset. Used when it exists: `test.*` metrics, promotion exam.
        params_file: params.yaml to read; default $PARAMS_FILE, else the nearest params.yaml upwards from the cwd.
        overrides: per-run parameters, `{"C": 4}` or `{"model.n_features": 65536, "data.seed": 7}`.
        set_champion: compare with the champion on this run's held-out split and promote on a win.
        experiment_name: MLflow experiment; default $MLFLOW_EXPERIMENT_NAME, else params.yaml.
        model_name: registered model; default $MODEL_NAME, else params.yaml.
    """
    started = time.perf_counter()
    settings = TrainerSettings()
    configure_logging(settings.log_level, settings.log_format)
    run = resolve_run_config(
        settings=settings,
        data_path=data_path,
        params_file=params_file,
        test_path=test_data_path,
        overrides=overrides,
        set_champion=set_champion,
        experiment_name=experiment_name,
        model_name=model_name,
    )
    client = registry.client(run.tracking_uri)
    print(
        f"training '{run.model_name}' from {run.data_path} (test file {run.test_path}"
        f"{'' if run.test_path.is_file() else ': absent'}; params: {run.params_file or 'library defaults'},"
        f" set_champion={run.set_champion})"
    )
    timings: dict[str, float] = {}
    loaded = _timed(timings, "load-data", load_data, run.data_path, run.test_path)
    split = _timed(timings, "split-data", split_data, loaded, run.params.data)
    trained = _timed(timings, "train-model", train_model, run.params.model, split, loaded.test)
    report = _timed(timings, "evaluate-model", evaluate_model, trained)
    test_report = _timed(timings, "evaluate-test", evaluate_test, trained) if trained.test is not None else None
    # Download the champion while the run is logged: both wait on the network, neither competes with training
    # for the CPU (measured: fetching during the fit slowed the fit more than the fetch costs).
    champion_future = fetch_champion.submit(run.tracking_uri, run.model_name) if run.set_champion else None
    lineage = steps.build_lineage(run, loaded.summary, flow_run.id)
    logged = _timed(timings, "log-mlflow", log_mlflow, run, trained, report, loaded, split, lineage, test_report)
    champion: promotion.Champion | None = None
    if champion_future is not None:
        try:
            champion, timings["fetch-champion"] = _timed(timings, "fetch-champion-wait", champion_future.result)
        except BaseException as error:
            # Nothing registered yet: only the MLflow run must stop looking like a usable result.
            steps.mark_run_failed(client, logged.run_id, one_line(error, run.tracking_uri))
            raise

    # Register-and-promote is serialised across every run and CLI command that moves aliases (issue 15): two
    # overlapping champion runs would both read "no champion", or one would drop the other's history entry.
    lock = registry.promotion_lock(client, run.model_name) if run.set_champion else nullcontext()
    with lock:
        snapshot = registration_undo.snapshot_registry(client, run.model_name)
        try:
            test_tags = steps.version_test_tags(test_report, loaded.test) if test_report and loaded.test else None
            version = _timed(timings, "register-model", register_model, run, logged, report, lineage, test_tags)
            comparison = None
            if run.set_champion:
                comparison = _timed(
                    timings,
                    "promote-champion",
                    promote_champion,
                    run,
                    version,
                    report,
                    trained,
                    champion,
                    test_report,
                )
                _record_comparison(client, logged.run_id, comparison)
        except BaseException as error:
            _undo(client, run, logged.run_id, snapshot, error)
            raise
    if comparison is None:
        print(f"registered v{version} without changing aliases (set_champion is off)")

    timings["total"] = time.perf_counter() - started
    decision = comparison.decision if comparison else None
    return TrainingOutcome(
        run_id=logged.run_id,
        experiment_name=run.experiment_name,
        model_name=run.model_name,
        version=version,
        model_uri=logged.model_uri,
        metrics=report.metrics(),
        test_metrics=steps.test_metrics(test_report, loaded.test) if test_report and loaded.test else {},
        flow_run_id=flow_run.id,
        promoted=decision.promote if decision else None,
        alias=(CHAMPION_ALIAS if decision.promote else CHALLENGER_ALIAS) if decision else None,
        reason=decision.reason if decision else None,
        champion_version=decision.champion_version if decision else None,
        champion_f1=decision.champion_score if decision else None,
        timings=timings,
    )


def _timed(timings: dict[str, float], name: str, call: Callable[..., T], *args: Any) -> T:
    """Run one step, timing it (task overhead included) and telling the in-process progress listener."""
    listener = _listener.get()
    if listener:
        listener(name, "start", 0.0)
    started = time.perf_counter()
    try:
        result = call(*args)
    except BaseException:
        if listener:
            listener(name, "failed", time.perf_counter() - started)
        raise
    timings[name] = time.perf_counter() - started
    if listener:
        listener(name, "done", timings[name])
    return result


def _record_comparison(client: Any, run_id: str, comparison: promotion.Comparison) -> None:
    """The decision on the MLflow run too (the version already has it): the experiment view shows who won."""
    from mlflow.entities import Metric, RunTag

    now = int(time.time() * 1000)
    tags = [RunTag(key, value) for key, value in comparison.decision.tags().items()]
    tags.append(RunTag(promotion.TAG_PROMOTION_EXAM, comparison.exam))
    metrics = []
    if comparison.champion is not None:
        metrics.append(Metric("champion_f1_same_split", comparison.champion.f1, now, 0))
    client.log_batch(run_id, metrics=metrics, tags=tags)


def _undo(
    client: Any, run: RunConfig, run_id: str, snapshot: registration_undo.RegistrySnapshot, error: BaseException
) -> None:
    """After a failure past log-mlflow: delete what this run registered, restore aliases, mark the run FAILED."""
    logger = get_run_logger()
    try:
        deleted = registration_undo.undo_registration(client, run.model_name, run_id, snapshot)
        steps.mark_run_failed(client, run_id, one_line(error, run.tracking_uri))
        if deleted:
            logger.warning("run failed: deleted version(s) %s and restored aliases", ", ".join(deleted))
    except Exception as cleanup_error:
        # The original error matters more; say loudly that the registry may need a look.
        logger.error(
            "run failed and the cleanup failed too (%s); check '%s' run %s in MLflow",
            one_line(cleanup_error, run.tracking_uri),
            run.model_name,
            run_id,
        )
