"""Probes: /health/live (the process answers), /health/ready (a champion is loaded and warm), /health (summary)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from sentiment_inference.app_state import get_service
from sentiment_inference.schemas import HealthResponse, LiveResponse, ReadyResponse
from sentiment_inference.settings import Settings


def build_router(settings: Settings) -> APIRouter:
    router = APIRouter(tags=["health"])

    @router.get("/health/live", response_model=LiveResponse, summary="Liveness: the process serves HTTP")
    async def live() -> dict[str, str]:
        return {"status": "live"}

    @router.get(
        "/health/ready",
        response_model=ReadyResponse,
        responses={503: {"model": ReadyResponse, "description": "No champion loaded yet."}},
        summary="Readiness: a validated, warmed champion is serving",
    )
    async def ready(request: Request) -> JSONResponse:
        model = get_service(request).store.current
        if model is None:
            body = ReadyResponse(ready=False, reason="no champion model yet")
            return JSONResponse(body.model_dump(), status_code=503)
        # Once a model serves, readiness stays true: registry outages and rejected candidates do not stop it.
        return JSONResponse(ReadyResponse(ready=True, model_version=model.version).model_dump(exclude_none=True))

    @router.get(
        "/health",
        response_model=HealthResponse,
        summary="Summary for humans and compose (always 200 while the process is up)",
    )
    async def health(request: Request) -> HealthResponse:
        service = get_service(request)
        model = service.store.current
        state = service.poller.state
        return HealthResponse(
            status="ok" if model else "no_champion",
            live=True,
            ready=model is not None,
            model_name=settings.model_name,
            model_alias=settings.model_alias,
            model_version=model.version if model else None,
            loaded_at=model.loaded_at.isoformat() if model else None,
            last_poll_at=state.last_poll_at.isoformat() if state.last_poll_at else None,
            last_poll_result=state.last_result.outcome if state.last_result else None,
            consecutive_poll_failures=state.consecutive_failures,
        )

    return router
