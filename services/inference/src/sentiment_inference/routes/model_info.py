"""GET /model-info: what is serving and where it came from, plus the poller's last word."""

from __future__ import annotations

from fastapi import APIRouter, Request

from sentiment_inference.app_state import get_service
from sentiment_inference.schemas import ModelInfoResponse, PollInfo
from sentiment_inference.settings import Settings


def build_router(settings: Settings) -> APIRouter:
    router = APIRouter(tags=["model"])

    @router.get(
        "/model-info",
        response_model=ModelInfoResponse,
        summary="Serving model: name, version, alias, run id, metrics, lineage, load and poll times",
    )
    async def model_info(request: Request) -> ModelInfoResponse:
        service = get_service(request)
        model = service.store.current
        poll = PollInfo(**service.poller.snapshot())
        if model is None:
            return ModelInfoResponse(
                name=settings.model_name,
                alias=settings.model_alias,
                ready=False,
                version=None,
                run_id=None,
                metrics={},
                lineage={},
                tags={},
                loaded_at=None,
                poll=poll,
            )
        return ModelInfoResponse(
            name=model.name,
            alias=model.alias,
            ready=True,
            version=model.version,
            run_id=model.run_id,
            metrics=model.metrics,
            lineage=model.lineage,
            tags=dict(model.tags),
            loaded_at=model.loaded_at.isoformat(),
            poll=poll,
        )

    return router
