"""MLflow's HTTP client options: one function both services call with their own values."""

from __future__ import annotations

import os

import pytest

from sentiment_core.mlflow_client_options import apply_mlflow_client_options

_NAMES = (
    "MLFLOW_HTTP_REQUEST_TIMEOUT",
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR",
    "MLFLOW_DISABLE_TELEMETRY",
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR",
    "MLFLOW_ENABLE_PROXY_MULTIPART_DOWNLOAD",
)


@pytest.fixture(autouse=True)
def _clean(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in _NAMES:
        monkeypatch.delenv(name, raising=False)


def test_sets_the_callers_values_and_keeps_mlflow_quiet() -> None:
    apply_mlflow_client_options(timeout_seconds=10, max_retries=0)
    assert os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] == "10"
    assert os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] == "0"
    assert "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR" not in os.environ  # MLflow's default unless asked
    assert os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] == "false"
    assert os.environ["MLFLOW_DISABLE_TELEMETRY"] == "true"
    # Artifacts through the tracking server, never presigned S3 URLs a client outside the cluster cannot reach.
    assert os.environ["MLFLOW_ENABLE_PROXY_MULTIPART_DOWNLOAD"] == "false"


def test_an_operators_value_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "300")
    apply_mlflow_client_options(timeout_seconds=2.5, max_retries=1, backoff_factor=1.0)
    assert os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] == "300"
    assert os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] == "1"
    assert os.environ["MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR"] == "1"
