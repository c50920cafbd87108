"""GET /drift: per-signal drift status of the live window against the serving version's reference profile."""

from __future__ import annotations

import asyncio
from dataclasses import asdict
from typing import Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from sentiment_inference.app_state import get_service
from sentiment_inference.settings import Settings


class SignalDrift(BaseModel):
    status: Literal["unknown", "insufficient_data", "ok", "warning", "drift"]
    score: float | None = Field(None, description="PSI of the live window against the reference (null: no verdict)")
    reference_mean: float | None = None
    live_mean: float | None = None


class DriftThresholds(BaseModel):
    warning: float
    drift: float


class DriftWindow(BaseModel):
    size: int = Field(description="texts of the serving version in the window")
    capacity: int
    min_samples: int = Field(description="fewest texts for a verdict")


class DriftResponse(BaseModel):
    status: Literal["disabled", "no_champion", "unknown", "insufficient_data", "ok", "warning", "drift"]
    reason: str
    model_version: str | None
    reference_version: str | None = Field(description="version whose reference profile the window is compared with")
    window: DriftWindow
    thresholds: DriftThresholds
    signals: dict[str, SignalDrift]


def build_router(settings: Settings) -> APIRouter:
    router = APIRouter(tags=["drift"])

    @router.get(
        "/drift",
        response_model=DriftResponse,
        summary="Drift of live traffic: status ok / warning / drift per signal, window, reference version, thresholds",
    )
    async def drift(request: Request) -> DriftResponse:
        # Featurising pending texts is CPU work: off the event loop, so /predict keeps being served meanwhile.
        report = await asyncio.to_thread(get_service(request).drift.report)
        return DriftResponse(
            status=report.status,
            reason=report.reason,
            model_version=report.model_version,
            reference_version=report.reference_version,
            window=DriftWindow(
                size=report.window_size, capacity=report.window_capacity, min_samples=report.min_samples
            ),
            thresholds=DriftThresholds(warning=report.warning_psi, drift=report.drift_psi),
            signals={name: SignalDrift(**asdict(signal)) for name, signal in report.signals.items()},
        )

    return router
