"""Logging for the service and uvicorn: human text or one JSON object per line (LOG_FORMAT=json)."""

from __future__ import annotations

from typing import Any

from sentiment_core.json_logs import JsonLineFormatter
from sentiment_inference.settings import Settings


def log_config(settings: Settings) -> dict[str, Any]:
    """A dictConfig for the root logger and uvicorn's loggers (pass it to uvicorn.run as log_config)."""
    formatter: dict[str, Any]
    if settings.log_format == "json":
        formatter = {"()": f"{JsonLineFormatter.__module__}.{JsonLineFormatter.__qualname__}"}
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
