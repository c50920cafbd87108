"""Logging for the service and uvicorn: human text or one JSON object per line (LOG_FORMAT=json)."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

from sentiment_inference.settings import Settings

# Attributes every LogRecord has; anything else was passed with `extra=` and belongs in the JSON line.
_STANDARD = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime", "color_message"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value if isinstance(value, str | int | float | bool | None) else repr(value)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def log_config(settings: Settings) -> dict[str, Any]:
    """A dictConfig for the root logger and uvicorn's loggers (pass it to uvicorn.run as log_config)."""
    formatter: dict[str, Any]
    if settings.log_format == "json":
        formatter = {"()": f"{__name__}.JsonFormatter"}
    else:
        formatter = {"format": "%(asctime)s %(levelname)-7s %(name)s: %(message)s"}
    handler = {"class": "logging.StreamHandler", "formatter": "default", "stream": "ext://sys.stderr"}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"default": formatter},
        "handlers": {"default": handler},
        "root": {"handlers": ["default"], "level": settings.log_level},
        "loggers": {
            "uvicorn": {"level": settings.log_level, "handlers": [], "propagate": True},
            "uvicorn.error": {"level": settings.log_level, "handlers": [], "propagate": True},
            "uvicorn.access": {"level": settings.log_level, "handlers": [], "propagate": True},
            # MLflow and urllib3 log every retry; the poller already reports failures once per streak.
            "mlflow": {"level": "WARNING"},
            "urllib3": {"level": "ERROR"},
        },
    }


def configure_logging(settings: Settings) -> None:
    import logging.config

    logging.config.dictConfig(log_config(settings))
