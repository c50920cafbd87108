"""MLflow: log a trained model with its lineage, register versions, move aliases, decide promotions.

The only module of the library that imports MLflow. `decide_promotion` is pure and needs no server.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
import sklearn
import skops
import yaml
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.models import infer_signature
from mlflow.tracking import MlflowClient
from sklearn.pipeline import Pipeline

import sentiment_core
from sentiment_core import quality_gate
from sentiment_core.data import DatasetSummary
from sentiment_core.drift import DRIFT_REFERENCE_ARTIFACT, DriftReference, DriftReferenceError
from sentiment_core.errors import SentimentError
from sentiment_core.evaluation import EvaluationReport
from sentiment_core.model import TRUSTED_TYPES, load_pipeline
from sentiment_core.quality_gate import HeldOutEvidence, QualityFloors, QualityGateError, held_out_failures
from sentiment_core.settings import CHALLENGER_ALIAS, CHAMPION_ALIAS
from sentiment_core.tags import (
    METRIC_TAG_PREFIX,
    TAG_CHAMPION_HISTORY,
    TAG_DATASET_FINGERPRINT,
    TAG_DVC_DATA_HASH,
    TAG_FLOW_RUN_ID,
    TAG_GIT_COMMIT,
    TAG_MODEL_SHA256,
    TAG_PARAMS_HASH,
    TAG_PROMOTION_CANDIDATE_SCORE,
    TAG_PROMOTION_CHAMPION_SCORE,
    TAG_PROMOTION_CHAMPION_VERSION,
    TAG_PROMOTION_DECISION,
    TAG_PROMOTION_REASON,
)

MODEL_ARTIFACT_PATH = "model"
MODEL_FILE = "model.skops"
# What MLflow answers for a model, version or alias that does not exist. Its SQL store says INVALID_PARAMETER_VALUE
# for an unknown alias and a malformed version number; a proxy in front of it may say NOT_FOUND.
_NOT_FOUND_CODES = frozenset({"RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND"})


class RegistryError(SentimentError, RuntimeError):
    """A registry operation that cannot go on; the message is meant for a human."""


class UnservableVersionError(RegistryError):
    """A version the API would refuse to serve (missing or altered artifact, unloadable, below the quality floors)."""

    def __init__(self, model_name: str, version: str, reason: str) -> None:
        self.version = version
        self.reason = reason
        super().__init__(f"version {version} of '{model_name}' cannot serve: {reason}")


@dataclass(frozen=True)
class Lineage:
    git_commit: str
    dataset_fingerprint: str
    params_hash: str
    dvc_data_hash: str | None = None
    prefect_flow_run_id: str | None = None

    def tags(self) -> dict[str, str]:
        tags = {
            TAG_GIT_COMMIT: self.git_commit,
            TAG_DATASET_FINGERPRINT: self.dataset_fingerprint,
            TAG_PARAMS_HASH: self.params_hash,
        }
        if self.dvc_data_hash:
            tags[TAG_DVC_DATA_HASH] = self.dvc_data_hash
        if self.prefect_flow_run_id:
            tags[TAG_FLOW_RUN_ID] = self.prefect_flow_run_id
        return tags


@dataclass(frozen=True)
class LoggedModel:
    run_id: str
    model_uri: str
    sha256: str
    model_id: str | None = None


@dataclass(frozen=True)
class PromotionDecision:
    promote: bool
    reason: str
    candidate_score: float
    champion_score: float | None
    champion_version: str | None

    def tags(self) -> dict[str, str]:
        tags = {
            TAG_PROMOTION_DECISION: "promoted" if self.promote else "not-promoted",
            TAG_PROMOTION_REASON: self.reason,
            TAG_PROMOTION_CANDIDATE_SCORE: f"{self.candidate_score:.6f}",
        }
        if self.champion_score is not None:
            tags[TAG_PROMOTION_CHAMPION_SCORE] = f"{self.champion_score:.6f}"
        if self.champion_version is not None:
            tags[TAG_PROMOTION_CHAMPION_VERSION] = self.champion_version
        return tags


@dataclass(frozen=True)
class VersionInfo:
    """A registered version as the CLI and the API show it."""

    version: str
    run_id: str | None
    aliases: tuple[str, ...]
    tags: dict[str, str]
    created_at_ms: int
    status: str

    def metric(self, name: str) -> float | None:
        value = self.tags.get(METRIC_TAG_PREFIX + name)
        return float(value) if value is not None else None


def decide_promotion(
    candidate_score: float,
    champion_score: float | None,
    min_improvement: float = 0.0,
    champion_version: str | None = None,
    floor_failures: Sequence[str] = (),
) -> PromotionDecision:
    """Promote when the candidate clears the quality floors (`floor_failures` is empty, see quality_gate) and
    there is no champion, or its F1 beats the champion's by more than the margin.

    Both scores must come from the same held-out split: the caller re-scores the champion on it.
    """
    if min_improvement < 0:
        raise ValueError(f"min_improvement must be >= 0, got {min_improvement}")
    if floor_failures:
        # Absolute before relative: beating a champion scored on the same 10 reviews proves nothing.
        reason = f"below the quality floors: {'; '.join(floor_failures)}"
        return PromotionDecision(False, reason, candidate_score, champion_score, champion_version)
    if champion_score is None:
        return PromotionDecision(True, "no champion yet", candidate_score, None, None)
    gain = candidate_score - champion_score
    if gain > min_improvement:
        reason = (
            f"F1 {candidate_score:.4f} beats champion v{champion_version} ({champion_score:.4f}) by {gain:+.4f},"
            f" more than the required {min_improvement:.4f}"
        )
        return PromotionDecision(True, reason, candidate_score, champion_score, champion_version)
    reason = (
        f"F1 {candidate_score:.4f} vs champion v{champion_version} ({champion_score:.4f}): gain {gain:+.4f}"
        f" is not more than the required {min_improvement:.4f}"
    )
    return PromotionDecision(False, reason, candidate_score, champion_score, champion_version)


def git_commit(cwd: Path | None = None) -> str:
    """The commit the code runs from: $GIT_COMMIT (images have no .git), else `git rev-parse`, else 'unknown'."""
    if os.environ.get("GIT_COMMIT"):
        return os.environ["GIT_COMMIT"]
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=5, check=True
        )
        return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def dvc_data_hash(data_path: Path) -> str | None:
    """The md5 DVC recorded for a data file (from `<file>.dvc` or dvc.lock), when DVC tracks it."""
    dvc_file = data_path.with_name(data_path.name + ".dvc")
    if dvc_file.is_file():
        outs = (yaml.safe_load(dvc_file.read_text()) or {}).get("outs") or []
        return str(outs[0]["md5"]) if outs and "md5" in outs[0] else None
    for parent in [data_path.parent, *data_path.parent.parents]:
        lock = parent / "dvc.lock"
        if lock.is_file():
            stages = (yaml.safe_load(lock.read_text()) or {}).get("stages") or {}
            for stage in stages.values():
                for out in stage.get("outs") or []:
                    if (parent / out.get("path", "")).resolve() == data_path.resolve() and "md5" in out:
                        return str(out["md5"])
            return None
    return None


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def pip_requirements() -> list[str]:
    """Explicit requirements for the logged model: inference needs these, not the trainer's tools."""
    return [
        f"scikit-learn=={sklearn.__version__}",
        f"skops=={skops.__version__}",
        f"pandas=={pd.__version__}",
        f"mlflow-skinny=={mlflow.__version__}",
    ]


def is_not_found(error: MlflowException) -> bool:
    """True when MLflow says the model, version or alias asked for does not exist."""
    return error.error_code in _NOT_FOUND_CODES


def client(tracking_uri: str) -> MlflowClient:
    """A client bound to `tracking_uri` (the registry lives on the same server); leaves MLflow's globals alone."""
    return MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)


@contextmanager
def _fluent_tracking(tracking_uri: str) -> Iterator[None]:
    """Point MLflow's fluent API at `tracking_uri` for one block, then put back what was there.

    Only for what MLflow 3 offers no explicit form of: `mlflow.sklearn.log_model` logs into the active run and
    creates its LoggedModel through the process-wide tracking URI (it takes no client or URI). Everything else here
    goes through an `MlflowClient` bound to its URI.
    """
    previous = mlflow.get_tracking_uri() if mlflow.tracking.is_tracking_uri_set() else None
    mlflow.set_tracking_uri(tracking_uri)
    try:
        yield
    finally:
        # None unsets it again (and MLFLOW_TRACKING_URI, which set_tracking_uri exports for subprocesses).
        mlflow.set_tracking_uri(previous)  # type: ignore[arg-type]


def log_training_run(
    *,
    tracking_uri: str,
    experiment_name: str,
    pipeline: Pipeline,
    params: dict[str, Any],
    report: EvaluationReport,
    summary: DatasetSummary,
    lineage: Lineage,
    input_example: Sequence[str],
    extra_artifacts: Sequence[Path] = (),
    drift_reference: DriftReference | None = None,
) -> LoggedModel:
    """One MLflow run: params, metrics, lineage tags, report artifacts and the skops model. Returns its URI."""
    experiment_id = _experiment_id(client(tracking_uri), experiment_name)
    with _fluent_tracking(tracking_uri), mlflow.start_run(experiment_id=experiment_id) as run:
        mlflow.log_params({key: str(value) for key, value in params.items()})
        mlflow.log_metrics(report.metrics())
        mlflow.set_tags(lineage.tags())
        mlflow.log_text(report.classification_report, "classification_report.txt")
        mlflow.log_dict(report.to_dict(), "evaluation.json")
        mlflow.log_dict(summary.to_dict(), "dataset_summary.json")
        for artifact in extra_artifacts:
            mlflow.log_artifact(str(artifact))
        if drift_reference is not None:
            # A run artifact: the inference service reads it with the version's run id (sentiment_core.drift).
            mlflow.log_dict(drift_reference.to_dict(), DRIFT_REFERENCE_ARTIFACT)
        example = pd.DataFrame({"text": list(input_example)})
        model_info = mlflow.sklearn.log_model(
            pipeline,
            name=MODEL_ARTIFACT_PATH,
            serialization_format="skops",
            skops_trusted_types=TRUSTED_TYPES,
            signature=infer_signature(example, pipeline.predict(example)),
            input_example=example,
            pip_requirements=pip_requirements(),
            # The custom TextCleaner travels with the model, so pyfunc / `mlflow models serve` can load it anywhere.
            code_paths=[str(Path(sentiment_core.__file__).parent)],
        )
        # Hash what the store really holds (read back through the server): the API checks it before serving.
        with tempfile.TemporaryDirectory() as scratch:
            local = Path(
                mlflow.artifacts.download_artifacts(
                    artifact_uri=model_info.model_uri, dst_path=scratch, tracking_uri=tracking_uri
                )
            )
            digest = sha256_file(local / MODEL_FILE)
        return LoggedModel(
            run_id=run.info.run_id, model_uri=model_info.model_uri, sha256=digest, model_id=model_info.model_id
        )


def _experiment_id(mlflow_client: MlflowClient, name: str) -> str:
    found = mlflow_client.get_experiment_by_name(name)
    if found is not None:
        return str(found.experiment_id)
    try:
        return str(mlflow_client.create_experiment(name))
    except MlflowException as error:
        if error.error_code != "RESOURCE_ALREADY_EXISTS":
            raise
    # Another run created it between our two calls.
    return str(mlflow_client.get_experiment_by_name(name).experiment_id)  # type: ignore[union-attr]


def register_version(
    mlflow_client: MlflowClient,
    model_name: str,
    logged: LoggedModel,
    report: EvaluationReport,
    lineage: Lineage,
) -> ModelVersion:
    """Register the logged model as a new version, tagged with its metrics, lineage and artifact hash."""
    try:
        mlflow_client.create_registered_model(model_name)
    except MlflowException as error:
        if error.error_code != "RESOURCE_ALREADY_EXISTS":
            raise
    # Tags travel with the registration request: one call instead of one per tag.
    return mlflow_client.create_model_version(
        model_name,
        source=logged.model_uri,
        run_id=logged.run_id,
        tags=version_tags(logged, report, lineage),
        await_creation_for=120,
        model_id=logged.model_id,
    )


def version_tags(logged: LoggedModel, report: EvaluationReport, lineage: Lineage) -> dict[str, str]:
    """What a registered version carries: lineage, the artifact's hash (checked before serving) and metrics."""
    return {
        **lineage.tags(),
        TAG_MODEL_SHA256: logged.sha256,
        **{METRIC_TAG_PREFIX + name: f"{value:.6f}" for name, value in report.metrics().items()},
        # What the quality gate reads back before this version may hold `champion` or serve.
        **HeldOutEvidence.from_report(report).tags(),
    }


def tag_version(mlflow_client: MlflowClient, model_name: str, version: str, tags: dict[str, str]) -> None:
    for key, value in tags.items():
        mlflow_client.set_model_version_tag(model_name, version, key, value)


def alias_version(mlflow_client: MlflowClient, model_name: str, alias: str) -> ModelVersion | None:
    """The version holding `alias`, or None when the alias (or the model) does not exist yet."""
    try:
        return mlflow_client.get_model_version_by_alias(model_name, alias)
    except MlflowException as error:
        if is_not_found(error):
            return None
        raise


def get_version(mlflow_client: MlflowClient, model_name: str, version: str) -> ModelVersion:
    try:
        return mlflow_client.get_model_version(model_name, version)
    except MlflowException as error:
        if is_not_found(error):
            raise RegistryError(f"model '{model_name}' has no version {version}") from None
        raise


def champion_history(mlflow_client: MlflowClient, model_name: str) -> list[str]:
    model = mlflow_client.get_registered_model(model_name)
    raw = model.tags.get(TAG_CHAMPION_HISTORY, "")
    return [version for version in raw.split(",") if version]


def check_servable(mlflow_client: MlflowClient, model_name: str, version: str, floors: QualityFloors) -> float | None:
    """What the API checks before serving, run here: the artifact exists, matches its recorded sha256 and loads
    safely, and the model clears the quality floors. Raises UnservableVersionError; returns the canary accuracy."""
    tags = dict(get_version(mlflow_client, model_name, version).tags or {})
    with tempfile.TemporaryDirectory() as scratch:
        try:
            model_file = download_version(mlflow_client, model_name, version, Path(scratch))
        except RegistryError as error:
            raise UnservableVersionError(model_name, version, f"missing artifact ({error})") from None
        except MlflowException as error:
            raise UnservableVersionError(model_name, version, f"cannot download its artifact ({error})") from None
        try:
            verify_artifact(model_file, tags.get(TAG_MODEL_SHA256), f"version {version}")
        except RegistryError as error:
            raise UnservableVersionError(model_name, version, str(error)) from None
        try:
            pipeline = load_pipeline(model_file)
        except Exception as error:
            raise UnservableVersionError(model_name, version, f"cannot be loaded safely ({error})") from None
    try:
        return quality_gate.check(f"version {version}", HeldOutEvidence.from_tags(tags), pipeline, floors)
    except QualityGateError as error:
        raise UnservableVersionError(model_name, version, f"below the quality floors: {error.reason}") from None


# A registered model of this name exists while someone holds the promotion lock of `<model>` (see promotion_lock).
PROMOTION_LOCK_SUFFIX = ".promotion-lock"
_LOCK_ID = "lock.id"
_LOCK_HOLDER = "lock.holder"
_LOCK_SINCE = "lock.acquired_at"


@contextmanager
def promotion_lock(
    mlflow_client: MlflowClient,
    model_name: str,
    *,
    timeout: float = 900.0,
    stale_after: float = 900.0,
    poll_seconds: float = 0.5,
) -> Iterator[None]:
    """Hold the registry-wide lock on `model_name`'s aliases: read the champion, compare, move aliases, rewrite
    `champion.history`, with no other run or command doing the same meanwhile.

    Why in the registry: every writer already talks to it (the k8s deployment's runs, CLI runs with or without a
    Prefect server, set-alias, rollback); a Prefect concurrency limit would miss CLI runs on an ephemeral Prefect.
    The lock is the existence of the registered model `<model_name>.promotion-lock`: creating a name that exists
    fails atomically in MLflow's store (unique key), and deleting it releases. A holder that died leaves it: after
    `stale_after` seconds a waiter takes it over (the section takes seconds; the default leaves a wide margin).
    """
    name = model_name + PROMOTION_LOCK_SUFFIX
    token = uuid.uuid4().hex
    holder = f"{socket.gethostname()} pid {os.getpid()}"
    deadline = time.monotonic() + timeout
    while True:
        try:
            mlflow_client.create_registered_model(
                name,
                tags={_LOCK_ID: token, _LOCK_HOLDER: holder, _LOCK_SINCE: f"{time.time():.3f}"},
                description=(
                    f"Lock: held while a run or command moves aliases of '{model_name}'. Deleted when it is done;"
                    f" one older than {stale_after:.0f}s is taken over as stale."
                ),
            )
            break
        except MlflowException as error:
            if error.error_code != "RESOURCE_ALREADY_EXISTS":
                raise
        _take_over_if_stale(mlflow_client, name, stale_after)
        if time.monotonic() >= deadline:
            raise RegistryError(
                f"another run is promoting '{model_name}' (registered model '{name}' exists) and did not finish"
                f" within {timeout:.0f}s; if no run is active, delete '{name}' in MLflow"
            )
        time.sleep(poll_seconds)
    try:
        yield
    finally:
        _release(mlflow_client, name, token)


def _take_over_if_stale(mlflow_client: MlflowClient, name: str, stale_after: float) -> None:
    try:
        tags = mlflow_client.get_registered_model(name).tags or {}
    except MlflowException:
        return  # released meanwhile: the next attempt creates it
    try:
        since = float(tags.get(_LOCK_SINCE, "nan"))
    except ValueError:
        since = math.nan
    # An unreadable timestamp counts as stale: a lock nobody can date would block forever.
    if math.isnan(since) or time.time() - since > stale_after:
        with contextlib.suppress(MlflowException):
            mlflow_client.delete_registered_model(name)


def _release(mlflow_client: MlflowClient, name: str, token: str) -> None:
    # Only our own: if ours was taken over as stale, the name now belongs to another holder.
    with contextlib.suppress(MlflowException):
        if (mlflow_client.get_registered_model(name).tags or {}).get(_LOCK_ID) == token:
            mlflow_client.delete_registered_model(name)


def set_alias(
    mlflow_client: MlflowClient,
    model_name: str,
    alias: str,
    version: str,
    floors: QualityFloors | None = None,
) -> None:
    """Point `alias` at `version`. Moves of `champion` are appended to the history that rollback reads.

    With `floors`, `champion` moves only to a servable version (`check_servable`); without, no check (--force).
    """
    get_version(mlflow_client, model_name, version)
    if alias == CHAMPION_ALIAS and floors is not None:
        check_servable(mlflow_client, model_name, version, floors)
    mlflow_client.set_registered_model_alias(model_name, alias, version)
    if alias == CHAMPION_ALIAS:
        history = champion_history(mlflow_client, model_name)
        if not history or history[-1] != version:
            history.append(version)
        mlflow_client.set_registered_model_tag(model_name, TAG_CHAMPION_HISTORY, ",".join(history))


def promote(
    mlflow_client: MlflowClient,
    model_name: str,
    version: str,
    decision: PromotionDecision,
    floors: QualityFloors | None = None,
) -> PromotionDecision:
    """Record the decision on the version; move `champion` when promoted, else mark it `challenger`.

    With `floors`, a promotion is checked once more against the held-out evidence the version records (what the
    API reads) and turned into "not promoted" if it falls short. Returns the decision applied.
    """
    if decision.promote and floors is not None:
        tags = dict(get_version(mlflow_client, model_name, version).tags or {})
        failures = held_out_failures(HeldOutEvidence.from_tags(tags), floors)
        if failures:
            decision = replace(decision, promote=False, reason=f"below the quality floors: {'; '.join(failures)}")
    tag_version(mlflow_client, model_name, version, decision.tags())
    set_alias(mlflow_client, model_name, CHAMPION_ALIAS if decision.promote else CHALLENGER_ALIAS, version)
    return decision


def rollback_champion(
    mlflow_client: MlflowClient, model_name: str, floors: QualityFloors | None = None
) -> tuple[str, str]:
    """Move `champion` back to the version that held it before. Returns (from_version, to_version).

    With `floors`, the target must be servable (`check_servable`), else UnservableVersionError and nothing moves.
    """
    current = alias_version(mlflow_client, model_name, CHAMPION_ALIAS)
    if current is None:
        raise RegistryError(f"model '{model_name}' has no champion to roll back")
    history = champion_history(mlflow_client, model_name)
    # Drop trailing entries equal to the current champion, then the previous distinct one is the target.
    while history and history[-1] == current.version:
        history.pop()
    if not history:
        raise RegistryError(f"model '{model_name}': no earlier champion than v{current.version} to roll back to")
    target = history[-1]
    if floors is not None:
        check_servable(mlflow_client, model_name, target, floors)
    mlflow_client.set_registered_model_alias(model_name, CHAMPION_ALIAS, target)
    mlflow_client.set_registered_model_tag(model_name, TAG_CHAMPION_HISTORY, ",".join(history))
    return current.version, target


def list_versions(mlflow_client: MlflowClient, model_name: str) -> list[VersionInfo]:
    """Every version, newest first, with the aliases it holds."""
    try:
        model = mlflow_client.get_registered_model(model_name)
    except MlflowException as error:
        if is_not_found(error):
            raise RegistryError(f"no registered model named '{model_name}'") from None
        raise
    aliases: dict[str, list[str]] = {}
    for alias, version in (model.aliases or {}).items():
        aliases.setdefault(str(version), []).append(alias)
    versions = mlflow_client.search_model_versions(f"name='{model_name}'")
    infos = [
        VersionInfo(
            version=str(v.version),
            run_id=v.run_id,
            aliases=tuple(sorted(aliases.get(str(v.version), []))),
            tags=dict(v.tags or {}),
            created_at_ms=int(v.creation_timestamp or 0),
            status=str(v.status),
        )
        for v in versions
    ]
    return sorted(infos, key=lambda info: int(info.version), reverse=True)


def load_drift_reference(mlflow_client: MlflowClient, run_id: str) -> DriftReference | None:
    """The run's drift reference profile; None when the run has none (logged before profiles existed).

    Raises DriftReferenceError for a profile that exists but cannot be read, MlflowException when MLflow fails.
    """
    names = {info.path for info in mlflow_client.list_artifacts(run_id)}
    if DRIFT_REFERENCE_ARTIFACT not in names:
        return None
    with tempfile.TemporaryDirectory() as scratch:
        local = Path(mlflow_client.download_artifacts(run_id, DRIFT_REFERENCE_ARTIFACT, scratch))
        try:
            raw = json.loads(local.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise DriftReferenceError(f"run {run_id}: {DRIFT_REFERENCE_ARTIFACT} is not JSON ({error})") from None
    return DriftReference.from_dict(raw)


def download_version(mlflow_client: MlflowClient, model_name: str, version: str, dst: Path) -> Path:
    """Download the pinned version (never the alias) and return the path of its skops file."""
    # Resolved through the client: a models:/ URI would be resolved through MLflow's global registry URI.
    source = mlflow_client.get_model_version_download_uri(model_name, version)
    local = Path(
        mlflow.artifacts.download_artifacts(
            artifact_uri=source, dst_path=str(dst), tracking_uri=mlflow_client.tracking_uri
        )
    )
    model_file = local / MODEL_FILE
    if not model_file.is_file():
        raise RegistryError(f"version {version} of '{model_name}' has no {MODEL_FILE}; was it logged by this project?")
    return model_file


def load_version(mlflow_client: MlflowClient, model_name: str, version: str) -> Pipeline:
    """Download, verify against the recorded hash (when there is one) and safely load a pinned version."""
    recorded = get_version(mlflow_client, model_name, version).tags.get(TAG_MODEL_SHA256)
    with tempfile.TemporaryDirectory() as scratch:
        model_file = download_version(mlflow_client, model_name, version, Path(scratch))
        verify_artifact(model_file, recorded, f"version {version} of '{model_name}'")
        return load_pipeline(model_file)


def verify_artifact(model_file: Path, recorded_sha256: str | None, what: str) -> None:
    """Refuse a downloaded model file whose sha256 differs from the one recorded at registration (if any)."""
    if not recorded_sha256:
        return
    actual = sha256_file(model_file)
    if actual != recorded_sha256:
        raise RegistryError(
            f"{what}: artifact hash differs from the registry's {TAG_MODEL_SHA256} tag"
            f" (sha256 {actual[:12]}… vs recorded {recorded_sha256[:12]}…)"
        )
