"""Assembles the app: settings -> components -> routers, middleware and error handlers. Nothing loads at import.

`create_app(settings)` is the factory (uvicorn runs it with `factory=True`); `app` is built on first access
for `uvicorn sentiment_inference.main:app`.
"""

from __future__ import annotations

import gc
import inspect
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from sentiment_inference import __version__
from sentiment_inference.app_state import Service
from sentiment_inference.body_size_limit import BodySizeLimitMiddleware
from sentiment_inference.drift_monitor import DriftMonitor, drift_config
from sentiment_inference.errors import install_error_handlers
from sentiment_inference.metrics import MetricsMiddleware, ServiceMetrics
from sentiment_inference.model_store import ModelStore, freeze_heap
from sentiment_inference.poller import ChampionPoller
from sentiment_inference.registry_gateway import MlflowGateway, RegistryGateway
from sentiment_inference.routes import admin, drift, health, metrics, model_info, predict
from sentiment_inference.serving import MicroBatcher
from sentiment_inference.settings import Settings

DESCRIPTION = """Serves the registry's `champion` sentiment model (IMDb reviews: positive / negative).

An in-process poller follows the alias, loads each new **pinned** version, validates it on canary texts,
warms it and swaps it in atomically. Every error answers `{"error": {"code", "message"}}`.
"""


def build_service(settings: Settings, gateway: RegistryGateway | None = None) -> Service:
    metrics_ = ServiceMetrics()
    store = ModelStore()
    poller = ChampionPoller(
        gateway=gateway or MlflowGateway(settings.tracking_uri, settings.model_name, settings.model_alias),
        store=store,
        metrics=metrics_,
        model_name=settings.model_name,
        alias=settings.model_alias,
        interval=settings.poll_interval_seconds,
        max_backoff=settings.poll_max_backoff_seconds,
        rejected_retry_seconds=settings.rejected_retry_seconds,
        floors=settings.quality_floors(),
        freeze_heap_on_swap=settings.gc_freeze,
    )
    monitor = DriftMonitor(drift_config(settings), store, metrics_.registry)
    batcher = MicroBatcher(
        store,
        metrics_,
        settings.batch_max_texts,
        settings.batch_max_wait_ms / 1000,
        monitor,
        max_queue_requests=settings.queue_max_requests,
        max_queue_texts=settings.queue_max_texts,
        deadline_seconds=settings.request_timeout_seconds,
        max_chars=settings.batch_max_chars,
    )
    return Service(settings=settings, metrics=metrics_, store=store, poller=poller, batcher=batcher, drift=monitor)


def create_app(settings: Settings | None = None, gateway: RegistryGateway | None = None) -> FastAPI:
    settings = settings or Settings()
    service = build_service(settings, gateway)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        settings.apply_mlflow_client_env()
        # The one place the process-wide GIL switch interval is set (the poller used to change it per load).
        sys.setswitchinterval(settings.gil_switch_interval_ms / 1000)
        if settings.gc_freeze:
            # Collect start-up garbage once, then keep the long-lived heap out of every later collection.
            gc.collect()
            freeze_heap()
        # Starts the batcher and the poller; the first poll runs in the background, so the app is live at once.
        await service.start()
        try:
            yield
        finally:
            await service.stop()

    app = FastAPI(
        title="sentiment-inference",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        **_no_framework_telemetry(),
    )
    app.state.service = service
    known_paths: set[str] = {"/docs", "/openapi.json", "/redoc"}
    for module in (predict, health, model_info, admin, metrics, drift):
        router = module.build_router(settings)
        known_paths.update(getattr(route, "path", "") for route in router.routes)
        app.include_router(router)
    install_error_handlers(app)
    # Added last = outermost: metrics see everything, including the 413 answered by the body cap.
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(MetricsMiddleware, metrics=service.metrics, known_paths=frozenset(known_paths))
    return app


def _no_framework_telemetry() -> dict[str, Any]:
    """FastAPI >= 0.150 runs native OpenTelemetry checks on every request when opentelemetry is importable (it
    comes with MLflow). This service exports Prometheus metrics itself, so switch them off: ~20 µs a request."""
    if "telemetry" not in inspect.signature(FastAPI.__init__).parameters:
        return {}
    flags = ("tracing", "metrics", "logs", "operation_spans")
    return {"telemetry": dict.fromkeys(flags, False)}


def __getattr__(name: str) -> Any:
    # `uvicorn sentiment_inference.main:app` works without building an app (and reading settings) at import.
    if name == "app":
        return create_app()
    raise AttributeError(name)
