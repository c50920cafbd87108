"""POST /predict and POST /predict/batch: classify texts with the serving champion."""

# No `from __future__ import annotations` here: FastAPI must see the per-app request classes themselves,
# not names it would try to resolve in module globals.
import json
from typing import Any

from fastapi import APIRouter, Request, Response

from sentiment_inference.app_state import get_service
from sentiment_inference.errors import ApiError, ErrorBody
from sentiment_inference.schemas import BatchPredictResponse, PredictResponse, request_models
from sentiment_inference.serving import NoChampionError
from sentiment_inference.settings import Settings

VERSION_HEADER = "X-Model-Version"

_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "The body is not valid JSON."},
    413: {"model": ErrorBody, "description": "The body is larger than MAX_BODY_BYTES."},
    422: {"model": ErrorBody, "description": "Missing field, wrong type, empty text, text or batch too long."},
    503: {"model": ErrorBody, "description": "No champion model yet (the service is still polling the registry)."},
}


def _no_champion(settings: Settings) -> ApiError:
    return ApiError(
        503,
        "no_champion",
        f"no champion model yet: no version of '{settings.model_name}' with alias '{settings.model_alias}'"
        " has been loaded; retry after a model is promoted",
        headers={"Retry-After": str(max(1, round(settings.poll_interval_seconds)))},
    )


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
        service = get_service(request)
        try:
            result = await service.batcher.predict([body.text])  # type: ignore[attr-defined]
        except NoChampionError:
            raise _no_champion(settings) from None
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
        try:
            result = await service.batcher.predict(texts)
        except NoChampionError:
            raise _no_champion(settings) from None
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
