"""Drift status of live traffic, end to end: a real service under uvicorn, versions on the session's real MLflow.

In-distribution reviews (IMDb's official test split: other films than the training data) keep every signal below
the drift threshold; non-review text, a one-class flood and very short texts flip `/drift` and the
`sentiment_drift_score` series the alert reads; in-distribution traffic flips them back. Before a champion, and
for a version logged without a reference profile, `/drift` answers a clear status, never a 5xx.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from sentiment_core.data import load_dataset
from sentiment_core.drift import SIGNALS, build_reference
from sentiment_local.servers import HttpServer
from services.inference.tests.inference_helpers import (
    ModelRegistry,
    SharedLogged,
    TinyModels,
    _train,
    metric_values,
    serving_version,
    wait_for,
)
from tests.support.servers import SHARED_DATA

WINDOW = 300
DRIFT_ENV = {
    "DRIFT_WINDOW_SIZE": str(WINDOW),
    "DRIFT_MIN_SAMPLES": "150",
    # Every text counts (no sampling), so each phase below fully replaces the window.
    "DRIFT_MAX_TEXTS_PER_SECOND": "1000000",
}
BATCH = 100


@dataclass(frozen=True)
class Traffic:
    in_distribution: list[str]
    positive_only: list[str]
    not_reviews: list[str]
    very_short: list[str]


@pytest.fixture(scope="module")
def traffic() -> Traffic:
    frame = load_dataset(SHARED_DATA.with_name("test_sample.csv.gz")).sample(frac=1.0, random_state=7)
    texts = frame["text"].tolist()
    positives = frame.loc[frame["label"] == 1, "text"].tolist()
    not_reviews = [
        f"ERROR worker-{i % 7}: upstream 10.0.{i % 200}.{i % 97}:8443 refused the connection after {i * 7} ms;"
        f" retry {i % 5} of 5 scheduled, queue depth {i * 3}, trace id {uuid.UUID(int=i).hex[:16]}"
        for i in range(WINDOW)
    ]
    return Traffic(
        in_distribution=texts[: 4 * WINDOW],
        positive_only=positives[-WINDOW:],
        not_reviews=not_reviews,
        very_short=[" ".join(text.split()[:2]) for text in texts[-WINDOW:]],
    )


@pytest.fixture(scope="module")
def profiled(shared_registry: ModelRegistry, tiny_models: TinyModels, imdb_path: Any) -> Any:
    """A tiny model logged *with* a reference profile built from 1,500 reviews it was not trained on."""
    frame = load_dataset(imdb_path).sample(2500, random_state=11)
    train, held_out = frame.iloc[:1000], frame.iloc[1000:]
    pipeline = _train(train)
    proba = pipeline.predict_proba(held_out["text"].tolist())[:, 1]
    reference = build_reference(train["text"].tolist(), held_out["text"].tolist(), proba)
    return shared_registry.log(pipeline, drift_reference=reference)


@pytest.fixture(scope="module")
def service(
    tmp_path_factory: pytest.TempPathFactory, shared_registry: ModelRegistry
) -> Iterator[tuple[HttpServer, str]]:
    from sentiment_local.servers import start_inference
    from services.inference.tests.inference_helpers import BASE_ENV

    model_name = f"sentiment-drift-{uuid.uuid4().hex[:8]}"
    server = start_inference(
        tmp_path_factory.mktemp("inference-drift"),
        shared_registry.tracking_uri,
        env={**BASE_ENV, "MODEL_NAME": model_name, **DRIFT_ENV},
    )
    try:
        wait_for(lambda: httpx.get(f"{server.url}/health/live", timeout=5).status_code == 200, 30, "live", server)
        yield server, model_name
    finally:
        server.process.stop()


def drift(server: HttpServer) -> dict[str, Any]:
    response = httpx.get(f"{server.url}/drift", timeout=30)
    assert response.status_code == 200, response.text
    return response.json()


def send(server: HttpServer, texts: list[str]) -> None:
    with httpx.Client(base_url=server.url, timeout=30) as client:
        for start in range(0, len(texts), BATCH):
            response = client.post("/predict/batch", json={"texts": texts[start : start + BATCH]})
            assert response.status_code == 200, response.text


def scores_in_metrics(server: HttpServer) -> dict[str, float]:
    return {
        dict(labels)["signal"]: value
        for (name, labels), value in metric_values(server).items()
        if name == "sentiment_drift_score"
    }


def assert_agrees_with_metrics(server: HttpServer, body: dict[str, Any]) -> None:
    """The series the alert reads carry the same scores /drift shows (a scrape reads the last computed window)."""
    exported = scores_in_metrics(server)
    assert exported == pytest.approx({name: signal["score"] for name, signal in body["signals"].items()})
    values = metric_values(server)
    assert values[("sentiment_drift_threshold", (("level", "drift"),))] == body["thresholds"]["drift"]
    assert values[("sentiment_drift_window_texts", ())] == body["window"]["size"]


def test_drift_lifecycle(
    service: tuple[HttpServer, str],
    shared_registry: ModelRegistry,
    shared_logged: SharedLogged,
    profiled: Any,
    traffic: Traffic,
) -> None:
    server, model_name = service

    # No champion yet: a clear status, no score series.
    body = drift(server)
    assert body["status"] == "no_champion"
    assert body["model_version"] is None
    assert body["signals"] == {}
    assert body["thresholds"] == {"warning": 0.1, "drift": 0.25}
    assert scores_in_metrics(server) == {}

    # A version logged before reference profiles existed: it serves, drift is "unknown", never an error.
    old = shared_registry.register(model_name, shared_logged.good_a)
    shared_registry.promote(model_name, old)
    wait_for(lambda: serving_version(server) == old, 60, f"version {old} served", server)
    send(server, traffic.in_distribution[:BATCH])
    body = drift(server)
    assert body["status"] == "unknown", body
    assert body["model_version"] == old
    assert body["reference_version"] is None
    assert {signal["status"] for signal in body["signals"].values()} == {"unknown"}
    assert scores_in_metrics(server) == {}

    # The profiled version: its window restarts empty, then fills with in-distribution reviews.
    new = shared_registry.register(model_name, profiled)
    shared_registry.promote(model_name, new)
    wait_for(lambda: serving_version(server) == new, 60, f"version {new} served", server)
    body = drift(server)
    assert body["status"] == "insufficient_data", body
    assert body["reference_version"] == new
    # Only the probes of wait_for (one short text each) were predicted by this version so far.
    assert body["window"]["size"] < 150
    assert body["window"] | {"size": 0} == {"size": 0, "capacity": WINDOW, "min_samples": 150}

    def in_distribution(part: int) -> dict[str, Any]:
        send(server, traffic.in_distribution[part * WINDOW : (part + 1) * WINDOW])
        body = drift(server)
        assert body["window"]["size"] == WINDOW
        assert body["status"] in ("ok", "warning"), body
        assert all(signal["score"] < 0.25 for signal in body["signals"].values()), body
        assert_agrees_with_metrics(server, body)
        return body

    body = in_distribution(0)
    assert set(body["signals"]) == set(SIGNALS)

    shifts: list[tuple[str, list[str], set[str]]] = [
        ("non-review text", traffic.not_reviews, {"text_length", "unseen_tokens"}),
        ("a one-class flood", traffic.positive_only, {"positive_rate"}),
        ("very short texts", traffic.very_short, {"text_length"}),
    ]
    for part, (what, texts, expected) in enumerate(shifts, start=1):
        send(server, texts)
        body = drift(server)
        assert body["status"] == "drift", (what, body)
        drifting = {name for name, signal in body["signals"].items() if signal["status"] == "drift"}
        assert expected <= drifting, (what, body)
        assert all(scores_in_metrics(server)[name] >= 0.25 for name in expected), what
        assert_agrees_with_metrics(server, body)
        # ... and back: a window of in-distribution reviews again.
        in_distribution(part)
