"""Probes: /health/live (the process answers), /health/ready (serving what the registry holds), /health (summary).

Readiness means "this replica serves the registry's current state": a validated, warmed champion is loaded, or the
registry answered that no champion exists yet. The second case matters for installs: before the first training no
replica could ever turn Ready, so `helm install --wait` (and any rollout gate) would wait forever, and the Service
would refuse connections instead of answering `503 no_champion`. Once a champion exists, a replica that has not
loaded it (still loading, MLflow unreachable, version rejected) is not Ready, so rollouts keep waiting for it.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from sentiment_inference.app_state import Service, get_service
from sentiment_inference.redaction import redact_locations
from sentiment_inference.schemas import ChampionRejection, HealthResponse, LiveResponse, ReadyResponse
from sentiment_inference.settings import Settings

NO_CHAMPION_YET = "no champion registered yet: /predict answers 503 no_champion until a model is promoted"


def readiness(service: Service) -> ReadyResponse:
    model = service.store.current
    if model is not None:
        return ReadyResponse(ready=True, model_version=model.version)
    last = service.poller.state.last_result
    if last is not None and last.outcome == "no_champion":
        return ReadyResponse(ready=True, reason=NO_CHAMPION_YET)
    return ReadyResponse(ready=False, reason="no champion model loaded yet")


def public_rejection(service: Service) -> ChampionRejection | None:
    """The champion's rejection as anonymous callers may see it (no internal URLs or hosts)."""
    rejection = service.poller.champion_rejection()
    if rejection is None:
        return None
    return ChampionRejection(version=rejection["version"], reason=redact_locations(rejection["reason"]) or "")


def build_router(settings: Settings) -> APIRouter:
    router = APIRouter(tags=["health"])

    @router.get("/health/live", response_model=LiveResponse, summary="Liveness: the process serves HTTP")
    async def live() -> dict[str, str]:
        return {"status": "live"}

    @router.get(
        "/health/ready",
        response_model=ReadyResponse,
        responses={503: {"model": ReadyResponse, "description": "The registry's champion is not loaded (yet)."}},
        summary="Readiness: the champion is loaded and warm, or the registry has none yet",
    )
    async def ready(request: Request) -> JSONResponse:
        # Once a model serves, readiness stays true: registry outages and rejected candidates do not stop it.
        body = readiness(get_service(request))
        return JSONResponse(body.model_dump(exclude_none=True), status_code=200 if body.ready else 503)

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
            ready=readiness(service).ready,
            model_name=settings.model_name,
            model_alias=settings.model_alias,
            model_version=model.version if model else None,
            loaded_at=model.loaded_at.isoformat() if model else None,
            last_poll_at=state.last_poll_at.isoformat() if state.last_poll_at else None,
            last_poll_result=state.last_result.outcome if state.last_result else None,
            consecutive_poll_failures=state.consecutive_failures,
            serving=service.poller.serving_mode(),
            champion_rejected=public_rejection(service),
        )

    return router
