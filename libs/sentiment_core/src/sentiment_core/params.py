"""`params.yaml`: every data, model and promotion parameter, typed, with `key=value` overrides."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from sentiment_core.model import ModelConfig
from sentiment_core.quality_gate import QualityFloors
from sentiment_core.settings import DEFAULT_EXPERIMENT_NAME, DEFAULT_MODEL_NAME


@dataclass(frozen=True)
class DataParams:
    # Where `prepare` writes the dataset and where training reads it.
    path: str = "data/reviews.csv.gz"
    # The independent test file (official test split: other films). Training looks for a file of this name next to
    # the dataset it reads, so wherever the dataset lives (a volume, a PVC, $DATA_PATH) the test file comes along.
    test_path: str = "data/test.csv.gz"
    # Rows of the official test split `prepare` keeps (stratified); 0 keeps all 25,000.
    test_sample_size: int = 5000
    # Rows `prepare` keeps (stratified); 0 keeps every row.
    sample_size: int = 0
    test_size: float = 0.2
    seed: int = 42

    def __post_init__(self) -> None:
        # Checked when the run config is read, before any training (sklearn would fail later, naming nothing).
        if not str(self.path).strip():
            raise ValueError("data.path must not be empty")
        if self.sample_size < 0:
            raise ValueError(f"data.sample_size must be >= 0 (0 keeps every row), got {self.sample_size}")
        if not math.isfinite(self.test_size) or not 0.0 < self.test_size < 1.0:
            raise ValueError(f"data.test_size must be between 0 and 1 (exclusive), got {self.test_size}")
        if not 0 <= self.seed < 2**32:
            raise ValueError(f"data.seed must be between 0 and 2**32 - 1, got {self.seed}")


@dataclass(frozen=True)
class PromotionParams:
    # The candidate must beat the champion's F1, both scored on the same held-out split, by more than this.
    min_improvement: float = 0.0
    # Absolute floors (sentiment_core.quality_gate): a candidate below any of them is never promoted.
    min_held_out: int = QualityFloors.min_held_out
    min_accuracy: float = QualityFloors.min_accuracy
    min_f1: float = QualityFloors.min_f1
    min_canary_accuracy: float = QualityFloors.min_canary_accuracy

    def __post_init__(self) -> None:
        if not math.isfinite(self.min_improvement) or self.min_improvement < 0:
            raise ValueError(f"promotion.min_improvement must be a number >= 0, got {self.min_improvement}")
        try:
            self.floors()
        except ValueError as error:
            raise ValueError(f"promotion.{error}") from None

    def floors(self) -> QualityFloors:
        return QualityFloors(
            min_held_out=self.min_held_out,
            min_accuracy=self.min_accuracy,
            min_f1=self.min_f1,
            min_canary_accuracy=self.min_canary_accuracy,
        )


@dataclass(frozen=True)
class TrainingParams:
    data: DataParams = field(default_factory=DataParams)
    model: ModelConfig = field(default_factory=ModelConfig)
    promotion: PromotionParams = field(default_factory=PromotionParams)
    experiment_name: str = DEFAULT_EXPERIMENT_NAME
    model_name: str = DEFAULT_MODEL_NAME

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def flat(self) -> dict[str, Any]:
        """`data.seed`-style keys, as MLflow params."""
        flat: dict[str, Any] = {}
        for section in ("data", "model", "promotion"):
            for key, value in asdict(getattr(self, section)).items():
                flat[f"{section}.{key}"] = value
        return flat


def load_params(path: str | Path | None = None, overrides: dict[str, str] | None = None) -> TrainingParams:
    """Read params.yaml (or the defaults when path is None) and apply `section.key=value` overrides."""
    raw: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ValueError(f"params file not found: {path}")
        loaded = yaml.safe_load(path.read_text()) or {}
        if not isinstance(loaded, dict):
            raise ValueError(f"{path}: expected a mapping at the top level")
        raw = loaded
    unknown = sorted(set(raw) - {"data", "model", "promotion", "mlflow"})
    if unknown:
        raise ValueError(f"unknown section(s) in params: {', '.join(unknown)}")
    sections: dict[str, dict[str, Any]] = {
        name: dict(raw.get(name) or {}) for name in ("data", "model", "promotion", "mlflow")
    }
    for key, value in (overrides or {}).items():
        section, _, name = key.partition(".")
        if not name:
            # A bare name is a model hyper-parameter: `--param C=4` is the common case.
            section, name = "model", key
        if section not in sections:
            raise ValueError(f"unknown parameter section in override {key!r}; use data., model. or promotion.")
        sections[section][name] = value
    return TrainingParams(
        data=_dataclass_from(DataParams, sections["data"], "data"),
        model=ModelConfig.from_mapping(sections["model"]),
        promotion=_dataclass_from(PromotionParams, sections["promotion"], "promotion"),
        experiment_name=str(sections["mlflow"].get("experiment_name", DEFAULT_EXPERIMENT_NAME)),
        model_name=str(sections["mlflow"].get("model_name", DEFAULT_MODEL_NAME)),
    )


def _dataclass_from(kind: type, values: dict[str, Any], section: str) -> Any:
    defaults = kind()
    unknown = sorted(set(values) - set(asdict(defaults)))
    if unknown:
        raise ValueError(f"unknown {section} parameter(s): {', '.join(unknown)}")
    coerced: dict[str, Any] = {}
    for name, value in values.items():
        expected = type(getattr(defaults, name))
        try:
            coerced[name] = expected(value)
        except (TypeError, ValueError):
            raise ValueError(f"{section}.{name} must be {expected.__name__}, got {value!r}") from None
    return replace(defaults, **coerced)
