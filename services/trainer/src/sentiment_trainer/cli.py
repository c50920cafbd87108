"""`sentiment-trainer`: prepare data, train (the Prefect flow, in-process), inspect and move model aliases, deploy.

Errors are one line on stderr and a non-zero exit, never a traceback (`--debug` shows it). Heavy imports (MLflow,
Prefect, scikit-learn) happen inside the commands so `--help` stays fast.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, TypeVar
from urllib.parse import urlparse

import click
import typer
from rich import box
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TransferSpeedColumn,
)
from rich.table import Table

from sentiment_trainer.errors import TrainerError, UnreachableError, one_line

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient

    from sentiment_core.quality_gate import QualityFloors
    from sentiment_core.registry import UnservableVersionError
    from sentiment_trainer.flow import TrainingOutcome
    from sentiment_trainer.settings import TrainerSettings

F = TypeVar("F", bound=Callable[..., Any])

app = typer.Typer(
    name="sentiment-trainer",
    help="Train, register, promote and deploy the IMDb sentiment classifier (MLflow + Prefect).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)
console = Console(highlight=False)


class _State:
    debug = False
    tracking_uri: str | None = None


_state = _State()

# Registry commands answer in seconds even when MLflow is down; training tolerates a little more (its tasks retry).
_QUICK_MLFLOW = {"timeout_seconds": 10.0, "max_retries": 0}
_TRAINING_MLFLOW = {"timeout_seconds": 120.0, "max_retries": 2}
_PROBE_TIMEOUT = 5.0


def _fail(message: str, code: int = 1) -> NoReturn:
    # typer.echo, not rich: rich wraps long lines to the terminal width, and this must stay one line.
    typer.echo(f"error: {' '.join(message.split())}", err=True)
    raise typer.Exit(code)


def _handled(command: F) -> F:
    """Turn any failure into one line and exit 1 (130 on Ctrl-C); --debug re-raises for the traceback."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            with _scoped_environ():
                return command(*args, **kwargs)
        except (typer.Exit, typer.Abort, click.ClickException):
            raise
        except KeyboardInterrupt:
            _fail("interrupted", 130)
        except Exception as error:
            if _state.debug:
                raise
            _fail(one_line(error, _state.tracking_uri))

    return wrapper  # type: ignore[return-value]


@contextmanager
def _scoped_environ() -> Iterator[None]:
    """Environment defaults set for one command (MLflow retries, ...) are undone after it: the CLI also runs
    in-process (tests, notebooks), where a later flow must not inherit "no retries"."""
    saved = dict(os.environ)
    try:
        yield
    finally:
        for key in set(os.environ) - set(saved):
            del os.environ[key]
        for key, value in saved.items():
            if os.environ.get(key) != value:
                os.environ[key] = value


@app.callback()
def _main(
    debug: Annotated[
        bool, typer.Option("--debug", envvar="SENTIMENT_TRAINER_DEBUG", help="Show tracebacks on errors.")
    ] = False,
) -> None:
    _state.debug = debug


def main() -> None:
    app()


# ---------------------------------------------------------------------------------------------------------------
# Shared helpers


def _settings() -> TrainerSettings:
    # Imported here: sentiment_core's package import pulls pandas and scikit-learn (seconds), not needed for --help.
    from sentiment_trainer.settings import TrainerSettings

    settings = TrainerSettings()
    _state.tracking_uri = settings.tracking_uri
    return settings


def _mlflow_env(values: dict[str, Any]) -> None:
    """Defaults only: an operator's MLFLOW_HTTP_REQUEST_* wins. Scoped to the command by `_handled`."""
    from sentiment_core.mlflow_client_options import apply_mlflow_client_options

    apply_mlflow_client_options(**values)


def _probe(url: str, what: str, hint: str) -> None:
    """GET url; a connection failure becomes a one-line UnreachableError within seconds (any HTTP answer is fine)."""
    import httpx

    try:
        httpx.get(url, timeout=_PROBE_TIMEOUT)
    except httpx.HTTPError as error:
        raise UnreachableError(f"cannot reach {what} at {url} ({type(error).__name__}); {hint}") from None


def _probe_mlflow(tracking_uri: str) -> None:
    if urlparse(tracking_uri).scheme in ("http", "https"):
        _probe(tracking_uri.rstrip("/") + "/health", "MLflow", "is MLFLOW_TRACKING_URI right and the server up?")


def _mlflow_client(settings: TrainerSettings) -> MlflowClient:
    _mlflow_env(_QUICK_MLFLOW)
    _probe_mlflow(settings.tracking_uri)
    from sentiment_core import registry

    return registry.client(settings.tracking_uri)


def _model_name(option: str | None, settings: TrainerSettings) -> str:
    """--model-name, else MODEL_NAME, else params.yaml `mlflow.model_name`, else the default."""
    if option:
        return option
    from sentiment_trainer.run_config import resolve_run_config

    return resolve_run_config(settings=settings).model_name


def _require_model(client: MlflowClient, model_name: str) -> None:
    from mlflow.exceptions import MlflowException

    from sentiment_core.registry import RegistryError, is_not_found

    try:
        client.get_registered_model(model_name)
    except MlflowException as error:
        if is_not_found(error):
            raise RegistryError(f"no registered model named '{model_name}'") from None
        raise


def _prefect_api_url(settings: TrainerSettings) -> str | None:
    """PREFECT_API_URL from the environment now (Prefect read its settings at import), else Prefect's profile."""
    if settings.prefect_api_url:
        return settings.prefect_api_url
    from prefect.settings import PREFECT_API_URL

    return PREFECT_API_URL.value() or None


@contextmanager
def _prefect_api(api_url: str | None) -> Iterator[None]:
    """Run flows against `api_url`; without one, Prefect 3.8 starts a temporary local server for the run.

    That server needs ephemeral mode (on in Prefect's default profile, off in its settings' defaults) and takes
    ~20-30 s to start on a busy 2-core machine, more than Prefect's default 20 s timeout: allow both explicitly.
    """
    from prefect.settings import (
        PREFECT_API_URL,
        PREFECT_SERVER_EPHEMERAL_ENABLED,
        PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS,
        temporary_settings,
    )

    if api_url:
        updates: dict[Any, Any] = {PREFECT_API_URL: api_url}
    else:
        updates = {PREFECT_SERVER_EPHEMERAL_ENABLED: True, PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS: 180}
    with temporary_settings(updates=updates):
        yield


@contextmanager
def _quiet_console_logs(verbose: bool) -> Iterator[None]:
    """Keep the terminal for the progress bar and the one-line error: console handlers show nothing but critical
    records (Prefect logs a failed task with its traceback); the Prefect API still gets every log."""
    if verbose:
        yield
        return
    handlers = [handler for handler in logging.getLogger().handlers if not _is_api_handler(handler)]
    levels = [handler.level for handler in handlers]
    mlflow_logger = logging.getLogger("mlflow")
    mlflow_level = mlflow_logger.level
    for handler in handlers:
        handler.setLevel(max(handler.level, logging.CRITICAL))
    # MLflow logs through its own handler; its warnings here (no pip in a uv venv) are not actionable.
    mlflow_logger.setLevel(logging.ERROR)
    os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
    try:
        yield
    finally:
        for handler, level in zip(handlers, levels, strict=True):
            handler.setLevel(level)
        mlflow_logger.setLevel(mlflow_level)


def _is_api_handler(handler: logging.Handler) -> bool:
    return type(handler).__name__ in ("APILogHandler", "WorkerAPILogHandler")


def _metrics_table(metrics: dict[str, float], title: str = "held-out metrics") -> Table:
    table = Table(title=title, title_justify="left")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for name, value in metrics.items():
        table.add_row(name, f"{value:.4f}")
    return table


def _when(timestamp_ms: int | None, short: bool = False) -> str:
    if not timestamp_ms:
        return "-"
    moment = datetime.fromtimestamp(timestamp_ms / 1000, tz=UTC)
    return moment.strftime("%Y-%m-%d %H:%M") if short else moment.strftime("%Y-%m-%d %H:%M UTC")


# ---------------------------------------------------------------------------------------------------------------
# prepare


@app.command()
@_handled
def prepare(
    source: Annotated[
        Path | None,
        typer.Option("--source", help="Local CSV/CSV.gz/Parquet (text,label). Default: $DATA_SOURCE, else download."),
    ] = None,
    output: Annotated[Path | None, typer.Option("--output", help="Where to write. Default: params data.path.")] = None,
    sample_size: Annotated[
        int | None, typer.Option("--sample-size", min=0, help="Stratified sample; 0 = all. Default: params.")
    ] = None,
    seed: Annotated[int | None, typer.Option("--seed", help="Sampling seed. Default: params data.seed.")] = None,
    params_file: Annotated[Path | None, typer.Option("--params", help="params.yaml to read.")] = None,
    cache_dir: Annotated[Path | None, typer.Option("--cache-dir", help="Where the archive download is kept.")] = None,
    test_source: Annotated[
        Path | None,
        typer.Option(
            "--test-source",
            help="Local independent test file (text,label; other films). Default: $DATA_TEST_SOURCE, else the"
            " archive's official test split when building from the archive.",
        ),
    ] = None,
    test_output: Annotated[
        Path | None,
        typer.Option("--test-output", help="Where to write the test file. Default: beside --output, params name."),
    ] = None,
    test_sample_size: Annotated[
        int | None,
        typer.Option("--test-sample-size", min=0, help="Stratified test sample; 0 = all. Default: params."),
    ] = None,
) -> None:
    """Build the dataset (dedup, optional stratified sample, gzip CSV) from a local file or the official archive.

    Also writes the independent test file (official test split, or --test-source) beside it, minus any review whose
    text is in the dataset.
    """
    from sentiment_core.prepare import OFFICIAL_ARCHIVE, ArchiveSource, prepare_dataset
    from sentiment_trainer.run_config import resolve_run_config

    settings = _settings()
    run = resolve_run_config(settings=settings, params_file=params_file, data_path=output, test_path=test_output)
    source = source or settings.data_source
    if source is not None and not source.is_file():
        raise TrainerError(f"source file not found: {source}")
    test_source = test_source or settings.data_test_source
    if test_source is not None and not test_source.is_file():
        raise TrainerError(f"test source file not found: {test_source}")
    archive = ArchiveSource(
        url=settings.data_archive_url or OFFICIAL_ARCHIVE.url, md5=settings.data_archive_md5 or OFFICIAL_ARCHIVE.md5
    )
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as progress:
        task = progress.add_task(f"reading {source}" if source else f"downloading {archive.url}", total=None)

        def on_bytes(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        prepared = prepare_dataset(
            run.data_path,
            source=source,
            sample_size=run.params.data.sample_size if sample_size is None else sample_size,
            seed=run.params.data.seed if seed is None else seed,
            cache_dir=cache_dir,
            progress=on_bytes,
            test_output=run.test_path,
            test_source=test_source,
            test_sample_size=run.params.data.test_sample_size if test_sample_size is None else test_sample_size,
            archive_source=archive,
        )
    summary = prepared.summary
    table = Table(title=f"dataset written to {prepared.path}", title_justify="left", show_header=False)
    table.add_row("source", prepared.source)
    table.add_row("rows", f"{summary.rows:,}")
    table.add_row("positive / negative", f"{summary.positives:,} / {summary.negatives:,}")
    table.add_row("positive share", f"{summary.positive_share:.1%}")
    table.add_row("duplicates dropped", f"{prepared.dropped_duplicates:,}")
    table.add_row("fingerprint", summary.fingerprint)
    console.print(table)
    if prepared.test is None:
        console.print(f"no independent test file written (local --source without --test-source): {run.test_path}")
        return
    test = prepared.test
    table = Table(title=f"independent test file written to {test.path}", title_justify="left", show_header=False)
    table.add_row("source", test.source)
    table.add_row("rows", f"{test.summary.rows:,}")
    table.add_row("positive / negative", f"{test.summary.positives:,} / {test.summary.negatives:,}")
    table.add_row("duplicates dropped", f"{test.dropped_duplicates:,}")
    table.add_row("dropped: also in the dataset", f"{test.overlap_rows:,}")
    table.add_row("fingerprint", test.summary.fingerprint)
    console.print(table)


# ---------------------------------------------------------------------------------------------------------------
# train


@app.command()
@_handled
def train(
    champion: Annotated[
        bool, typer.Option("--champion", help="Compare with the champion on this split; promote on a win.")
    ] = False,
    data: Annotated[Path | None, typer.Option("--data", help="Dataset file. Default: params data.path.")] = None,
    test_data: Annotated[
        Path | None,
        typer.Option(
            "--test-data",
            help="Independent test file. Default: $DATA_TEST_PATH, else params data.test_path's name beside --data.",
        ),
    ] = None,
    param: Annotated[
        list[str] | None,
        typer.Option("--param", "-p", help="Override, repeatable: C=4, model.n_features=65536, data.seed=7."),
    ] = None,
    params_file: Annotated[Path | None, typer.Option("--params", help="params.yaml to read.")] = None,
    experiment: Annotated[str | None, typer.Option("--experiment", help="MLflow experiment.")] = None,
    model_name: Annotated[str | None, typer.Option("--model-name", help="Registered model.")] = None,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Show Prefect's and MLflow's logs (and tracebacks) too.")
    ] = False,
    metrics_out: Annotated[
        Path | None,
        typer.Option("--metrics-out", help="Also write the held-out metrics, version and decision as JSON (DVC)."),
    ] = None,
) -> None:
    """Run the `sentiment-training` flow in this process; print the run, metrics, version and promotion decision."""
    from sentiment_trainer.run_config import parse_overrides, resolve_run_config

    settings = _settings()
    overrides = parse_overrides(param or [])
    # Validate everything cheap before paying for Prefect and MLflow.
    run = resolve_run_config(
        settings=settings,
        data_path=data.resolve() if data else None,
        params_file=params_file,
        test_path=test_data.resolve() if test_data else None,
        overrides=overrides,
        set_champion=champion,
        experiment_name=experiment,
        model_name=model_name,
    )
    if not run.data_path.is_file():
        raise TrainerError(f"dataset not found: {run.data_path}; run `sentiment-trainer prepare` or pass --data")
    if test_data is not None and not run.test_path.is_file():
        raise TrainerError(f"test file not found: {run.test_path}")
    _mlflow_env(_TRAINING_MLFLOW)
    _probe_mlflow(run.tracking_uri)
    api_url = _prefect_api_url(settings)
    if api_url:
        _probe(api_url.rstrip("/") + "/health", "the Prefect API", "is PREFECT_API_URL right and the server up?")
        console.print(f"Prefect API {api_url} · MLflow {run.tracking_uri}")
    else:
        console.print(
            "PREFECT_API_URL is not set: Prefect starts a temporary local server for this run"
            f" · MLflow {run.tracking_uri}"
        )

    from sentiment_trainer.flow import STEPS, progress_listener, training_flow
    from sentiment_trainer.logs import configure_logging

    configure_logging(settings.log_level, settings.log_format)
    with (
        Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total} steps"),
            TimeElapsedColumn(),
            console=console,
        ) as progress,
        _quiet_console_logs(verbose),
    ):
        steps_total = (len(STEPS) if champion else len(STEPS) - 2) - (0 if run.test_path.is_file() else 1)
        bar = progress.add_task("starting the flow", total=steps_total)

        def on_step(step: str, event: str, seconds: float) -> None:
            if step == "fetch-champion-wait":
                step = "fetch-champion"
            if event == "start":
                progress.update(bar, description=step)
            elif event == "done":
                progress.advance(bar)
                progress.console.print(f"  [green]✓[/green] {step:<17} {seconds:6.1f}s")
            else:
                progress.console.print(f"  [red]✗[/red] {step:<17} {seconds:6.1f}s")

        with _prefect_api(api_url), progress_listener(on_step):
            outcome = training_flow(
                data_path=str(run.data_path),
                test_data_path=str(run.test_path),
                params_file=str(run.params_file) if run.params_file else None,
                overrides=overrides or None,
                set_champion=champion,
                experiment_name=run.experiment_name,
                model_name=run.model_name,
            )
        progress.update(bar, description="done")
    _print_outcome(outcome)
    if metrics_out:
        _write_metrics(outcome, metrics_out)


def _write_metrics(outcome: TrainingOutcome, path: Path) -> None:
    """The file `dvc metrics show` reads: this run's held-out metrics and what became of its version."""
    path.parent.mkdir(parents=True, exist_ok=True)
    summary = {
        **outcome.metrics,
        **outcome.test_metrics,
        "version": outcome.version,
        "run_id": outcome.run_id,
        "alias": outcome.alias,
        "promoted": outcome.promoted,
    }
    path.write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    console.print(f"metrics written to {path}")


def _print_outcome(outcome: TrainingOutcome) -> None:
    console.print(f"MLflow run      {outcome.run_id} (experiment '{outcome.experiment_name}')")
    console.print(f"model version   {outcome.model_name} v{outcome.version}")
    if outcome.flow_run_id:
        console.print(f"Prefect run     {outcome.flow_run_id}")
    console.print(_metrics_table(outcome.metrics, "held-out split metrics (random split of the dataset)"))
    if outcome.test_metrics:
        console.print(_metrics_table(outcome.test_metrics, "independent test file metrics (other films)"))
    else:
        console.print("independent test file: none (no test.* metrics)")
    if outcome.promoted is None:
        console.print("promotion       not asked (--champion): aliases unchanged")
    else:
        verdict = "[green]promoted to champion[/green]" if outcome.promoted else "[yellow]challenger[/yellow]"
        console.print(f"promotion       {verdict}: {outcome.reason}")
    total = outcome.timings.get("total")
    if total is not None:
        console.print(f"total           {total:.1f}s")


# ---------------------------------------------------------------------------------------------------------------
# registry commands


ModelNameOption = Annotated[
    str | None, typer.Option("--model-name", help="Registered model. Default: $MODEL_NAME, else params.yaml.")
]


@app.command("model-info")
@_handled
def model_info(
    model_name: ModelNameOption = None,
    alias: Annotated[str, typer.Option("--alias", help="Alias to describe.")] = "champion",
) -> None:
    """The version holding an alias (champion by default): run, metrics, lineage, promotion record."""
    from sentiment_core import registry, tags

    settings = _settings()
    client = _mlflow_client(settings)
    name = _model_name(model_name, settings)
    _require_model(client, name)
    version = registry.alias_version(client, name, alias)
    if version is None:
        raise registry.RegistryError(f"model '{name}' has no '{alias}' alias yet; train with --champion or set-alias")
    info = next(v for v in registry.list_versions(client, name) if v.version == str(version.version))
    table = Table(title=f"{name} @{alias}", title_justify="left", show_header=False)
    table.add_column("field", no_wrap=True)
    table.add_column("value", overflow="fold")
    table.add_row("version", info.version)
    table.add_row("aliases", ", ".join(info.aliases) or "-")
    table.add_row("run id", info.run_id or "-")
    table.add_row("created", _when(info.created_at_ms))
    table.add_row("status", info.status)
    # Held-out = a random split of the training data (films seen in training); test = the independent test file.
    for metric in ("f1", "accuracy", "precision", "recall", "roc_auc", "ece", "brier"):
        value = info.metric(metric)
        table.add_row(f"held-out {metric}", f"{value:.4f}" if value is not None else "-")
    for metric in ("f1", "accuracy", "precision", "recall", "roc_auc", "ece", "brier"):
        value = info.metric("test." + metric)
        table.add_row(f"test-file {metric}", f"{value:.4f}" if value is not None else "- (no test file)")
    for metric in ("rows", "overlap_rows"):
        value = info.metric("test." + metric)
        if value is not None:
            table.add_row(f"test-file {metric}", f"{value:.0f}")
    for key in sorted(info.tags):
        if (
            key.startswith((tags.LINEAGE_TAG_PREFIX, tags.PROMOTION_TAG_PREFIX, "test."))
            or key == tags.TAG_MODEL_SHA256
        ):
            table.add_row(key, info.tags[key])
    console.print(table)


@app.command("list-versions")
@_handled
def list_versions(model_name: ModelNameOption = None) -> None:
    """Every version, newest first, with its aliases and key metrics."""
    from sentiment_core import registry

    settings = _settings()
    client = _mlflow_client(settings)
    name = _model_name(model_name, settings)
    versions = registry.list_versions(client, name)
    # Fits 80 columns: the decision, run and lineage are in `model-info --alias ...`.
    table = Table(title=f"{name}: {len(versions)} version(s)", title_justify="left", box=box.SIMPLE_HEAD)
    # "held acc" = random split of the training data; "test acc" = the independent test file (other films).
    for column in ("version", "aliases", "held f1", "held acc", "test acc", "created (UTC)"):
        numeric = column in ("version", "held f1", "held acc", "test acc")
        table.add_column(column, justify="right" if numeric else "left", no_wrap=True)
    for info in versions:
        table.add_row(
            info.version,
            ", ".join(info.aliases) or "-",
            *(
                f"{value:.4f}" if value is not None else "-"
                for value in map(info.metric, ("f1", "accuracy", "test.accuracy"))
            ),
            _when(info.created_at_ms, short=True),
        )
    console.print(table)


ForceOption = Annotated[
    bool,
    typer.Option(
        "--force",
        help="Move champion even to a version the API would refuse (missing or altered artifact, below the floors).",
    ),
]


def _champion_floors(settings: TrainerSettings, force: bool) -> QualityFloors | None:
    """The quality floors of params.yaml `promotion:` (None with --force: no check)."""
    if force:
        return None
    from sentiment_trainer.run_config import resolve_run_config

    return resolve_run_config(settings=settings).params.promotion.floors()


def _refused(error: UnservableVersionError, command: str) -> NoReturn:
    _fail(f"refused: {error}; the API would not serve it. {command} --force moves champion anyway")


@app.command("set-alias")
@_handled
def set_alias(
    version: Annotated[str, typer.Option("--version", help="Version number.")],
    alias: Annotated[str, typer.Option("--alias", help="Alias to point at it (champion, challenger, ...).")],
    model_name: ModelNameOption = None,
    force: ForceOption = False,
) -> None:
    """Point an alias at a version (moves of champion are kept in the history rollback reads).

    champion moves only to a version the API would serve (artifact present and unaltered, loads, clears the
    quality floors of params.yaml `promotion:`), unless --force.
    """
    from sentiment_core import registry

    if not version.isdigit():
        raise TrainerError(f"--version must be a version number, got {version!r}")
    settings = _settings()
    client = _mlflow_client(settings)
    name = _model_name(model_name, settings)
    _require_model(client, name)
    floors = _champion_floors(settings, force)
    # The same lock as training runs' promotions: the champion history is read, then rewritten.
    with registry.promotion_lock(client, name):
        before = registry.alias_version(client, name, alias)
        try:
            registry.set_alias(client, name, alias, version, floors=floors)
        except registry.UnservableVersionError as error:
            _refused(error, "set-alias")
    was = f" (was v{before.version})" if before is not None else ""
    console.print(f"{name}: {alias} -> v{version}{was}")


@app.command()
@_handled
def rollback(model_name: ModelNameOption = None, force: ForceOption = False) -> None:
    """Move champion back to the version that held it before, if the API would serve it (or with --force)."""
    from sentiment_core import registry

    settings = _settings()
    client = _mlflow_client(settings)
    name = _model_name(model_name, settings)
    _require_model(client, name)
    floors = _champion_floors(settings, force)
    with registry.promotion_lock(client, name):
        try:
            previous, current = registry.rollback_champion(client, name, floors=floors)
        except registry.UnservableVersionError as error:
            _refused(error, "rollback")
    console.print(f"{name}: champion v{previous} -> v{current}")


# ---------------------------------------------------------------------------------------------------------------
# deploy


@app.command()
@_handled
def deploy(
    only: Annotated[
        str | None, typer.Option("--only", help="Deploy only `local` or `k8s` (default: both).", metavar="local|k8s")
    ] = None,
    project_dir: Annotated[
        Path | None, typer.Option("--project-dir", help="Directory of prefect.yaml. Default: $TRAINER_DIR.")
    ] = None,
    update_pools: Annotated[
        bool, typer.Option("--update-pools", help="Also overwrite existing pools' base job templates.")
    ] = False,
) -> None:
    """Register the deployments of prefect.yaml against PREFECT_API_URL, creating the work pools if missing."""
    from sentiment_trainer import deployments

    if only not in (None, "local", "k8s"):
        raise TrainerError(f"--only must be 'local' or 'k8s', got {only!r}")
    targets: list[deployments.Target] = [only] if only else ["local", "k8s"]  # type: ignore[list-item]
    settings = _settings()
    api_url = _prefect_api_url(settings)
    if not api_url:
        raise TrainerError("PREFECT_API_URL is not set; deploy registers deployments on a running Prefect server")
    _probe(api_url.rstrip("/") + "/health", "the Prefect API", "is PREFECT_API_URL right and the server up?")
    directory = deployments.find_project_dir(project_dir, settings.trainer_dir)
    with _prefect_api(api_url):
        with console.status("work pools"):
            pools = asyncio.run(deployments.ensure_pools(targets, update=update_pools))
        for pool in pools:
            console.print(f"work pool {pool.name} ({pool.type}): {pool.action}")
        with console.status(f"prefect deploy ({directory / deployments.PREFECT_FILE})"):
            deployments.run_prefect_deploy(directory, targets, api_url)
        registered = asyncio.run(deployments.read_deployments(targets))
    for item in registered:
        console.print(f"deployment {item.name} on {item.work_pool}: {item.id}")


@app.command("sync-pool")
@_handled
def sync_pool(
    name: Annotated[str, typer.Option("--name", help="Work pool name.")],
    template_file: Annotated[
        Path, typer.Option("--base-job-template", help="Base job template (JSON) to apply.", exists=True)
    ],
    pool_type: Annotated[str, typer.Option("--type", help="Work pool type.")] = "kubernetes",
) -> None:
    """Create a work pool, or apply a template that changed since the last sync; a restart keeps UI edits."""
    from sentiment_trainer import deployments

    try:
        template = json.loads(template_file.read_text())
    except ValueError as exc:
        raise TrainerError(f"{template_file} is not valid JSON: {exc}") from None
    settings = _settings()
    api_url = _prefect_api_url(settings)
    if not api_url:
        raise TrainerError("PREFECT_API_URL is not set; sync-pool talks to a running Prefect server")
    _probe(api_url.rstrip("/") + "/health", "the Prefect API", "is PREFECT_API_URL right and the server up?")
    with _prefect_api(api_url):
        result = asyncio.run(deployments.sync_pool(name, pool_type, template))
    console.print(f"work pool {result.name} ({result.type}): {result.action}")
