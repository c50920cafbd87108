"""MLflow's HTTP client options, set in one place for every service (MLflow reads them from the environment)."""

from __future__ import annotations

import os


def apply_mlflow_client_options(
    *, timeout_seconds: float, max_retries: int, backoff_factor: float | None = None
) -> None:
    """Set how long MLflow's HTTP client waits and how often it retries, and keep it quiet.

    MLflow takes these only from environment variables, read at call time. Defaults only: an operator's
    MLFLOW_HTTP_REQUEST_* wins. Importing this module does not import MLflow (the API listens before that cost).
    """
    defaults = {
        "MLFLOW_HTTP_REQUEST_TIMEOUT": f"{timeout_seconds:g}",
        "MLFLOW_HTTP_REQUEST_MAX_RETRIES": str(max_retries),
        "MLFLOW_DISABLE_TELEMETRY": "true",
        # tqdm bars ("Downloading artifacts: 100%|...") would break JSON log lines.
        "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
        # Artifacts come through the tracking server, never straight from S3: a server with an S3 destination
        # otherwise hands MLflow 3.17's client presigned S3 URLs (multipart download), which a client outside the
        # cluster's network (a laptop through `make port-forward`, a CI job) cannot reach. The contract: clients
        # need only MLFLOW_TRACKING_URI.
        "MLFLOW_ENABLE_PROXY_MULTIPART_DOWNLOAD": "false",
    }
    if backoff_factor is not None:  # else MLflow's own default
        defaults["MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR"] = f"{backoff_factor:g}"
    for key, value in defaults.items():
        os.environ.setdefault(key, value)
