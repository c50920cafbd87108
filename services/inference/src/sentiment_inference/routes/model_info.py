"""GET /model-info: what is serving and where it came from, plus the poller's last word."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from sentiment_inference.app_state import get_service
from sentiment_inference.redaction import redact_locations
from sentiment_inference.routes.health import public_rejection
from sentiment_inference.schemas import ModelInfoResponse, PollInfo
from sentiment_inference.settings import Settings


def public_poll_info(snapshot: dict[str, Any]) -> PollInfo:
    """The poller's state for anonymous callers: its errors quote MLflow's, which name internal hosts and URLs.
    The detail stays in the logs and in the admin endpoint's answer."""
    public = dict(snapshot)
    public["last_poll_message"] = redact_locations(snapshot["last_poll_message"])
    public["rejected_versions"] = {
        version: {**rejected, "reason": redact_locations(rejected["reason"])}
        for version, rejected in snapshot["rejected_versions"].items()
    }
    return PollInfo(**public)


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
        poll = public_poll_info(service.poller.snapshot())
        serving = service.poller.serving_mode()
        rejection = public_rejection(service)
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
                serving=serving,
                champion_rejected=rejection,
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
            serving=serving,
            champion_rejected=rejection,
        )

    return router
