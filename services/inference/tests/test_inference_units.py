"""In-process tests of the parts with logic of their own: settings, validation, the micro-batcher, the poller's
policies (backoff, rejection, rollback), artifact checks, error bodies and logs. No servers: seconds in all."""

from __future__ import annotations

import asyncio
import copy
import json
import logging
import re
import subprocess
import sys
import time
import unicodedata
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import ValidationError
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer

from sentiment_core import registry
from sentiment_core.model import save_pipeline
from sentiment_core.quality_gate import QualityFloors
from sentiment_core.text import WORD_PATTERN, clean_text
from sentiment_inference.main import create_app
from sentiment_inference.metrics import ServiceMetrics
from sentiment_inference.model_store import LoadedModel, ModelRejectedError, ModelStore, validate
from sentiment_inference.poller import ChampionPoller
from sentiment_inference.registry_gateway import ChampionRef, FetchFailedError, MlflowGateway
from sentiment_inference.routes.admin import SeenDeliveries, sign_webhook
from sentiment_inference.schemas import grows_past, has_words, request_models
from sentiment_inference.serving import (
    ClientGoneError,
    DeadlineExceededError,
    MicroBatcher,
    OverloadedError,
    PredictionFailedError,
)
from sentiment_inference.settings import Settings
from services.inference.tests.inference_helpers import TinyModels, sha256, skops_bytes

GOOD_TAGS = {
    "metric.accuracy": "0.85",
    "metric.f1": "0.85",
    "quality.held_out_size": "400",
    "quality.predicted_negative": "200",
    "quality.predicted_positive": "200",
    "lineage.git_commit": "abc",
}


def loaded(pipeline: Any, version: str = "1", tags: dict[str, str] | None = None) -> LoadedModel:
    return LoadedModel.create(
        name="m",
        version=version,
        alias="champion",
        pipeline=pipeline,
        run_id="r",
        tags=GOOD_TAGS if tags is None else tags,
    )


# --- settings -----------------------------------------------------------------------------------------------
def test_settings_defaults_and_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("ADMIN_TOKEN", "MAX_TEXT_CHARS", "POLL_INTERVAL_SECONDS", "LOG_FORMAT", "MODEL_ALIAS"):
        monkeypatch.delenv(name, raising=False)
    defaults = Settings()
    assert (defaults.max_text_chars, defaults.max_batch_size, defaults.max_body_bytes) == (20_000, 256, 1 << 20)
    assert defaults.poll_interval_seconds == 30
    assert defaults.model_alias == "champion"
    assert defaults.admin_token is None
    assert (defaults.host, defaults.port, defaults.workers) == ("0.0.0.0", 8000, 1)  # noqa: S104

    monkeypatch.setenv("ADMIN_TOKEN", "  ")  # blank = not configured, never "the empty token"
    monkeypatch.setenv("POLL_INTERVAL_SECONDS", "2")
    monkeypatch.setenv("LOG_FORMAT", "JSON")
    monkeypatch.setenv("LOG_LEVEL", "debug")
    settings = Settings()
    assert settings.admin_token is None
    assert settings.poll_interval_seconds == 2
    assert (settings.log_format, settings.log_level) == ("json", "DEBUG")

    monkeypatch.setenv("MAX_BATCH_SIZE", "512")
    with pytest.raises(ValueError, match="BATCH_MAX_TEXTS"):
        Settings()


def test_mlflow_progress_bars_are_off_so_json_logs_stay_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", raising=False)
    for name in (
        "MLFLOW_HTTP_REQUEST_TIMEOUT",
        "MLFLOW_HTTP_REQUEST_MAX_RETRIES",
        "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR",
        "MLFLOW_DISABLE_TELEMETRY",
    ):
        monkeypatch.delenv(name, raising=False)
    Settings().apply_mlflow_client_env()
    import os

    assert os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] == "false"


# --- validation ---------------------------------------------------------------------------------------------
def test_validation_accepts_a_real_model(tiny_models: TinyModels) -> None:
    checks = validate(loaded(tiny_models.good_a), floors=QualityFloors())
    assert checks["canary_accuracy"] >= 0.75


@pytest.mark.parametrize(
    ("tags", "message"),
    [
        ({**GOOD_TAGS, "metric.accuracy": "0.55"}, "held-out accuracy 0.5500 below the floor 0.7000"),
        ({**GOOD_TAGS, "metric.f1": "0.6"}, "held-out F1 0.6000 below the floor 0.7000"),
        ({**GOOD_TAGS, "quality.held_out_size": "10"}, "held-out split of 10 reviews, fewer than the minimum 200"),
        ({**GOOD_TAGS, "quality.predicted_negative": "0"}, "predicts only 'positive' on its held-out split"),
        ({}, "no recorded held-out F1"),
        ({"metric.accuracy": "n/a"}, "no recorded held-out accuracy"),
    ],
)
def test_validation_enforces_the_recorded_accuracy_floor(
    tiny_models: TinyModels, tags: dict[str, str], message: str
) -> None:
    with pytest.raises(ModelRejectedError, match=message):
        validate(loaded(tiny_models.good_a, tags=tags), floors=QualityFloors())


def test_validation_rejects_a_single_class_model(tiny_models: TinyModels) -> None:
    with pytest.raises(ModelRejectedError, match=r"predicts only 'positive' on the 12 canary texts"):
        validate(loaded(tiny_models.single_class), floors=QualityFloors())


def test_a_model_with_other_classes_is_rejected(tiny_models: TinyModels) -> None:
    pipeline = copy.deepcopy(tiny_models.good_a)
    pipeline.steps[-1][1].classes_ = pipeline.steps[-1][1].classes_ + 5
    with pytest.raises(ModelRejectedError, match="model classes are"):
        loaded(pipeline)


# --- artifact checks in the gateway -------------------------------------------------------------------------
@pytest.fixture
def gateway_with_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> tuple[MlflowGateway, Path]:
    model_file = tmp_path / "served" / registry.MODEL_FILE
    model_file.parent.mkdir()
    monkeypatch.setattr(registry, "download_version", lambda client, name, version, dst: model_file)
    monkeypatch.setattr(registry, "client", lambda uri: object())
    return MlflowGateway("http://unused", "m", "champion"), model_file


def test_gateway_loads_a_verified_artifact(gateway_with_file: tuple[MlflowGateway, Path], tiny_models: TinyModels):
    gateway, model_file = gateway_with_file
    content = skops_bytes(tiny_models.good_a)
    model_file.write_bytes(content)
    pipeline = gateway.fetch(ChampionRef("1", tags={"model.sha256": sha256(content)}))
    assert pipeline.predict_proba(["a great film"]).shape == (1, 2)


def test_gateway_rejects_a_hash_mismatch(gateway_with_file: tuple[MlflowGateway, Path], tiny_models: TinyModels):
    gateway, model_file = gateway_with_file
    model_file.write_bytes(skops_bytes(tiny_models.good_a))
    with pytest.raises(ModelRejectedError, match=r"differs from the registry's model\.sha256"):
        gateway.fetch(ChampionRef("1", tags={"model.sha256": "0" * 64}))


def test_gateway_rejects_types_outside_the_allow_list(gateway_with_file: tuple[MlflowGateway, Path]) -> None:
    # A FunctionTransformer can call any function on load/predict: exactly what the allow-list keeps out.
    gateway, model_file = gateway_with_file
    save_pipeline(Pipeline([("f", FunctionTransformer(print))]), model_file)
    with pytest.raises(ModelRejectedError, match="outside the allow-list"):
        gateway.fetch(ChampionRef("1"))


def test_gateway_reports_download_failures_as_transient(monkeypatch: pytest.MonkeyPatch) -> None:
    def unreachable(client: object, name: str, version: str, dst: Path) -> Path:
        raise ConnectionError("connection refused")

    monkeypatch.setattr(registry, "download_version", unreachable)
    monkeypatch.setattr(registry, "client", lambda uri: object())
    with pytest.raises(FetchFailedError, match="connection refused"):
        MlflowGateway("http://unused", "m", "champion").fetch(ChampionRef("1"))


# --- micro-batching -----------------------------------------------------------------------------------------
class CountingPipeline:
    """Wraps a real pipeline and records the size of every predict_proba call."""

    def __init__(self, pipeline: Pipeline, delay: float = 0.0) -> None:
        self.pipeline = pipeline
        self.classes_ = pipeline.classes_
        self.calls: list[int] = []
        self.delay = delay

    def predict_proba(self, texts: list[str]) -> Any:
        assert all(isinstance(text, str) for text in texts)  # plain strings, never a DataFrame
        self.calls.append(len(texts))
        time.sleep(self.delay)
        return self.pipeline.predict_proba(texts)


def test_concurrent_requests_share_vectorised_calls_and_keep_their_order(tiny_models: TinyModels) -> None:
    counting = CountingPipeline(tiny_models.good_a, delay=0.01)
    texts = [f"review {i}: {'great fun' if i % 2 else 'dreadful mess'}" for i in range(40)]
    expected = tiny_models.good_a.predict(texts)

    async def scenario() -> list[Any]:
        store = ModelStore()
        store.swap(loaded(counting))
        batcher = MicroBatcher(store, ServiceMetrics(), max_texts=256, max_wait_seconds=0.002)
        batcher.start()
        try:
            return await asyncio.gather(*(batcher.predict([text]) for text in texts))
        finally:
            await batcher.stop()

    results = asyncio.run(scenario())
    labels = [result.labels[0] for result in results]
    assert labels == ["positive" if label == 1 else "negative" for label in expected]
    assert sum(counting.calls) == len(texts)
    assert len(counting.calls) <= 3, counting.calls  # 40 concurrent requests -> a handful of calls


def test_a_lone_request_is_not_held_back(tiny_models: TinyModels) -> None:
    counting = CountingPipeline(tiny_models.good_a)
    window = 30.0

    async def scenario() -> None:
        store = ModelStore()
        store.swap(loaded(counting))
        batcher = MicroBatcher(store, ServiceMetrics(), max_texts=256, max_wait_seconds=window)
        batcher.start()
        try:
            # With a 30 s gathering window, 20 lone requests that waited for it would take 10 minutes; answered at
            # once they take milliseconds. The bound is far from both, so a loaded machine cannot flip the verdict.
            for _ in range(20):
                await asyncio.wait_for(batcher.predict(["a lone request"]), timeout=window / 3)
        finally:
            await batcher.stop()

    asyncio.run(scenario())
    assert counting.calls == [1] * 20


def test_batches_are_capped_and_a_request_that_fits_is_never_split(tiny_models: TinyModels) -> None:
    counting = CountingPipeline(tiny_models.good_a, delay=0.005)

    async def scenario() -> None:
        store = ModelStore()
        store.swap(loaded(counting))
        batcher = MicroBatcher(store, ServiceMetrics(), max_texts=10, max_wait_seconds=0.002)
        batcher.start()
        try:
            sizes = [4, 4, 4, 7, 1, 12]
            results = await asyncio.gather(*(batcher.predict(["good film"] * n) for n in sizes))
            assert [len(r.labels) for r in results] == sizes
        finally:
            await batcher.stop()

    asyncio.run(scenario())
    assert all(size <= 10 for size in counting.calls), counting.calls
    # Requests that fit are never split (4+4, then 4: the 7 waits for the next call, with the 1); the one larger
    # than the cap is predicted in slices of it, alone.
    assert counting.calls == [8, 4, 8, 10, 2], counting.calls


def test_a_small_request_is_answered_between_the_slices_of_a_large_one(tiny_models: TinyModels) -> None:
    slow = RecordingPipeline(tiny_models.good_a, delay=0.05)
    batcher, _ = make_batcher(slow, max_chars=32_768)
    long_review = "a good film, " * 320  # 4,160 characters: 7 of them per model call
    small_review = "the small one"

    async def scenario() -> None:
        batcher.start()
        try:
            large = asyncio.ensure_future(batcher.predict([long_review] * 64))
            await asyncio.sleep(0.02)  # the large request's first slice is in the model thread
            small = await batcher.predict([small_review])
            assert small.labels
            assert not large.done()  # served before the large request's other slices
            assert len((await large).labels) == 64
        finally:
            await batcher.stop()

    asyncio.run(scenario())
    assert slow.seen[: slow.seen.index(small_review)] == [long_review] * 7  # it waited for one slice only
    assert max(slow.call_chars) <= 32_768  # each call capped by cost (characters), not only by count
    assert slow.seen.count(long_review) == 64


def test_a_large_request_keeps_one_model_version_across_its_slices(tiny_models: TinyModels) -> None:
    slow = RecordingPipeline(tiny_models.good_a, delay=0.05)
    store, metrics = ModelStore(), ServiceMetrics()
    store.swap(loaded(slow, "1"))
    batcher = MicroBatcher(store, metrics, max_texts=256, max_wait_seconds=0.002, max_chars=40)

    async def scenario() -> tuple[str, str]:
        batcher.start()
        try:
            large = asyncio.ensure_future(batcher.predict(["a good film"] * 12))  # 3 per call: 4 slices
            await asyncio.sleep(0.02)
            store.swap(loaded(tiny_models.good_b, "2"))  # the alias moved during the large request
            small = await batcher.predict(["after the swap"])
            return (await large).version, small.version
        finally:
            await batcher.stop()

    assert asyncio.run(scenario()) == ("1", "2")


def test_the_gil_switch_interval_is_set_once_at_start_up_and_a_load_keeps_it(tiny_models: TinyModels) -> None:
    # Process-wide: the poller used to shorten it during a load and restore it after (issue 15, item 10).
    original = sys.getswitchinterval()
    try:
        app = create_app(Settings(GIL_SWITCH_INTERVAL_MS=2.5), gateway=FakeGateway({}))

        async def start_and_stop() -> float:
            async with app.router.lifespan_context(app):
                return sys.getswitchinterval()

        assert asyncio.run(start_and_stop()) == pytest.approx(0.0025)

        gateway = FakeGateway({"1": tiny_models.good_a})
        during_load: list[float] = []
        fetch = gateway.fetch
        gateway.fetch = lambda ref: during_load.append(sys.getswitchinterval()) or fetch(ref)  # type: ignore[method-assign]
        poller, _, _ = make_poller(gateway)
        gateway.champion_version = "1"
        assert asyncio.run(poller.poll_once()).outcome == "loaded"
        assert during_load == [pytest.approx(0.0025)]
        assert sys.getswitchinterval() == pytest.approx(0.0025)
    finally:
        sys.setswitchinterval(original)


# --- the poller's policies ----------------------------------------------------------------------------------
class FakeGateway:
    def __init__(self, pipelines: dict[str, Any]) -> None:
        self.pipelines = pipelines
        self.champion_version: str | None = None
        self.tags: dict[str, dict[str, str]] = {}
        self.down = False
        self.store_down = False
        self.fetches: list[str] = []
        self.history: list[str] = []  # champion.history, oldest first

    def champion(self) -> ChampionRef | None:
        if self.down:
            raise ConnectionError("registry unreachable")
        if self.champion_version is None:
            return None
        return ChampionRef(self.champion_version, "run", self.tags.get(self.champion_version, GOOD_TAGS))

    def fetch(self, ref: ChampionRef) -> Any:
        self.fetches.append(ref.version)
        if self.down or self.store_down:
            raise FetchFailedError("artifact store unreachable")
        return self.pipelines[ref.version]

    def champion_history(self) -> list[ChampionRef]:
        if self.down:
            raise ConnectionError("registry unreachable")
        return [ChampionRef(v, "run", self.tags.get(v, GOOD_TAGS)) for v in reversed(self.history)]


def make_poller(gateway: FakeGateway, **overrides: Any) -> tuple[ChampionPoller, ModelStore, ServiceMetrics]:
    store, metrics = ModelStore(), ServiceMetrics()
    options = {
        "model_name": "m",
        "alias": "champion",
        "interval": 1.0,
        "max_backoff": 8.0,
        "rejected_retry_seconds": 600.0,
        "floors": QualityFloors(),
        **overrides,
    }
    return ChampionPoller(gateway=gateway, store=store, metrics=metrics, **options), store, metrics


def test_a_forced_poll_waits_for_the_running_one_before_forgetting_rejections(tiny_models: TinyModels) -> None:
    """Issue 15, item 10: `force` clears the rejections inside the poll lock, so a poll already running cannot
    record a rejection after the clear and turn the admin's forced retry into "skipped"."""
    import threading

    gateway = FakeGateway({"1": tiny_models.good_a, "2": tiny_models.single_class})
    fetching, release = threading.Event(), threading.Event()
    plain_fetch = gateway.fetch

    def slow_fetch(ref: ChampionRef) -> Any:
        if ref.version == "2" and not release.is_set():
            fetching.set()
            release.wait(timeout=10)
        return plain_fetch(ref)

    gateway.fetch = slow_fetch  # type: ignore[method-assign]
    poller, store, _ = make_poller(gateway)

    async def scenario() -> None:
        gateway.champion_version = "1"
        assert (await poller.poll_once()).outcome == "loaded"
        gateway.champion_version = "2"  # a single-class model: rejected
        running = asyncio.create_task(poller.poll_once())
        for _ in range(1000):  # bounded: the running poll reaches the download within seconds
            if fetching.is_set():
                break
            await asyncio.sleep(0.01)
        assert fetching.is_set()
        forced = asyncio.create_task(poller.poll_now(force=True))
        await asyncio.sleep(0.05)  # the forced poll is now waiting for the lock
        release.set()
        assert (await running).outcome == "rejected"
        forced_result = await forced
        assert forced_result.outcome == "rejected", forced_result
        assert gateway.fetches.count("2") == 2
        assert store.current is not None
        assert store.current.version == "1"

    asyncio.run(scenario())


def sample(metrics: ServiceMetrics, metric_name: str, **labels: str) -> float:
    value = metrics.registry.get_sample_value(metric_name, labels)
    return value or 0.0


def test_poller_follows_the_alias_rejects_bad_versions_once_and_rolls_back_instantly(tiny_models: TinyModels) -> None:
    gateway = FakeGateway({"1": tiny_models.good_a, "2": tiny_models.single_class, "3": tiny_models.good_b})
    poller, store, metrics = make_poller(gateway)

    async def scenario() -> None:
        assert (await poller.poll_once()).outcome == "no_champion"
        assert store.current is None

        gateway.champion_version = "1"
        assert (await poller.poll_once()).outcome == "loaded"
        assert store.current is not None
        assert store.current.version == "1"
        assert (await poller.poll_once()).outcome == "unchanged"

        gateway.champion_version = "2"  # a single-class model
        result = await poller.poll_once()
        assert result.outcome == "rejected"
        assert "predicts only" in result.message
        assert store.current.version == "1"
        for _ in range(3):  # not retried on every poll
            assert (await poller.poll_once()).outcome == "skipped"
        assert gateway.fetches.count("2") == 1
        assert sample(metrics, "sentiment_model_loads_total", result="rejected") == 1

        forced = await poller.poll_now(force=True)  # an admin reload retries it (and it fails again)
        assert forced.outcome == "rejected"
        assert gateway.fetches.count("2") == 2

        gateway.champion_version = "3"
        assert (await poller.poll_once()).outcome == "loaded"
        gateway.champion_version = "1"  # rollback: the previous model is the warm standby
        assert (await poller.poll_once()).outcome == "restored"
        assert store.current.version == "1"
        assert gateway.fetches.count("1") == 1
        assert sample(metrics, "sentiment_model_version_info", name="m", version="1", alias="champion") == 1
        assert sample(metrics, "sentiment_model_version_info", name="m", version="3", alias="champion") == 0

    asyncio.run(scenario())


def test_poller_keeps_serving_and_backs_off_while_the_registry_is_down(tiny_models: TinyModels) -> None:
    gateway = FakeGateway({"1": tiny_models.good_a, "2": tiny_models.good_b})
    poller, store, metrics = make_poller(gateway, max_backoff=8.0)

    async def scenario() -> None:
        gateway.champion_version = "1"
        await poller.poll_once()
        gateway.down = True
        delays = []
        for _ in range(5):
            assert (await poller.poll_once()).outcome == "failed"
            delays.append(poller._next_delay())
        assert store.current is not None
        assert store.current.version == "1"
        assert sample(metrics, "sentiment_registry_poll_failures_total") == 5
        # Exponential, jittered, capped.
        assert delays[0] < delays[2] <= 8.0
        assert all(delay <= 8.0 for delay in delays)

        gateway.down = False
        gateway.champion_version = "2"
        assert (await poller.poll_once()).outcome == "loaded"
        assert poller._next_delay() == 1.0
        assert sample(metrics, "sentiment_registry_last_successful_poll_timestamp_seconds") > 0

    asyncio.run(scenario())


def test_a_failed_download_is_retried_not_rejected(tiny_models: TinyModels) -> None:
    gateway = FakeGateway({"1": tiny_models.good_a})
    poller, store, metrics = make_poller(gateway)

    async def scenario() -> None:
        gateway.champion_version = "1"
        gateway.store_down = True
        assert (await poller.poll_once()).outcome == "failed"
        assert sample(metrics, "sentiment_model_loads_total", result="failed") == 1
        assert poller._next_delay() > 1.0  # backing off
        gateway.store_down = False
        assert (await poller.poll_once()).outcome == "loaded"
        assert store.current is not None

    asyncio.run(scenario())


def test_a_cold_start_under_a_junk_champion_serves_an_earlier_one_then_swaps_back(tiny_models: TinyModels) -> None:
    """Issue 12: a replica that started while the champion was junk served nothing (503 no_champion)."""
    gateway = FakeGateway({"1": tiny_models.good_a, "2": tiny_models.good_b, "3": tiny_models.single_class})
    gateway.history = ["1", "2", "3"]
    gateway.champion_version = "3"  # passes the held-out tags, fails the canaries: one class only
    gateway.tags["2"] = {**GOOD_TAGS, "quality.held_out_size": "10"}  # below the floors too: skipped
    poller, store, _ = make_poller(gateway, rejected_retry_seconds=0.05)

    async def scenario() -> None:
        result = await poller.poll_once()
        assert result.outcome == "fallback", result
        assert result.version == "1"
        assert store.current is not None
        assert store.current.version == "1"
        assert poller.serving_mode() == "fallback"
        rejection = poller.champion_rejection()
        assert rejection is not None
        assert rejection["version"] == "3"
        assert "predicts only 'positive'" in rejection["reason"]
        assert "fewer than the minimum 200" in poller.state.rejected["2"].reason

        # The alias moves back to a version that now clears the floors: it serves, the fallback ends.
        gateway.tags["2"] = GOOD_TAGS
        gateway.champion_version = "2"
        await asyncio.sleep(0.2)  # past the rejected version's retry time
        assert (await poller.poll_once()).outcome == "loaded"
        assert store.current.version == "2"
        assert poller.serving_mode() == "champion"
        assert poller.champion_rejection() is None

    asyncio.run(scenario())


def test_no_fallback_without_an_earlier_servable_champion(tiny_models: TinyModels) -> None:
    gateway = FakeGateway({"3": tiny_models.single_class})
    gateway.history = ["3"]
    gateway.champion_version = "3"
    poller, store, _ = make_poller(gateway)

    async def scenario() -> None:
        assert (await poller.poll_once()).outcome == "rejected"
        assert store.current is None
        assert poller.serving_mode() == "none"
        assert (await poller.poll_once()).outcome == "skipped"

    asyncio.run(scenario())


def test_public_views_hide_internal_hosts_the_admin_view_keeps_them(tiny_models: TinyModels) -> None:
    """Issue 12, item 12: /model-info showed anonymous callers the internal MLflow URL of a failed poll."""
    leak = "HTTPConnectionPool(host='mlflow.internal', port=5000): Max retries exceeded with url: /api/2.0/x"

    class Unreachable(FakeGateway):
        def champion(self) -> ChampionRef | None:
            raise ConnectionError(leak + " (http://10.1.2.3:5000/api)")

    gateway = Unreachable({})
    app = create_app(Settings(ADMIN_TOKEN="t0ken-for-tests-only"), gateway=gateway)

    async def scenario() -> list[httpx.Response]:
        await app.state.service.poller.poll_once()
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://app") as client:
            return [
                await client.get("/model-info"),
                await client.get("/health"),
                await client.post("/admin/reload", headers={"Authorization": "Bearer t0ken-for-tests-only"}),
            ]

    info, health, admin = asyncio.run(scenario())
    assert info.json()["poll"]["last_poll_result"] == "failed"
    message = info.json()["poll"]["last_poll_message"]
    assert message.startswith("registry unreachable: HTTPConnectionPool(<redacted>, <redacted>)")
    for secret in ("mlflow.internal", "5000", "10.1.2.3", "/api/2.0"):
        assert secret not in info.text
        assert secret not in health.text
    assert health.json()["serving"] == "none"
    assert "mlflow.internal" in admin.json()["message"]


# --- app-level behaviour that needs no server ---------------------------------------------------------------
def test_unexpected_errors_get_the_uniform_500_body() -> None:
    app = create_app(Settings())

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("kaput")

    async def scenario() -> httpx.Response:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:
            return await client.get("/boom")

    response = asyncio.run(scenario())
    assert response.status_code == 500
    assert response.json() == {
        "error": {
            "code": "internal_error",
            "message": "internal error; it was logged. Retry, or report it if it persists",
        }
    }
    assert "kaput" not in response.text


def test_admin_endpoint_is_disabled_without_a_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ADMIN_TOKEN", raising=False)
    app = create_app(Settings())

    async def scenario() -> list[httpx.Response]:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://app") as client:
            return [
                await client.post("/admin/reload"),
                await client.post("/admin/reload", headers={"Authorization": "Bearer anything"}),
                await client.post("/webhooks/mlflow", content=b"{}"),
            ]

    for response in asyncio.run(scenario()):
        assert response.status_code == 403
        assert "disabled" in response.json()["error"]["message"]


def test_webhook_signature_matches_mlflow() -> None:
    from mlflow.webhooks.delivery import _generate_hmac_signature

    payload = json.dumps({"entity": "model_version_alias", "action": "created"})
    ours = sign_webhook("s3cret", "delivery-1", "1700000000", payload.encode())
    assert ours == _generate_hmac_signature("s3cret", "delivery-1", "1700000000", payload)


def test_the_service_stays_lean() -> None:
    """Serving imports MLflow's client only: no MLflow server, no Prefect, no Flask."""
    code = (
        "import sys\n"
        "from sentiment_inference.main import create_app\n"
        "from sentiment_inference.registry_gateway import MlflowGateway\n"
        "import sentiment_core.registry\n"
        "create_app()\n"
        "heavy = sorted({m.split('.')[0] + ('.server' if m.startswith('mlflow.server') else '')"
        " for m in sys.modules if m.startswith(('prefect', 'mlflow.server', 'flask'))})\n"
        "print(','.join(heavy))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert result.stdout.strip() == "", result.stdout


# --- backpressure, abandoned work, failure isolation (issue 12 items 1, issue 15 item 10) ----------------------
class RecordingPipeline:
    """A real pipeline that records every text it is asked to predict; it can be slow or fail on a poison text."""

    def __init__(self, pipeline: Pipeline, delay: float = 0.0, poison: str | None = None) -> None:
        self.pipeline = pipeline
        self.classes_ = pipeline.classes_
        self.delay = delay
        self.poison = poison
        self.seen: list[str] = []
        self.call_chars: list[int] = []  # characters read by each model call

    def predict_proba(self, texts: list[str]) -> Any:
        self.seen.extend(texts)
        self.call_chars.append(sum(len(text) for text in texts))
        time.sleep(self.delay)
        if self.poison is not None and self.poison in texts:
            raise ValueError("the model cannot read this text")
        return self.pipeline.predict_proba(texts)


def make_batcher(pipeline: Any, **options: Any) -> tuple[MicroBatcher, ServiceMetrics]:
    store, metrics = ModelStore(), ServiceMetrics()
    store.swap(loaded(pipeline))
    batcher = MicroBatcher(store, metrics, max_texts=256, max_wait_seconds=0.002, **options)
    return batcher, metrics


def test_a_full_queue_sheds_at_once_instead_of_queueing(tiny_models: TinyModels) -> None:
    slow = RecordingPipeline(tiny_models.good_a, delay=0.3)
    batcher, metrics = make_batcher(slow, max_queue_requests=2, max_queue_texts=300)

    async def scenario() -> list[Any]:
        batcher.start()
        try:
            first = asyncio.ensure_future(batcher.predict(["occupies the model thread"]))
            await asyncio.sleep(0.05)
            waiting = [asyncio.ensure_future(batcher.predict([f"queued {i}"])) for i in range(2)]
            await asyncio.sleep(0)
            started = time.perf_counter()
            with pytest.raises(OverloadedError, match="QUEUE_MAX_REQUESTS=2"):
                await batcher.predict(["one request too many"])
            with pytest.raises(OverloadedError):  # texts are bounded too, whatever the request count
                await batcher.predict(["x"] * 299)
            refused_in = time.perf_counter() - started
            results = await asyncio.gather(first, *waiting)
            return [refused_in, *results]
        finally:
            await batcher.stop()

    refused_in, *results = asyncio.run(scenario())
    assert refused_in < 0.05, refused_in  # refused at once, not after the queue drained
    assert len(results) == 3
    assert "one request too many" not in slow.seen
    assert sample(metrics, "sentiment_shed_requests_total", reason="overloaded") == 2


def test_a_request_past_its_deadline_gets_a_timeout(tiny_models: TinyModels) -> None:
    batcher, metrics = make_batcher(RecordingPipeline(tiny_models.good_a, delay=0.4), deadline_seconds=0.1)

    async def scenario() -> float:
        batcher.start()
        try:
            started = time.perf_counter()
            with pytest.raises(DeadlineExceededError, match="REQUEST_TIMEOUT_SECONDS"):
                await batcher.predict(["a slow call"])
            return time.perf_counter() - started
        finally:
            await batcher.stop()

    assert asyncio.run(scenario()) < 0.3
    assert sample(metrics, "sentiment_shed_requests_total", reason="timeout") == 1


def test_a_request_whose_client_left_is_not_computed(tiny_models: TinyModels) -> None:
    slow = RecordingPipeline(tiny_models.good_a, delay=0.2)
    batcher, metrics = make_batcher(slow)

    async def scenario() -> None:
        batcher.start()
        gone = asyncio.Event()

        async def abandoned() -> None:
            await gone.wait()

        try:
            first = asyncio.ensure_future(batcher.predict(["occupies the model thread"]))
            await asyncio.sleep(0.05)
            left = asyncio.ensure_future(batcher.predict(["nobody waits for this"] * 100, abandoned))
            await asyncio.sleep(0.01)
            assert sample(metrics, "sentiment_queue_texts") == 100
            gone.set()
            with pytest.raises(ClientGoneError):
                await left
            assert sample(metrics, "sentiment_queue_texts") == 0  # its place is freed at once
            await first
            await batcher.predict(["the next request is served"])
        finally:
            await batcher.stop()

    asyncio.run(scenario())
    assert "nobody waits for this" not in slow.seen
    assert "the next request is served" in slow.seen
    assert sample(metrics, "sentiment_shed_requests_total", reason="client_gone") == 1


def test_one_failing_text_fails_only_its_own_request(tiny_models: TinyModels) -> None:
    poisoned = RecordingPipeline(tiny_models.good_a, delay=0.01, poison="poison")
    batcher, _ = make_batcher(poisoned)

    async def scenario() -> list[Any]:
        batcher.start()
        try:
            texts = [["a great film"], ["poison"], ["an awful film"], ["fine", "dull"]]
            return await asyncio.gather(*(batcher.predict(t) for t in texts), return_exceptions=True)
        finally:
            await batcher.stop()

    results = asyncio.run(scenario())
    assert isinstance(results[1], PredictionFailedError)
    assert [r.labels for i, r in enumerate(results) if i != 1] == [["positive"], ["negative"], ["positive", "negative"]]


# --- the app in-process: bodies of shed, refused and malformed requests ---------------------------------------
def app_serving(pipeline: Any, **settings: Any) -> Any:
    app = create_app(Settings(**settings))
    app.state.service.store.swap(loaded(pipeline))
    return app


async def asgi_requests(app: Any, requests: list[tuple[str, str, bytes, dict[str, str]]]) -> list[httpx.Response]:
    """Send requests concurrently to the app with its batcher running (no lifespan: no poller, no registry)."""
    batcher = app.state.service.batcher
    batcher.start()
    try:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:
            calls = [
                client.request(method, path, content=body, headers=headers) for method, path, body, headers in requests
            ]
            return list(await asyncio.gather(*calls))
    finally:
        await batcher.stop()


JSON_HEADERS = {"content-type": "application/json"}


def predict_body(text: str) -> tuple[str, str, bytes, dict[str, str]]:
    return ("POST", "/predict", json.dumps({"text": text}).encode(), JSON_HEADERS)


def test_predict_sheds_with_503_overloaded_and_retry_after(tiny_models: TinyModels) -> None:
    app = app_serving(RecordingPipeline(tiny_models.good_a, delay=0.2), queue_max_requests=1)
    responses = asyncio.run(asgi_requests(app, [predict_body(f"review {i}") for i in range(6)]))
    statuses = sorted(r.status_code for r in responses)
    assert 200 in statuses
    shed = [r for r in responses if r.status_code == 503]
    assert shed, statuses
    for response in shed:
        assert response.json()["error"]["code"] == "overloaded"
        assert response.headers["retry-after"] == "1"


def test_predict_past_its_deadline_is_503_timeout(tiny_models: TinyModels) -> None:
    app = app_serving(RecordingPipeline(tiny_models.good_a, delay=0.3), request_timeout_seconds=0.05)
    [response] = asyncio.run(asgi_requests(app, [predict_body("slow")]))
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "timeout"
    assert response.headers["retry-after"] == "1"


def test_a_disconnected_client_is_dropped_before_its_model_call(tiny_models: TinyModels) -> None:
    """Raw ASGI: the body arrives, then `http.disconnect` while the request waits in the queue."""
    slow = RecordingPipeline(tiny_models.good_a, delay=0.2)
    app = app_serving(slow)
    body = json.dumps({"texts": ["abandoned heavy batch"] * 64}).encode()
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
        "path": "/predict/batch", "raw_path": b"/predict/batch", "query_string": b"", "root_path": "",
        "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80),
    }  # fmt: skip

    async def scenario() -> list[dict[str, Any]]:
        batcher = app.state.service.batcher
        batcher.start()
        gone = asyncio.Event()
        delivered = False
        sent: list[dict[str, Any]] = []

        async def receive() -> dict[str, Any]:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            await gone.wait()
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        try:
            first = asyncio.ensure_future(batcher.predict(["occupies the model thread"]))
            await asyncio.sleep(0.05)
            request = asyncio.ensure_future(app(scope, receive, send))
            await asyncio.sleep(0.05)
            gone.set()
            await request
            await first
        finally:
            await batcher.stop()
        return sent

    sent = asyncio.run(scenario())
    assert sent[0]["status"] == 499  # recorded in the metrics; the client is gone
    assert "abandoned heavy batch" not in slow.seen


NO_WORDS = {
    "emoji": "\U0001f600" * 5000,
    "zero-width spaces": "\u200b" * 10,
    "NUL": "\x00",
    "lone BOM": "\ufeff",
    "only tags": "<br /><br />",
    "only an entity": "&amp;",
}


@pytest.mark.parametrize("text", NO_WORDS.values(), ids=NO_WORDS.keys())
def test_texts_without_words_get_the_422_empty_text_gets(tiny_models: TinyModels, text: str) -> None:
    app = app_serving(tiny_models.good_a)
    single, batch = asyncio.run(
        asgi_requests(
            app,
            [
                predict_body(text),
                ("POST", "/predict/batch", json.dumps({"texts": ["good", text]}).encode(), JSON_HEADERS),
            ],
        )
    )
    assert single.status_code == batch.status_code == 422
    assert single.json()["error"]["code"] == "invalid_request"
    assert "contains no words" in single.json()["error"]["message"]
    assert batch.json()["error"]["details"][0]["field"] == "texts.1"


def test_no_words_agrees_with_the_models_cleaner_and_tokeniser(tiny_models: TinyModels) -> None:
    tricky = [*NO_WORDS.values(), "good", "<b>x</b>", "&lt;great&gt;", "&#97;", "!", "\uff47\uff4f", "& so", "<" * 300]
    for text in tricky + tiny_models.eval_texts[:200]:
        assert has_words(text) == (re.search(WORD_PATTERN, clean_text(text)) is not None), text[:40]


def test_text_length_is_checked_after_nfkc_normalisation(tiny_models: TinyModels) -> None:
    app = app_serving(tiny_models.good_a)
    started = time.perf_counter()
    [expanded, ascii_text] = asyncio.run(
        asgi_requests(app, [predict_body("\ufdfa" * 20_000), predict_body("x" * 20_000)])
    )
    assert time.perf_counter() - started < 5
    assert expanded.status_code == 422
    assert "grows to 360000 characters under Unicode NFKC normalisation" in expanded.json()["error"]["message"]
    assert ascii_text.status_code == 200
    assert grows_past("\ufdfa" * 1111, 20_000) is False  # 19,998 characters once normalised: accepted
    assert grows_past("\ufdfa" * 1112, 20_000) is True


def test_an_expanding_text_is_refused_without_python_work_per_character(monkeypatch: pytest.MonkeyPatch) -> None:
    # Under a flood of such refusals every millisecond counts: the bound looks characters up in a table (built
    # once) instead of making a Python call, or even a Python object, per character of the text.
    predict_request, _ = request_models(20_000, 256)
    predict_request.model_validate({"text": "un très bon film"})  # the first non-ASCII text builds the table
    normalised: list[int] = []
    normalize = unicodedata.normalize
    monkeypatch.setattr(
        unicodedata, "normalize", lambda form, text: normalised.append(len(text)) or normalize(form, text)
    )
    # One U+FDFA (+17) and 19,999 distinct CJK ideographs (NFKC-stable): 20,017 characters once normalised.
    text = "\ufdfa" + "".join(chr(0x4E00 + i) for i in range(19_999))
    with pytest.raises(ValidationError, match="grows to 20017 characters"):
        predict_request.model_validate({"text": text})
    assert normalised == []


UNPARSABLE = {
    "invalid UTF-8 in a string": (b'{"text": "caf\xe9"}', "not valid UTF-8"),
    "nesting 100,000 deep": (b'{"text": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", "nested too deeply"),
    "an integer of 500,000 digits": (b'{"text": ' + b"9" * 500_000 + b"}", "more than 4300 digits"),
}


@pytest.mark.parametrize(("body", "message"), UNPARSABLE.values(), ids=UNPARSABLE.keys())
def test_unparsable_bodies_keep_the_documented_400_body(tiny_models: TinyModels, body: bytes, message: str) -> None:
    app = app_serving(tiny_models.good_a)
    [response] = asyncio.run(asgi_requests(app, [("POST", "/predict", body, JSON_HEADERS)]))
    assert response.status_code == 400
    assert set(response.json()) == {"error"}
    assert response.json()["error"]["code"] == "invalid_json"
    assert message in response.json()["error"]["message"]


WEBHOOK_TEST_SECRET = "s3cret"


def signed(body: bytes, delivery: str, secret: str = WEBHOOK_TEST_SECRET) -> dict[str, str]:
    stamp = str(int(time.time()))
    return {
        **JSON_HEADERS,
        "X-MLflow-Delivery-Id": delivery,
        "X-MLflow-Timestamp": stamp,
        "X-MLflow-Signature": sign_webhook(secret, delivery, stamp, body),
    }


def test_a_deeply_nested_signed_webhook_is_a_400_with_one_log_line(
    tiny_models: TinyModels, caplog: pytest.LogCaptureFixture
) -> None:
    app = app_serving(tiny_models.good_a, webhook_secret="s3cret")
    body = b"[" * 100_000 + b"]" * 100_000
    with caplog.at_level(logging.WARNING):
        [response] = asyncio.run(asgi_requests(app, [("POST", "/webhooks/mlflow", body, signed(body, "deep-1"))]))
    assert response.status_code == 400
    assert response.json()["error"] == {
        "code": "invalid_json",
        "message": "the body is not valid JSON: it is nested too deeply; send a flat JSON object",
    }
    assert len([r for r in caplog.records if r.levelno >= logging.WARNING]) == 1
    assert not [r for r in caplog.records if r.exc_info]


def test_a_replayed_webhook_delivery_is_refused(tiny_models: TinyModels) -> None:
    app = app_serving(tiny_models.good_a, webhook_secret="s3cret")
    body = json.dumps({"data": {"name": "another-model"}}).encode()
    headers = signed(body, "delivery-42")

    async def scenario() -> list[httpx.Response]:
        first = await asgi_requests(app, [("POST", "/webhooks/mlflow", body, headers)])
        again = await asgi_requests(app, [("POST", "/webhooks/mlflow", body, headers)])
        other = await asgi_requests(app, [("POST", "/webhooks/mlflow", body, signed(body, "delivery-43"))])
        return first + again + other

    first, again, other = asyncio.run(scenario())
    assert first.status_code == 202
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "duplicate_delivery"
    assert other.status_code == 202


def test_seen_deliveries_expire_with_the_window_and_stay_bounded() -> None:
    seen = SeenDeliveries(max_entries=3)
    now = 1_000_000.0
    assert seen.first_time("a", int(now), now)
    assert not seen.first_time("a", int(now), now + 299)
    assert seen.first_time("a", int(now), now + 301)  # its timestamp is now refused as too old anyway
    for name in "bcde":
        assert seen.first_time(name, int(now) + 302, now + 302)
    assert len(seen._expiry) == 3


def test_failed_admin_logins_are_logged_without_the_token(
    tiny_models: TinyModels, caplog: pytest.LogCaptureFixture
) -> None:
    app = app_serving(tiny_models.good_a, admin_token="the-real-token")
    with caplog.at_level(logging.WARNING, logger="sentiment_inference.routes.admin"):
        responses = asyncio.run(
            asgi_requests(
                app,
                [
                    ("POST", "/admin/reload", b"", {"Authorization": "Bearer the-real-tokeX"}),
                    ("POST", "/admin/reload", b"", {}),
                ],
            )
        )
    assert [r.status_code for r in responses] == [401, 401]
    lines = [r.getMessage() for r in caplog.records if r.name == "sentiment_inference.routes.admin"]
    assert len(lines) == 2
    assert all("admin login failed" in line and "127.0.0.1" in line for line in lines), lines
    assert not [line for line in lines if "the-real-tok" in line]


def test_a_large_request_abandoned_mid_call_stops_after_one_slice(tiny_models: TinyModels) -> None:
    slow = RecordingPipeline(tiny_models.good_a, delay=0.2)
    slice_texts = 64
    batcher, _ = make_batcher(slow, max_chars=len("abandoned") * slice_texts)
    size = slice_texts * 2

    async def scenario() -> None:
        batcher.start()
        gone = asyncio.Event()

        async def abandoned() -> None:
            await gone.wait()

        try:
            request = asyncio.ensure_future(batcher.predict(["abandoned"] * size, abandoned))
            await asyncio.sleep(0.1)  # its first slice is in the model thread
            gone.set()
            with pytest.raises(ClientGoneError):
                await request
            await asyncio.sleep(0.3)
            complete = await batcher.predict(["whole"] * size)
            assert len(complete.labels) == size
        finally:
            await batcher.stop()

    asyncio.run(scenario())
    assert slow.seen.count("abandoned") == slice_texts
