"""sentiment_core: the ML library shared by the trainer and the inference service.

The MLflow helpers live in `sentiment_core.registry` (imported on demand so the rest stays light).
"""

from sentiment_core.data import (
    DatasetError,
    DatasetSplit,
    DatasetSummary,
    deduplicate,
    fingerprint,
    load_dataset,
    sample_stratified,
    split_dataset,
    summarize,
    validate_dataset,
)
from sentiment_core.evaluation import EvaluationReport, evaluate
from sentiment_core.model import (
    LABELS,
    TRUSTED_TYPES,
    ModelConfig,
    build_pipeline,
    load_pipeline,
    save_pipeline,
)
from sentiment_core.params import DataParams, PromotionParams, TrainingParams, load_params
from sentiment_core.settings import (
    CHALLENGER_ALIAS,
    CHAMPION_ALIAS,
    DEFAULT_EXPERIMENT_NAME,
    DEFAULT_MODEL_NAME,
    MlflowSettings,
    S3Settings,
)
from sentiment_core.text import TextCleaner, clean_text

__all__ = [
    "CHALLENGER_ALIAS",
    "CHAMPION_ALIAS",
    "DEFAULT_EXPERIMENT_NAME",
    "DEFAULT_MODEL_NAME",
    "LABELS",
    "TRUSTED_TYPES",
    "DataParams",
    "DatasetError",
    "DatasetSplit",
    "DatasetSummary",
    "EvaluationReport",
    "MlflowSettings",
    "ModelConfig",
    "PromotionParams",
    "S3Settings",
    "TextCleaner",
    "TrainingParams",
    "build_pipeline",
    "clean_text",
    "deduplicate",
    "evaluate",
    "fingerprint",
    "load_dataset",
    "load_params",
    "load_pipeline",
    "sample_stratified",
    "save_pipeline",
    "split_dataset",
    "summarize",
    "validate_dataset",
]
