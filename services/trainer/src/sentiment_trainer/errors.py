"""Which failures are worth retrying, and how to say any failure in one human line."""

from __future__ import annotations

import errno
from typing import Any

from sentiment_core.errors import SentimentError

# MLflow error codes that describe the server's state rather than our request.
_TRANSIENT_MLFLOW_CODES = frozenset(
    {"TEMPORARILY_UNAVAILABLE", "INTERNAL_ERROR", "REQUEST_LIMIT_EXCEEDED", "ABORTED", "DEADLINE_EXCEEDED"}
)
# What MLflow's REST client says when the connection itself failed (it wraps the requests exception in text).
_CONNECTION_MARKERS = (
    "Max retries exceeded",
    "Connection refused",
    "ConnectionError",
    "Read timed out",
    "NewConnectionError",
    "RemoteDisconnected",
    "Temporary failure in name resolution",
    "Name or service not known",
)
_TRANSIENT_ERRNOS = frozenset({errno.ECONNREFUSED, errno.ECONNRESET, errno.ETIMEDOUT, errno.EAGAIN, errno.EIO})


class TrainerError(SentimentError, RuntimeError):
    """A failure whose message is already meant for a human (no traceback needed)."""


class UnreachableError(TrainerError):
    """A server (MLflow, Prefect) that does not answer."""


def is_transient(error: BaseException) -> bool:
    """True for network and server-side hiccups, false for bad data, bad parameters and missing objects."""
    from mlflow.exceptions import MlflowException

    if isinstance(error, TrainerError | ValueError | KeyError | TypeError):
        return False
    if isinstance(error, MlflowException):
        return error.error_code in _TRANSIENT_MLFLOW_CODES or is_connection_failure(error)
    # Before the OSError check: requests' exceptions are OSErrors without an errno.
    if isinstance(error, TimeoutError | ConnectionError) or _is_network_error(error):
        return True
    if isinstance(error, OSError):
        return error.errno in _TRANSIENT_ERRNOS
    return False


def is_connection_failure(error: BaseException) -> bool:
    """The request never got an answer: refused, reset, timed out, unresolvable host."""
    if isinstance(error, ConnectionError | TimeoutError) or _is_network_error(error):
        return True
    text = str(error)
    return any(marker in text for marker in _CONNECTION_MARKERS)


def _is_network_error(error: BaseException) -> bool:
    import httpx
    import requests

    return isinstance(error, httpx.TransportError | requests.ConnectionError | requests.Timeout)


def one_line(error: BaseException, tracking_uri: str | None = None) -> str:
    """A single line for a human: our own errors verbatim, known library errors rephrased, others by type."""
    from mlflow.exceptions import MlflowException

    if isinstance(error, MlflowException) and is_connection_failure(error):
        message = f"cannot reach MLflow at {tracking_uri or 'MLFLOW_TRACKING_URI'} (connection failed)"
    elif isinstance(error, MlflowException):
        message = f"MLflow: {_first_line(error.message)}"
    elif isinstance(error, SentimentError | ValueError | FileNotFoundError):
        message = str(error)
    elif is_connection_failure(error):
        message = f"connection failed: {_first_line(str(error))}"
    else:
        message = f"{type(error).__name__}: {_first_line(str(error))}"
    return " ".join(message.split())


def _first_line(text: Any) -> str:
    lines = [line for line in str(text).splitlines() if line.strip()]
    return lines[0] if lines else "(no message)"
