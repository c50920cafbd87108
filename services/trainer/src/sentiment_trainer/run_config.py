"""One training run's configuration: params.yaml, per-run overrides and environment, resolved once, typed."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sentiment_core.params import TrainingParams, load_params
from sentiment_trainer.settings import TrainerSettings

PARAMS_FILE_NAME = "params.yaml"

# What determines the fitted model given the data. The data's identity is the dataset fingerprint; `data.path`
# (a location) and `data.sample_size` (read by `prepare`, not by training) would only make equal models differ.
_HASHED_DATA_KEYS = ("data.test_size", "data.seed")


def find_params_file(start: Path) -> Path | None:
    """params.yaml in `start` or the nearest parent: the repo root's file from services/trainer, none in an image."""
    for directory in (start, *start.parents):
        candidate = directory / PARAMS_FILE_NAME
        if candidate.is_file():
            return candidate
    return None


def parse_overrides(pairs: Sequence[str]) -> dict[str, str]:
    """`key=value` strings from the command line -> a mapping (`C=4`, `model.C=4`, `data.seed=7`)."""
    overrides: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--param expects key=value, got {pair!r}")
        overrides[key.strip()] = value.strip()
    return overrides


@dataclass(frozen=True)
class RunConfig:
    params: TrainingParams
    params_file: Path | None
    data_path: Path
    # The independent test file (other films); used only when it exists (see `resolve_run_config`).
    test_path: Path
    experiment_name: str
    model_name: str
    set_champion: bool
    tracking_uri: str

    def mlflow_params(self) -> dict[str, Any]:
        """Every parameter of the run, as MLflow params (the effective data path, not the one in the file)."""
        return {
            **self.params.flat(),
            "data.path": str(self.data_path),
            "data.test_path": str(self.test_path),
            "data.params_file": str(self.params_file) if self.params_file else "(library defaults)",
            "promotion.set_champion": self.set_champion,
            "mlflow.experiment_name": self.experiment_name,
            "mlflow.model_name": self.model_name,
        }

    def params_hash(self) -> str:
        """Lineage hash of what shapes the model: data split settings and every model hyper-parameter."""
        flat = self.params.flat()
        hashed = {key: flat[key] for key in _HASHED_DATA_KEYS}
        hashed.update({key: value for key, value in flat.items() if key.startswith("model.")})
        return hashlib.sha256(json.dumps(hashed, sort_keys=True, default=str).encode()).hexdigest()[:16]


def resolve_run_config(
    *,
    settings: TrainerSettings,
    data_path: str | Path | None = None,
    params_file: str | Path | None = None,
    overrides: Mapping[str, Any] | None = None,
    test_path: str | Path | None = None,
    set_champion: bool = False,
    experiment_name: str | None = None,
    model_name: str | None = None,
    cwd: Path | None = None,
) -> RunConfig:
    """Precedence: explicit argument > environment (PARAMS_FILE, DATA_PATH, MODEL_NAME...) > params.yaml > defaults."""
    cwd = (cwd or Path.cwd()).resolve()
    source: Path | None
    if params_file is not None:
        source = _absolute(Path(params_file), cwd)
        if not source.is_file():
            raise ValueError(f"params file not found: {source}")
    elif settings.params_file is not None:
        source = _absolute(settings.params_file, cwd)
        if not source.is_file():
            raise ValueError(f"params file not found: {source} (from PARAMS_FILE)")
    else:
        source = find_params_file(cwd)
    params = load_params(source, {key: str(value) for key, value in (overrides or {}).items()})

    if data_path is not None:
        data = _absolute(Path(data_path), cwd)
    elif settings.data_path is not None:
        data = _absolute(settings.data_path, cwd)
    else:
        # A relative data.path is relative to params.yaml (the repo root, as DVC sees it), not to wherever we run.
        data = _absolute(Path(params.data.path), source.parent if source else cwd)
    if test_path is not None:
        test = _absolute(Path(test_path), cwd)
    elif settings.data_test_path is not None:
        test = _absolute(settings.data_test_path, cwd)
    else:
        # Beside the dataset, whatever moved it (DATA_PATH, a volume, a PVC): the two files travel together.
        test = data.parent / Path(params.data.test_path).name

    if experiment_name is None:
        experiment_name = (
            settings.experiment_name if settings.from_environment("experiment_name") else params.experiment_name
        )
    if model_name is None:
        model_name = settings.model_name if settings.from_environment("model_name") else params.model_name
    if not experiment_name.strip() or not model_name.strip():
        raise ValueError("experiment and model names must not be empty")
    return RunConfig(
        params=params,
        params_file=source,
        data_path=data,
        test_path=test,
        experiment_name=experiment_name,
        model_name=model_name,
        set_champion=set_champion,
        tracking_uri=settings.tracking_uri,
    )


def _absolute(path: Path, base: Path) -> Path:
    path = path.expanduser()
    return path if path.is_absolute() else (base / path).resolve()
