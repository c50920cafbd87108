"""Prometheus metrics, in a registry per app (tests build many apps in one process; no global state)."""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# From 100 µs (a health probe, a cached route) to seconds (a cold model call or a large batch).
LATENCY_BUCKETS: tuple[float, ...] = (
    0.0001,
    0.00025,
    0.0005,
    0.00075,
    0.001,
    0.0015,
    0.0025,
    0.005,
    0.0075,
    0.01,
    0.025,
    0.05,
    0.075,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)
BATCH_BUCKETS: tuple[float, ...] = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)

LOAD_RESULTS = ("ok", "rejected", "failed")
SHED_REASONS = ("overloaded", "timeout", "client_gone")

# The `*_created` companion series double the exposition for no dashboard use.
disable_created_metrics()
CONTENT_TYPE = CONTENT_TYPE_LATEST


class ServiceMetrics:
    """Every metric the service exports. Children with fixed labels are cached to keep the hot path cheap."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "sentiment_http_requests_total",
            "HTTP requests by route template, method and status code.",
            ["route", "method", "status"],
            registry=r,
        )
        self.latency = Histogram(
            "sentiment_http_request_duration_seconds",
            "HTTP request latency (first byte in to last byte out of the app) by route, method and status.",
            ["route", "method", "status"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.predictions = Counter(
            "sentiment_predictions_total", "Texts classified, by predicted class.", ["sentiment"], registry=r
        )
        self.batch_request_size = Histogram(
            "sentiment_batch_request_texts",
            "Texts per /predict/batch request.",
            buckets=BATCH_BUCKETS,
            registry=r,
        )
        self.model_call_size = Histogram(
            "sentiment_model_call_texts",
            "Texts per vectorised model call (coalesced /predict requests and /predict/batch requests).",
            buckets=BATCH_BUCKETS,
            registry=r,
        )
        self.model_call_latency = Histogram(
            "sentiment_model_call_duration_seconds",
            "Duration of one vectorised model call (predict_proba) in the prediction thread.",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.model_version = Gauge(
            "sentiment_model_version_info",
            "1 for the model version being served (labels name, version, alias); absent before a champion.",
            ["name", "version", "alias"],
            registry=r,
        )
        self.model_ready = Gauge(
            "sentiment_model_ready", "1 when a validated champion is loaded and serving, else 0.", registry=r
        )
        self.model_loaded_at = Gauge(
            "sentiment_model_loaded_timestamp_seconds",
            "Unix time the serving model was swapped in.",
            registry=r,
        )
        self.model_loads = Counter(
            "sentiment_model_loads_total",
            "Attempts to load a new champion, by result: ok (serving), rejected (bad model), failed (infra).",
            ["result"],
            registry=r,
        )
        self.polls = Counter("sentiment_registry_polls_total", "Champion polls, by outcome.", ["outcome"], registry=r)
        self.poll_failures = Counter(
            "sentiment_registry_poll_failures_total",
            "Champion polls that could not reach or read the registry.",
            registry=r,
        )
        self.last_successful_poll = Gauge(
            "sentiment_registry_last_successful_poll_timestamp_seconds",
            "Unix time of the last poll that read the registry successfully (0: never).",
            registry=r,
        )
        self.queue_requests = Gauge(
            "sentiment_queue_requests", "Prediction requests waiting for the model thread.", registry=r
        )
        self.queue_texts = Gauge("sentiment_queue_texts", "Texts waiting for the model thread.", registry=r)
        self.shed_requests = Counter(
            "sentiment_shed_requests_total",
            "Prediction requests not computed: overloaded (queue full, 503), timeout (deadline, 503) or"
            " client_gone (the client disconnected first).",
            ["reason"],
            registry=r,
        )
        for result in LOAD_RESULTS:
            self.model_loads.labels(result=result)
        for reason in SHED_REASONS:
            self.shed_requests.labels(reason=reason)
        for sentiment in ("negative", "positive"):
            self.predictions.labels(sentiment=sentiment)
        self.model_ready.set(0)
        self._children: dict[tuple[str, str, str], tuple[Counter, Histogram]] = {}
        self._served_labels: tuple[str, str, str] | None = None

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        key = (route, method, str(status))
        children = self._children.get(key)
        if children is None:
            # Route templates and methods are bounded sets, so this cache stays small.
            children = (self.requests.labels(*key), self.latency.labels(*key))
            self._children[key] = children
        children[0].inc()
        children[1].observe(seconds)

    def served_model(self, name: str, version: str, alias: str) -> None:
        """Move the version gauge to the model just swapped in (one labelled series at a time)."""
        labels = (name, version, alias)
        if self._served_labels is not None and self._served_labels != labels:
            self.model_version.remove(*self._served_labels)
        self.model_version.labels(*labels).set(1)
        self._served_labels = labels
        self.model_ready.set(1)
        self.model_loaded_at.set(time.time())

    def render(self) -> bytes:
        return generate_latest(self.registry)


class MetricsMiddleware:
    """Count and time every HTTP request by route template (bounded label values), method and status.

    Pure ASGI (Starlette's BaseHTTPMiddleware costs far more per request). Outermost, so it also sees the 413
    of the body-size cap and the 500 of an unexpected error.
    """

    def __init__(self, app: ASGIApp, metrics: ServiceMetrics, known_paths: frozenset[str]) -> None:
        self.app = app
        self.metrics = metrics
        self.known_paths = known_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            self.metrics.observe_request(self._route(scope), scope["method"], status, time.perf_counter() - started)

    def _route(self, scope: Scope) -> str:
        route = scope.get("route")
        path = getattr(route, "path", None)
        if isinstance(path, str):
            return path
        # Not routed (404, or answered by a middleware such as the 413 body cap): raw path only if it is ours.
        raw = scope.get("path", "")
        return raw if raw in self.known_paths else "unmatched"
