"""Request and response bodies. Request limits come from Settings, so those models are built per app."""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Callable
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from sentiment_core.text import _TAG, WORD_PATTERN, clean_text

Sentiment = Literal["negative", "positive"]

EXAMPLE_REVIEW = "A wonderful film: great acting, a moving story and a superb score."


_WORD = re.compile(WORD_PATTERN)
# The cleaner's HTML-tag pattern, then the model's token pattern: the first alternative consumes a tag whole,
# so a token found by the second lies outside every tag, as it does in `clean_text`'s output.
# Anything html.unescape could replace starts like this (a superset of its entity pattern: a false alarm only
# costs the full cleaning).
_MAYBE_ENTITY = re.compile(r"&[^\t\n\f <&;]")
_TAG_OR_WORD = re.compile(f"{_TAG.pattern}|(?P<word>{WORD_PATTERN.removeprefix('(?u)')})")


# The highest code point with a compatibility decomposition is U+2FA1D; no character above it grows under NFKC.
_LAST_DECOMPOSABLE = 0x2FFFF


@functools.cache
def _nfkc_growth_table() -> np.ndarray:
    """How many characters each code point grows by under NFKC on its own (0-17), indexed by code point.

    Built once, on the first non-ASCII text (~60 ms, 1.1 MB): only characters with a decomposition can grow."""
    table = np.zeros(0x110000, dtype=np.int8)
    for code in range(_LAST_DECOMPOSABLE + 1):
        char = chr(code)
        if unicodedata.decomposition(char):
            table[code] = len(unicodedata.normalize("NFKC", char)) - 1
    return table


def nfkc_length_bound(text: str) -> int:
    """An upper bound of `len(NFKC(text))`: the text's length plus what each character grows by on its own.

    NFKC decomposes character by character and composition only shortens, so this bounds the length the model
    reads. U+FDFA grows by 17: 20,000 of them are 360,000 characters for the model. Cost: one vectorised table
    look-up per character (~0.1 ms for 20,000), never normalising, and no Python object per character (a
    `set(text)` of 20,000 non-Latin-1 characters alone cost 2 ms, most of a refusal under a flood)."""
    if text.isascii():  # ASCII is NFKC-stable
        return len(text)
    codes = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
    return len(text) + int(_nfkc_growth_table()[codes].sum(dtype=np.int64))


def grows_past(text: str, limit: int) -> bool:
    """True when `text` may be longer than `limit` characters once NFKC-normalised (see nfkc_length_bound)."""
    return nfkc_length_bound(text) > limit


def has_words(text: str) -> bool:
    """True when the model's own cleaner and tokeniser find at least one token in `text`.

    Exactly `re.search(WORD_PATTERN, clean_text(text))`, without building the cleaned copy in the common case:
    without an HTML entity (html.unescape is then the identity) and already NFKC-normal, cleaning only drops
    tags, lowercases and collapses whitespace, none of which makes or removes a token outside a tag."""
    if ("&" not in text or _MAYBE_ENTITY.search(text) is None) and unicodedata.is_normalized("NFKC", text):
        return any(match.group("word") for match in _TAG_OR_WORD.finditer(text))
    return _WORD.search(clean_text(text)) is not None


def _text_checks(max_text_chars: int) -> Callable[[str], str]:
    def check(text: str) -> str:
        if not text.strip():
            raise ValueError("is only whitespace; send some words to classify")
        grown = nfkc_length_bound(text)
        if grown > max_text_chars:
            raise ValueError(
                f"grows to {grown} characters under Unicode NFKC normalisation, which the model applies (e.g. U+FDFA"
                f" becomes 18 characters); the maximum is {max_text_chars} characters after normalisation"
            )
        if not has_words(text):
            raise ValueError(
                "contains no words (only symbols, emoji, invisible or control characters); send some words to classify"
            )
        return text

    return check


def request_models(max_text_chars: int, max_batch_size: int) -> tuple[type[BaseModel], type[BaseModel]]:
    """PredictRequest and BatchPredictRequest with this deployment's limits (they show in the OpenAPI schema)."""
    text_type = Annotated[
        str,
        StringConstraints(strict=True, min_length=1, max_length=max_text_chars),
        AfterValidator(_text_checks(max_text_chars)),
    ]

    class PredictRequest(BaseModel):
        """One review to classify."""

        model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"text": EXAMPLE_REVIEW}]})

        text: text_type = Field(  # type: ignore[valid-type]
            description=f"The review text: 1 to {max_text_chars} characters (also after NFKC normalisation), with"
            " at least one word."
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
