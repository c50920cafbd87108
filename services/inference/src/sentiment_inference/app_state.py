"""The per-app components the routes use, kept on `app.state.service` (no module globals: one app, one set)."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request

from sentiment_inference.drift_monitor import DriftMonitor
from sentiment_inference.metrics import ServiceMetrics
from sentiment_inference.model_store import ModelStore
from sentiment_inference.poller import ChampionPoller
from sentiment_inference.serving import MicroBatcher
from sentiment_inference.settings import Settings


@dataclass
class Service:
    settings: Settings
    metrics: ServiceMetrics
    store: ModelStore
    poller: ChampionPoller
    batcher: MicroBatcher
    drift: DriftMonitor

    async def start(self) -> None:
        self.batcher.start()
        self.poller.start()

    async def stop(self) -> None:
        await self.poller.stop()
        await self.batcher.stop()


def get_service(request: Request) -> Service:
    service: Service = request.app.state.service
    return service
