"""The service's one configuration object, read from the environment (names in docs/architecture.md)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import SettingsConfigDict

from sentiment_core.mlflow_client_options import apply_mlflow_client_options
from sentiment_core.quality_gate import QualityFloors
from sentiment_core.settings import CHAMPION_ALIAS, MlflowSettings

LogFormat = Literal["text", "json"]
LogLevel = Literal["CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG"]


class Settings(MlflowSettings):
    """MLflow location and model name (inherited), plus everything the inference service reads."""

    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True, frozen=True)

    # --- which model -------------------------------------------------------------------------------------
    model_alias: str = Field(default=CHAMPION_ALIAS, validation_alias="MODEL_ALIAS", min_length=1)

    # --- champion poller ---------------------------------------------------------------------------------
    poll_interval_seconds: float = Field(default=30.0, validation_alias="POLL_INTERVAL_SECONDS", gt=0, le=86_400)
    # Cap of the exponential backoff after failed polls and for a rejected version, so recovery stays timely.
    poll_max_backoff_seconds: float = Field(default=300.0, validation_alias="POLL_MAX_BACKOFF_SECONDS", gt=0)
    # A rejected version (bad artifact, failed validation) is retried only after this, doubling per attempt.
    rejected_retry_seconds: float = Field(default=600.0, validation_alias="REJECTED_RETRY_SECONDS", gt=0)
    # Quality floors (sentiment_core.quality_gate, with MODEL_MIN_F1 and MODEL_MIN_HELD_OUT below): the version's
    # recorded held-out accuracy, and the share of the built-in canary texts it must classify correctly.
    min_accuracy: float = Field(default=QualityFloors.min_accuracy, validation_alias="MODEL_MIN_ACCURACY", ge=0, le=1)
    canary_min_accuracy: float = Field(
        default=QualityFloors.min_canary_accuracy, validation_alias="CANARY_MIN_ACCURACY", ge=0, le=1
    )
    # MLflow's client retries 7 times with exponential backoff by default (minutes when the server is down);
    # the poller has its own backoff, so a poll should fail fast instead.
    mlflow_request_timeout_seconds: int = Field(default=10, validation_alias="MLFLOW_REQUEST_TIMEOUT_SECONDS", ge=1)
    mlflow_request_max_retries: int = Field(default=1, validation_alias="MLFLOW_REQUEST_MAX_RETRIES", ge=0)

    # --- protected endpoints -----------------------------------------------------------------------------
    # Unset or empty: /admin/reload answers 403 (disabled), never open.
    admin_token: SecretStr | None = Field(default=None, validation_alias="ADMIN_TOKEN")
    # Shared secret of an MLflow registry webhook; unset: /webhooks/mlflow answers 403 (disabled).
    webhook_secret: SecretStr | None = Field(default=None, validation_alias="WEBHOOK_SECRET")

    # --- input limits ------------------------------------------------------------------------------------
    max_text_chars: int = Field(default=20_000, validation_alias="MAX_TEXT_CHARS", ge=1)
    max_batch_size: int = Field(default=256, validation_alias="MAX_BATCH_SIZE", ge=1)
    max_body_bytes: int = Field(default=1 << 20, validation_alias="MAX_BODY_BYTES", ge=1024)

    # --- adaptive micro-batching of concurrent /predict requests -------------------------------------------
    # Upper bound of the extra wait for companions; 0 disables waiting (requests queued meanwhile still merge).
    batch_max_wait_ms: float = Field(default=2.0, validation_alias="BATCH_MAX_WAIT_MS", ge=0, le=100)
    # Most texts one vectorised model call takes (coalesced singles plus /predict/batch requests).
    batch_max_texts: int = Field(default=256, validation_alias="BATCH_MAX_TEXTS", ge=1)
    # Most characters one model call reads (its cost grows with them): a larger request is predicted in slices,
    # and requests that arrive meanwhile are served between two slices (serving.py). 25-50 ms on a loaded core.
    batch_max_chars: int = Field(default=32_768, validation_alias="BATCH_MAX_CHARS", ge=1)

    # --- backpressure (Triton/KServe-style): a bounded queue, refused at once beyond it ----------------------
    # Requests waiting for the model thread; one more is answered 503 `overloaded` with Retry-After.
    queue_max_requests: int = Field(default=512, validation_alias="QUEUE_MAX_REQUESTS", ge=1)
    # Texts waiting for the model thread (about 0.5 s of work on one core); beyond it, 503 `overloaded`.
    queue_max_texts: int = Field(default=2048, validation_alias="QUEUE_MAX_TEXTS", ge=1)
    # Longest a request waits for (and in) its model call before it answers 503 `timeout`.
    request_timeout_seconds: float = Field(default=5.0, validation_alias="REQUEST_TIMEOUT_SECONDS", gt=0, le=300)

    # --- HTTP connection limits (the service is safe without an ingress in front) -------------------------
    # Request line plus headers, in bytes; beyond it 431 `header_too_large`, before the rest is read.
    http_max_header_bytes: int = Field(default=16_384, validation_alias="HTTP_MAX_HEADER_BYTES", ge=1024)
    # Header fields per request; beyond it 431 `header_too_large`.
    http_max_headers: int = Field(default=100, validation_alias="HTTP_MAX_HEADERS", ge=8)
    # From connection open (or a request's first byte) to the end of its headers; then 408 or a silent close.
    http_header_timeout_seconds: float = Field(default=10.0, validation_alias="HTTP_HEADER_TIMEOUT_SECONDS", gt=0)
    # From the end of the headers to the end of the body (a slow-body client); then 408 `request_timeout`.
    http_body_timeout_seconds: float = Field(default=30.0, validation_alias="HTTP_BODY_TIMEOUT_SECONDS", gt=0)
    # An idle keep-alive connection is closed after this.
    http_keepalive_timeout_seconds: float = Field(default=5.0, validation_alias="HTTP_KEEPALIVE_TIMEOUT_SECONDS", gt=0)
    # Open connections per worker; one more is answered 503 `overloaded` and closed.
    http_max_connections: int = Field(default=1000, validation_alias="HTTP_MAX_CONNECTIONS", ge=1)

    # gc.freeze() the long-lived heap at start-up and after each swap (see model_store.freeze_heap).
    gc_freeze: bool = Field(default=True, validation_alias="GC_FREEZE")
    # How long a Python thread may hold the GIL while another waits for it (sys.setswitchinterval). The event loop
    # and the model thread (and a model load) share it. Process-wide, so main.py sets it once at start-up and
    # nothing changes it afterwards. CPython's 5 ms: bench/hostile_traffic.py measured 1 ms worse on the loaded
    # machine (U+FDFA flood: normal p50 125 vs 78 ms, half the refusals served; more forced hand-overs).
    gil_switch_interval_ms: float = Field(default=5.0, validation_alias="GIL_SWITCH_INTERVAL_MS", gt=0, le=100)

    # --- server and logs ---------------------------------------------------------------------------------
    host: str = Field(default="0.0.0.0", validation_alias="HOST")  # noqa: S104 - a container listens on all
    port: int = Field(default=8000, validation_alias="PORT", ge=1, le=65_535)
    workers: int = Field(default=1, validation_alias="WORKERS", ge=1)
    log_level: LogLevel = Field(default="INFO", validation_alias="LOG_LEVEL")
    log_format: LogFormat = Field(default="text", validation_alias="LOG_FORMAT")
    # One log line per request costs about as much as parsing it; /metrics already counts every request.
    access_log: bool = Field(default=False, validation_alias="ACCESS_LOG")

    # --- quality floors, continued (the trainer's params.yaml `promotion:` has the same defaults) ---------------
    min_f1: float = Field(default=QualityFloors.min_f1, validation_alias="MODEL_MIN_F1", ge=0, le=1)
    min_held_out: int = Field(default=QualityFloors.min_held_out, validation_alias="MODEL_MIN_HELD_OUT", ge=2)

    # --- drift of live traffic vs the serving version's reference profile (drift_monitor.py, GET /drift) ------
    drift_enabled: bool = Field(default=True, validation_alias="DRIFT_ENABLED")
    # Newest texts a verdict covers (one model version), and the fewest for one: PSI noise is ~(bins - 1) / n.
    drift_window_size: int = Field(default=1000, validation_alias="DRIFT_WINDOW_SIZE", ge=10, le=100_000)
    drift_min_samples: int = Field(default=200, validation_alias="DRIFT_MIN_SAMPLES", ge=10)
    # PSI from which a signal is "warning" / "drift"; the alert SentimentPredictionDrift reads the second one.
    drift_warning_psi: float = Field(default=0.1, validation_alias="DRIFT_WARNING_PSI", gt=0)
    drift_alert_psi: float = Field(default=0.25, validation_alias="DRIFT_ALERT_PSI", gt=0)
    # Featurising a text costs about what predicting it does: above this rate the window samples the traffic.
    drift_max_texts_per_second: float = Field(default=25.0, validation_alias="DRIFT_MAX_TEXTS_PER_SECOND", gt=0)

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_level(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @field_validator("log_format", mode="before")
    @classmethod
    def _lower_format(cls, value: object) -> object:
        return value.lower() if isinstance(value, str) else value

    @field_validator("admin_token", "webhook_secret", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        # `ADMIN_TOKEN=` in a compose file or chart means "not configured", not "the empty token".
        if isinstance(value, str) and not value.strip():
            return None
        return value

    @model_validator(mode="after")
    def _consistent_limits(self) -> Settings:
        if self.batch_max_texts < self.max_batch_size:
            raise ValueError(
                f"BATCH_MAX_TEXTS ({self.batch_max_texts}) must be >= MAX_BATCH_SIZE ({self.max_batch_size}):"
                " a /predict/batch request is predicted in one call"
            )
        if self.queue_max_texts < self.max_batch_size:
            raise ValueError(
                f"QUEUE_MAX_TEXTS ({self.queue_max_texts}) must be >= MAX_BATCH_SIZE ({self.max_batch_size}):"
                " otherwise a full-size batch could never be queued"
            )
        return self

    @model_validator(mode="after")
    def _consistent_drift(self) -> Settings:
        if self.drift_min_samples > self.drift_window_size:
            raise ValueError(
                f"DRIFT_MIN_SAMPLES ({self.drift_min_samples}) must be <= DRIFT_WINDOW_SIZE ({self.drift_window_size})"
            )
        if self.drift_warning_psi > self.drift_alert_psi:
            raise ValueError(
                f"DRIFT_WARNING_PSI ({self.drift_warning_psi}) must be <= DRIFT_ALERT_PSI ({self.drift_alert_psi})"
            )
        return self

    @property
    def admin_enabled(self) -> bool:
        return self.admin_token is not None

    def apply_mlflow_client_env(self) -> None:
        """Make MLflow's HTTP client fail fast, so a poll gives up within its interval; explicit env wins."""
        apply_mlflow_client_options(
            timeout_seconds=self.mlflow_request_timeout_seconds,
            max_retries=self.mlflow_request_max_retries,
            backoff_factor=1.0,
        )

    def quality_floors(self) -> QualityFloors:
        return QualityFloors(
            min_held_out=self.min_held_out,
            min_accuracy=self.min_accuracy,
            min_f1=self.min_f1,
            min_canary_accuracy=self.canary_min_accuracy,
        )
