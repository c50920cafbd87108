"""Request and response bodies. Request limits come from Settings, so those models are built per app."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

Sentiment = Literal["negative", "positive"]

EXAMPLE_REVIEW = "A wonderful film: great acting, a moving story and a superb score."


def _not_blank(text: str) -> str:
    if not text.strip():
        raise ValueError("is only whitespace; send some words to classify")
    return text


def request_models(max_text_chars: int, max_batch_size: int) -> tuple[type[BaseModel], type[BaseModel]]:
    """PredictRequest and BatchPredictRequest with this deployment's limits (they show in the OpenAPI schema)."""
    text_type = Annotated[
        str,
        StringConstraints(strict=True, min_length=1, max_length=max_text_chars),
        AfterValidator(_not_blank),
    ]

    class PredictRequest(BaseModel):
        """One review to classify."""

        model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"text": EXAMPLE_REVIEW}]})

        text: text_type = Field(  # type: ignore[valid-type]
            description=f"The review text: 1 to {max_text_chars} characters, not only whitespace."
        )

    class BatchPredictRequest(BaseModel):
        """Several reviews, classified in one vectorised call; results come back in the same order."""

        model_config = ConfigDict(
            extra="forbid",
            json_schema_extra={"examples": [{"texts": [EXAMPLE_REVIEW, "Dull, predictable and far too long."]}]},
        )

        texts: list[text_type] = Field(  # type: ignore[valid-type]
            min_length=1,
            max_length=max_batch_size,
            description=f"1 to {max_batch_size} review texts, each as for /predict.",
        )

    return PredictRequest, BatchPredictRequest


class PredictResponse(BaseModel):
    sentiment: Sentiment
    confidence: float = Field(ge=0, le=1, description="Probability the model gives the predicted class.")
    model_version: str = Field(description="Registry version that made this prediction (also X-Model-Version).")


class BatchPredictResponse(BaseModel):
    model_version: str = Field(description="Registry version that made every prediction of this batch.")
    results: list[PredictResponse] = Field(description="One result per input text, in input order.")


class LiveResponse(BaseModel):
    status: Literal["live"]


class ReadyResponse(BaseModel):
    ready: bool
    model_version: str | None = None
    reason: str | None = None


ServingMode = Literal["champion", "fallback", "previous", "none"]
SERVING_DESCRIPTION = (
    "champion: the alias's version; fallback: the alias's version failed the checks, an earlier champion serves;"
    " previous: the alias moved and its version is not loaded yet; none: nothing serves."
)


class ChampionRejection(BaseModel):
    version: str
    reason: str


class HealthResponse(BaseModel):
    status: Literal["ok", "no_champion"]
    live: bool
    ready: bool
    model_name: str
    model_alias: str
    model_version: str | None
    loaded_at: str | None
    last_poll_at: str | None
    last_poll_result: str | None
    consecutive_poll_failures: int
    serving: ServingMode = Field(default="none", description=SERVING_DESCRIPTION)
    champion_rejected: ChampionRejection | None = Field(
        default=None, description="The registry's champion version and why this replica refuses to serve it."
    )


class PollInfo(BaseModel):
    last_poll_at: str | None
    last_poll_result: str | None
    last_poll_message: str | None
    last_successful_poll_at: str | None
    consecutive_poll_failures: int
    next_poll_in_seconds: float | None
    registry_champion_version: str | None
    rejected_versions: dict[str, dict[str, Any]]


class ModelInfoResponse(BaseModel):
    name: str
    alias: str
    ready: bool
    version: str | None = Field(description="Version being served; null before a champion was loaded.")
    run_id: str | None
    metrics: dict[str, float]
    lineage: dict[str, str]
    tags: dict[str, str]
    loaded_at: str | None
    poll: PollInfo
    serving: ServingMode = Field(default="none", description=SERVING_DESCRIPTION)
    champion_rejected: ChampionRejection | None = Field(
        default=None, description="The registry's champion version and why this replica refuses to serve it."
    )


class ReloadResponse(BaseModel):
    result: str = Field(description="loaded, restored, unchanged, no_champion, rejected, skipped or failed")
    version: str | None
    message: str
    serving_version: str | None


class WebhookResponse(BaseModel):
    accepted: bool
    message: str
