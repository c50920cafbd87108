"""GET /metrics: Prometheus text exposition of this process's registry."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from sentiment_inference.app_state import get_service
from sentiment_inference.metrics import CONTENT_TYPE
from sentiment_inference.settings import Settings


def build_router(settings: Settings) -> APIRouter:
    router = APIRouter(tags=["metrics"])

    @router.get(
        "/metrics",
        response_class=Response,
        responses={200: {"content": {CONTENT_TYPE: {}}, "description": "Prometheus text format"}},
        summary="Prometheus metrics",
    )
    async def metrics(request: Request) -> Response:
        return Response(get_service(request).metrics.render(), media_type=CONTENT_TYPE)

    return router
