"""The champion poller end to end: real MLflow (Postgres + MinIO), the service under uvicorn as a subprocess."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from sentiment_core.data import load_dataset
from sentiment_core.model import ModelConfig, build_pipeline
from sentiment_inference.routes.health import NO_CHAMPION_YET
from sentiment_local.process import free_port
from sentiment_local.servers import HttpServer, start_mlflow
from services.inference.tests.inference_helpers import (
    ModelRegistry,
    SharedLogged,
    TinyModels,
    metric,
    serving_version,
    wait_for,
)

pytestmark = pytest.mark.slow

# Poll interval 1 s in these tests; "served within poll interval + a few seconds".
PICKUP_SECONDS = 1 + 8


@dataclass
class LoadClient:
    """A client that keeps sending /predict until stopped, recording every outcome."""

    url: str
    statuses: list[int] = field(default_factory=list)
    versions: list[str] = field(default_factory=list)
    mismatched_headers: int = 0
    errors: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    latest: str | None = None

    def start(self) -> LoadClient:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        texts = ["a moving, beautiful film", "boring and far too long", "great cast, weak script"]
        with httpx.Client(base_url=self.url, timeout=10) as client:
            i = 0
            deadline = time.monotonic() + 180  # bounded even if the test forgets to stop it
            while not self._stop.is_set() and time.monotonic() < deadline:
                i += 1
                try:
                    response = client.post("/predict", json={"text": texts[i % len(texts)]})
                except httpx.HTTPError as error:
                    self.errors.append(repr(error))
                    continue
                self.statuses.append(response.status_code)
                if response.status_code != 200:
                    self.errors.append(f"{response.status_code}: {response.text}")
                    continue
                version = response.json()["model_version"]
                if response.headers.get("x-model-version") != version:
                    self.mismatched_headers += 1
                self.versions.append(version)
                self.latest = version

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=15)


def test_starts_without_champion_then_follows_every_alias_move_under_load(
    shared_registry: ModelRegistry,
    shared_logged: SharedLogged,
    model_name: str,
    start_service: Callable[..., HttpServer],
) -> None:
    service = start_service(shared_registry.tracking_uri, model_name)

    # 1. No champion yet: the service is up (live) and, once the registry said it has no champion, Ready (a fresh
    # install must not wait forever for pods that nothing could make Ready); predictions say why they cannot answer.
    assert httpx.get(f"{service.url}/health/live", timeout=5).status_code == 200
    wait_for(lambda: metric(service, "sentiment_registry_polls_total", outcome="no_champion") >= 1, 30, "a poll")
    ready = httpx.get(f"{service.url}/health/ready", timeout=5)
    assert ready.status_code == 200
    assert ready.json() == {"ready": True, "reason": NO_CHAMPION_YET}
    for path, body in (("/predict", {"text": "great"}), ("/predict/batch", {"texts": ["great"]})):
        response = httpx.post(f"{service.url}{path}", json=body, timeout=5)
        assert response.status_code == 503
        assert response.json()["error"]["code"] == "no_champion"
        assert "no champion model yet" in response.json()["error"]["message"]
    assert metric(service, "sentiment_model_ready") == 0

    # 2. A champion appears: the same process becomes ready without a restart.
    v1 = shared_registry.register(model_name, shared_logged.good_a)
    v2 = shared_registry.register(model_name, shared_logged.good_b)
    shared_registry.promote(model_name, v1)
    promoted = time.monotonic()
    wait_for(lambda: serving_version(service) == v1, PICKUP_SECONDS + 10, f"v{v1} served", service)
    assert httpx.get(f"{service.url}/health/ready", timeout=5).json() == {"ready": True, "model_version": v1}
    print(f"champion v{v1} served {time.monotonic() - promoted:.1f}s after promotion")

    # 3. While a client keeps sending requests, the alias moves several times: every move is followed,
    # no request fails, and every response comes wholly from one of the two versions.
    client = LoadClient(service.url).start()
    try:
        for target in (v2, v1, v2, v1, v2):
            moved = time.monotonic()
            shared_registry.promote(model_name, target)
            wait_for(lambda t=target: client.latest == t, PICKUP_SECONDS, f"v{target} served under load", service)
            print(f"alias -> v{target}: first response {time.monotonic() - moved:.1f}s after the move")
    finally:
        client.stop()
    assert client.errors == []
    assert len(client.statuses) > 50
    assert set(client.statuses) == {200}
    assert set(client.versions) == {v1, v2}
    assert client.mismatched_headers == 0
    assert metric(service, "sentiment_model_version_info", name=model_name, version=v2, alias="champion") == 1
    assert metric(service, "sentiment_model_loads_total", result="ok") >= 6
    assert metric(service, "sentiment_model_loads_total", result="rejected") == 0


def test_a_champion_with_the_character_view_is_loaded_and_served(
    shared_registry: ModelRegistry,
    imdb_path: Path,
    model_name: str,
    start_service: Callable[..., HttpServer],
) -> None:
    """The optional word + character model (FeatureUnion, CharNgramHasher) passes the API's type allow-list and
    floors, and answers like the pipeline it was logged from."""
    frame = load_dataset(imdb_path).iloc[:-400].sample(800, random_state=5)
    config = ModelConfig(n_features=2**14, ngram_max=1, char_ngram_max=5, char_n_features=2**14)
    pipeline = build_pipeline(config).fit(frame["text"].tolist(), frame["label"].tolist())
    version = shared_registry.register(model_name, shared_registry.log(pipeline))
    shared_registry.promote(model_name, version)
    service = start_service(shared_registry.tracking_uri, model_name)
    wait_for(lambda: serving_version(service) == version, PICKUP_SECONDS + 10, f"v{version} served", service)
    text = "A wonderful, moving film with a superb cast."
    response = httpx.post(f"{service.url}/predict", json={"text": text}, timeout=5)
    assert response.status_code == 200, response.text
    expected = float(pipeline.predict_proba([text])[0].max())
    assert response.json()["confidence"] == pytest.approx(expected, abs=1e-6)
    assert metric(service, "sentiment_model_loads_total", result="rejected") == 0


def test_broken_models_are_rejected_and_the_old_one_keeps_serving(
    shared_registry: ModelRegistry,
    shared_logged: SharedLogged,
    model_name: str,
    start_service: Callable[..., HttpServer],
) -> None:
    reg = shared_registry
    good = reg.register(model_name, shared_logged.good_a)
    reg.promote(model_name, good)
    service = start_service(reg.tracking_uri, model_name)
    wait_for(lambda: serving_version(service) == good, PICKUP_SECONDS + 10, f"v{good} served", service)

    broken = {
        # Claims good held-out evidence, so only the canary check can catch it.
        "single class": reg.register(
            model_name,
            shared_logged.single_class,
            {"metric.accuracy": "0.95", "metric.f1": "0.95", "quality.predicted_negative": "200"},
        ),
        "hash mismatch": reg.register(model_name, shared_logged.hash_mismatch),
        "unloadable": reg.register(model_name, shared_logged.unloadable),
    }
    reasons = {
        "single class": "predicts only 'positive' on the 12 canary texts",
        "hash mismatch": "differs from the registry's model.sha256 tag",
        "unloadable": "cannot be loaded safely",
    }
    for count, (kind, version) in enumerate(broken.items(), start=1):
        reg.promote(model_name, version)
        wait_for(
            lambda n=count: metric(service, "sentiment_model_loads_total", result="rejected") >= n,
            PICKUP_SECONDS,
            f"{kind} v{version} rejected",
            service,
        )
        info = httpx.get(f"{service.url}/model-info", timeout=5).json()
        assert info["version"] == good, kind
        assert reasons[kind] in info["poll"]["rejected_versions"][version]["reason"], info["poll"]
        response = httpx.post(f"{service.url}/predict", json={"text": "what a great film"}, timeout=5)
        assert response.status_code == 200
        assert response.json()["model_version"] == good
        assert httpx.get(f"{service.url}/health/ready", timeout=5).json()["ready"] is True

    # The last rejected version is not retried on every poll: several polls later, still one attempt.
    polls = metric(service, "sentiment_registry_polls_total", outcome="skipped")
    wait_for(
        lambda: metric(service, "sentiment_registry_polls_total", outcome="skipped") >= polls + 3,
        10,
        "more polls",
        service,
    )
    assert metric(service, "sentiment_model_loads_total", result="rejected") == len(broken)
    info = httpx.get(f"{service.url}/model-info", timeout=5).json()
    assert info["poll"]["last_poll_result"] == "skipped"
    assert info["poll"]["rejected_versions"][broken["unloadable"]]["attempts"] == 1

    # A good version promoted after the broken ones is served: the poller was not stuck.
    fixed = reg.register(model_name, shared_logged.good_b)
    reg.promote(model_name, fixed)
    wait_for(lambda: serving_version(service) == fixed, PICKUP_SECONDS, f"v{fixed} served", service)


def test_a_replica_started_under_a_junk_champion_serves_the_last_good_one_then_the_next_champion(
    shared_registry: ModelRegistry,
    shared_logged: SharedLogged,
    model_name: str,
    start_service: Callable[..., HttpServer],
) -> None:
    """Issue 12: with a junk champion in the registry, a replica that started served nothing (503 no_champion)."""
    reg = shared_registry
    good = reg.register(model_name, shared_logged.good_a)
    reg.promote(model_name, good)
    junk = reg.register(model_name, shared_logged.single_class)
    reg.promote(model_name, junk)  # past the floors, as `set-alias --force` would
    service = start_service(reg.tracking_uri, model_name)
    wait_for(lambda: serving_version(service) == good, PICKUP_SECONDS + 10, f"fallback v{good} served", service)
    health = httpx.get(f"{service.url}/health", timeout=5).json()
    assert health["serving"] == "fallback"
    assert health["ready"] is True
    assert health["champion_rejected"]["version"] == junk
    assert "predicts only 'positive'" in health["champion_rejected"]["reason"]
    info = httpx.get(f"{service.url}/model-info", timeout=5).json()
    assert (info["version"], info["serving"]) == (good, "fallback")
    assert info["champion_rejected"]["version"] == junk

    fixed = reg.register(model_name, shared_logged.good_b)
    reg.promote(model_name, fixed)
    wait_for(lambda: serving_version(service) == fixed, PICKUP_SECONDS, f"champion v{fixed} served", service)
    health = httpx.get(f"{service.url}/health", timeout=5).json()
    assert (health["serving"], health["champion_rejected"]) == ("champion", None)


def test_keeps_serving_through_an_mlflow_outage_and_recovers(
    tmp_path: Path,
    tiny_models: TinyModels,
    model_name: str,
    start_service: Callable[..., HttpServer],
) -> None:
    # A dedicated MLflow (sqlite + local artifacts) on a fixed port, so it can be stopped and started again.
    port = free_port()
    state = tmp_path / "mlflow"
    backend = f"sqlite:///{state / 'mlflow.db'}"
    artifacts = str(state / "artifacts")
    mlflow_server = start_mlflow(state, backend, artifacts, port=port)
    try:
        reg = ModelRegistry(mlflow_server.url, tiny_models)
        v1 = reg.register(model_name, reg.log(tiny_models.good_a))
        reg.promote(model_name, v1)
        service = start_service(mlflow_server.url, model_name)
        wait_for(lambda: serving_version(service) == v1, PICKUP_SECONDS + 10, f"v{v1} served", service)
        assert metric(service, "sentiment_registry_last_successful_poll_timestamp_seconds") > 0

        # MLflow goes away: predictions and readiness carry on, failures are counted.
        mlflow_server.process.stop()
        wait_for(lambda: metric(service, "sentiment_registry_poll_failures_total") >= 3, 30, "poll failures", service)
        last_success = metric(service, "sentiment_registry_last_successful_poll_timestamp_seconds")
        for _ in range(5):
            response = httpx.post(f"{service.url}/predict", json={"text": "a superb film"}, timeout=5)
            assert response.status_code == 200
            assert response.json()["model_version"] == v1
        assert httpx.get(f"{service.url}/health/ready", timeout=5).status_code == 200
        info = httpx.get(f"{service.url}/model-info", timeout=5).json()
        assert info["poll"]["last_poll_result"] == "failed"
        assert info["poll"]["consecutive_poll_failures"] >= 3
        assert httpx.get(f"{service.url}/health", timeout=5).json()["consecutive_poll_failures"] >= 3

        # MLflow comes back on the same port: the poller recovers by itself and follows a new champion.
        mlflow_server = start_mlflow(state, backend, artifacts, port=port)
        reg = ModelRegistry(mlflow_server.url, tiny_models)
        v2 = reg.register(model_name, reg.log(tiny_models.good_b))
        reg.promote(model_name, v2)
        # Backoff is capped at POLL_MAX_BACKOFF_SECONDS=2 in these tests.
        wait_for(lambda: serving_version(service) == v2, PICKUP_SECONDS + 2, f"v{v2} served after recovery", service)
        assert metric(service, "sentiment_registry_last_successful_poll_timestamp_seconds") > last_success
        assert httpx.get(f"{service.url}/model-info", timeout=5).json()["poll"]["consecutive_poll_failures"] == 0
    finally:
        mlflow_server.process.stop()


def test_not_ready_while_the_registry_cannot_say_whether_a_champion_exists(
    model_name: str, start_service: Callable[..., HttpServer]
) -> None:
    # Nothing listens on this loopback port: every poll fails, so the replica must stay out of the Service.
    service = start_service(f"http://127.0.0.1:{free_port()}", model_name)
    wait_for(lambda: metric(service, "sentiment_registry_poll_failures_total") >= 1, 30, "a failed poll", service)
    ready = httpx.get(f"{service.url}/health/ready", timeout=5)
    assert ready.status_code == 503
    assert ready.json()["ready"] is False
    assert httpx.get(f"{service.url}/health", timeout=5).json()["ready"] is False
