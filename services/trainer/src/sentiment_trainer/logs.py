"""LOG_LEVEL and LOG_FORMAT (text/json) for the trainer's logs, the library's, MLflow's and Prefect's console."""

from __future__ import annotations

import logging
import os

from sentiment_core.json_logs import JsonLineFormatter

# Loggers whose level follows LOG_LEVEL. Prefect's own levels stay with PREFECT_LOGGING_LEVEL.
_OURS = ("sentiment_trainer", "sentiment_core")


def configure_logging(level: str = "INFO", fmt: str = "text") -> None:
    """Apply LOG_LEVEL to our loggers; for LOG_FORMAT=json, switch every root handler (Prefect's console) to JSON."""
    for name in _OURS:
        logging.getLogger(name).setLevel(level)
    # MLflow's INFO lines (uv detection, "Created version") are noise next to the task logs; keep its warnings.
    # Only ever raised here: a caller that silenced MLflow further (the CLI's progress view) keeps it silent.
    mlflow_logger = logging.getLogger("mlflow")
    mlflow_logger.setLevel(max(logging.getLevelName(level), logging.WARNING, mlflow_logger.level))
    # tqdm bars from artifact downloads would be written into the run's log line by line.
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    if fmt == "json":
        formatter = JsonLineFormatter()
        root = logging.getLogger()
        if not root.handlers:
            root.addHandler(logging.StreamHandler())
        for handler in root.handlers:
            handler.setFormatter(formatter)
