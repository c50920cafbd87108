"""sentiment_core: the ML library shared by the trainer and the inference service.

Names are imported on first use (PEP 562), so `import sentiment_core.settings` does not pay for pandas and
scikit-learn. The MLflow helpers live in `sentiment_core.registry`.
"""

from __future__ import annotations

import importlib
from typing import Any

# Public name -> the module that defines it.
_EXPORTS: dict[str, str] = {
    "DatasetError": "data",
    "DatasetSplit": "data",
    "DatasetSummary": "data",
    "deduplicate": "data",
    "fingerprint": "data",
    "load_dataset": "data",
    "sample_stratified": "data",
    "split_dataset": "data",
    "summarize": "data",
    "validate_dataset": "data",
    "EvaluationReport": "evaluation",
    "evaluate": "evaluation",
    "LABELS": "model",
    "TRUSTED_TYPES": "model",
    "ModelConfig": "model",
    "build_pipeline": "model",
    "load_pipeline": "model",
    "save_pipeline": "model",
    "DataParams": "params",
    "PromotionParams": "params",
    "TrainingParams": "params",
    "load_params": "params",
    "CHALLENGER_ALIAS": "settings",
    "CHAMPION_ALIAS": "settings",
    "DEFAULT_EXPERIMENT_NAME": "settings",
    "DEFAULT_MODEL_NAME": "settings",
    "MlflowSettings": "settings",
    "S3Settings": "settings",
    "TextCleaner": "text",
    "clean_text": "text",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'sentiment_core' has no attribute {name!r}")
    return getattr(importlib.import_module(f"sentiment_core.{module}"), name)


def __dir__() -> list[str]:
    return __all__
