"""POST /predict and POST /predict/batch: classify texts with the serving champion."""

# No `from __future__ import annotations` here: FastAPI must see the per-app request classes themselves,
# not names it would try to resolve in module globals.
import json
from collections.abc import Sequence
from typing import Any

from fastapi import APIRouter, Request, Response
from starlette.types import Receive

from sentiment_inference.app_state import get_service
from sentiment_inference.errors import ApiError, ErrorBody
from sentiment_inference.schemas import BatchPredictResponse, PredictResponse, request_models
from sentiment_inference.serving import (
    BatchResult,
    ClientGoneError,
    DeadlineExceededError,
    NoChampionError,
    OverloadedError,
    PredictionFailedError,
)
from sentiment_inference.settings import Settings

VERSION_HEADER = "X-Model-Version"

_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "The body is not valid JSON."},
    413: {"model": ErrorBody, "description": "The body is larger than MAX_BODY_BYTES."},
    422: {
        "model": ErrorBody,
        "description": "Missing field, wrong type, empty text or a text with no words, text or batch too long.",
    },
    500: {"model": ErrorBody, "description": "`prediction_failed`: the model raised on this request's texts."},
    503: {
        "model": ErrorBody,
        "description": "`no_champion` (no model yet), `overloaded` (queue full) or `timeout` (deadline passed);"
        " retry after the Retry-After header.",
    },
}
# Shed requests come back soon: the queue drains in well under a second.
RETRY_AFTER_SECONDS = "1"
# nginx's code for "the client closed the request": it is never seen by the client, only in the metrics.
CLIENT_CLOSED_REQUEST = 499


async def _disconnected(receive: Receive) -> None:
    """Returns when the client hangs up. Called after the body was read, so the next ASGI message is
    `http.disconnect` (a pipelined next request is held by the server until this response is sent)."""
    while (await receive())["type"] != "http.disconnect":
        pass


def _no_champion(settings: Settings) -> ApiError:
    return ApiError(
        503,
        "no_champion",
        f"no champion model yet: no version of '{settings.model_name}' with alias '{settings.model_alias}'"
        " has been loaded; retry after a model is promoted",
        headers={"Retry-After": str(max(1, round(settings.poll_interval_seconds)))},
    )


async def _predict(request: Request, texts: Sequence[str], settings: Settings) -> BatchResult:
    """The batcher's answer, or the uniform error a client can act on."""
    receive = request.receive
    try:
        return await get_service(request).batcher.predict(texts, lambda: _disconnected(receive))
    except NoChampionError:
        raise _no_champion(settings) from None
    except OverloadedError as error:
        raise ApiError(
            503, "overloaded", f"overloaded: {error}; retry shortly", {"Retry-After": RETRY_AFTER_SECONDS}
        ) from None
    except DeadlineExceededError as error:
        raise ApiError(
            503, "timeout", f"timeout: {error}; retry shortly", {"Retry-After": RETRY_AFTER_SECONDS}
        ) from None
    except ClientGoneError:
        raise ApiError(CLIENT_CLOSED_REQUEST, "client_closed_request", "the client disconnected") from None
    except PredictionFailedError as error:
        raise ApiError(500, "prediction_failed", str(error)) from None


def build_router(settings: Settings) -> APIRouter:
    predict_request, batch_request = request_models(settings.max_text_chars, settings.max_batch_size)
    router = APIRouter(tags=["predict"])

    # Handlers build the JSON themselves and return a Response: FastAPI then skips re-validating and
    # re-encoding the response model, which is a measurable share of a sub-millisecond request.
    @router.post(
        "/predict",
        response_model=PredictResponse,
        responses=_ERRORS,
        summary="Classify one review",
        description="The serving model version is in the body and in the X-Model-Version header.",
    )
    async def predict(body: predict_request, request: Request) -> Response:  # type: ignore[valid-type]
        result = await _predict(request, [body.text], settings)  # type: ignore[attr-defined]
        payload = {"sentiment": result.labels[0], "confidence": result.confidences[0], "model_version": result.version}
        return Response(
            json.dumps(payload).encode(), media_type="application/json", headers={VERSION_HEADER: result.version}
        )

    @router.post(
        "/predict/batch",
        response_model=BatchPredictResponse,
        responses=_ERRORS,
        summary="Classify several reviews in one vectorised call",
        description=f"1 to {settings.max_batch_size} texts; one result per text, in order.",
    )
    async def predict_batch(body: batch_request, request: Request) -> Response:  # type: ignore[valid-type]
        service = get_service(request)
        texts: list[str] = body.texts  # type: ignore[attr-defined]
        service.metrics.batch_request_size.observe(len(texts))
        result = await _predict(request, texts, settings)
        version = result.version
        payload = {
            "model_version": version,
            "results": [
                {"sentiment": label, "confidence": confidence, "model_version": version}
                for label, confidence in zip(result.labels, result.confidences, strict=True)
            ],
        }
        return Response(json.dumps(payload).encode(), media_type="application/json", headers={VERSION_HEADER: version})

    return router
