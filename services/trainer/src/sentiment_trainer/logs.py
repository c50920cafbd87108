"""LOG_LEVEL and LOG_FORMAT (text/json) for the trainer's logs, the library's, MLflow's and Prefect's console."""

from __future__ import annotations

import json
import logging
import os
from datetime import UTC, datetime

# Loggers whose level follows LOG_LEVEL. Prefect's own levels stay with PREFECT_LOGGING_LEVEL.
_OURS = ("sentiment_trainer", "sentiment_core")


class JsonLineFormatter(logging.Formatter):
    """One JSON object per line, with the Prefect run names when the record comes from a flow or task run."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, tz=UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in ("flow_run_name", "flow_run_id", "task_run_name", "task_run_id"):
            value = getattr(record, key, None)
            if value:
                entry[key] = str(value)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


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
