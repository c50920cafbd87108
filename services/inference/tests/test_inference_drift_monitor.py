"""DriftMonitor in process, on real tiny models: window bounds, the featurising budget, version changes, no reference,
disabled, the exported series, and the settings that must agree."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from pydantic import ValidationError

from sentiment_core.drift import DriftReference, build_reference
from sentiment_inference.drift_monitor import DriftConfig, DriftMonitor, drift_reference_for
from sentiment_inference.model_store import LoadedModel, ModelStore
from sentiment_inference.registry_gateway import ChampionRef
from sentiment_inference.settings import Settings
from services.inference.tests.inference_helpers import TinyModels

EVERY_TEXT = 1e9


def loaded(pipeline: Any, version: str, reference: DriftReference | None) -> LoadedModel:
    model = LoadedModel.create(name="m", version=version, alias="champion", pipeline=pipeline, run_id=None, tags={})
    return replace(model, drift_reference=reference)


@pytest.fixture(scope="module")
def reference(tiny_models: TinyModels) -> DriftReference:
    texts = tiny_models.eval_texts
    return build_reference(texts, texts, tiny_models.good_a.predict_proba(texts)[:, 1])


def record_texts(monitor: DriftMonitor, model: LoadedModel, texts: list[str], batch: int = 50) -> None:
    for start in range(0, len(texts), batch):
        chunk = texts[start : start + batch]
        labels, confidences = model.predict(chunk)
        monitor.record(model, chunk, labels, confidences)


def exported(registry: CollectorRegistry) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    families = text_string_to_metric_families(generate_latest(registry).decode())
    return {(s.name, tuple(sorted(s.labels.items()))): s.value for f in families for s in f.samples}


def test_window_is_bounded_and_scores_match_the_export(tiny_models: TinyModels, reference: DriftReference) -> None:
    store = ModelStore()
    model = loaded(tiny_models.good_a, "1", reference)
    store.swap(model)
    registry = CollectorRegistry()
    monitor = DriftMonitor(
        DriftConfig(window_size=100, min_samples=50, max_texts_per_second=EVERY_TEXT), store, registry
    )
    record_texts(monitor, model, tiny_models.eval_texts[:250])
    report = monitor.report()
    assert report.window_size == 100
    assert report.status in ("ok", "warning")
    metrics = exported(registry)
    for name, signal in report.signals.items():
        assert metrics[("sentiment_drift_score", (("signal", name),))] == pytest.approx(signal.score)
    assert metrics[("sentiment_drift_window_texts", ())] == 100
    assert metrics[("sentiment_drift_threshold", (("level", "drift"),))] == 0.25


def test_the_budget_samples_the_traffic(tiny_models: TinyModels, reference: DriftReference) -> None:
    store = ModelStore()
    model = loaded(tiny_models.good_a, "1", reference)
    store.swap(model)
    # A budget of ~0 texts per second: each refresh featurises one text (the newest), whatever arrived.
    monitor = DriftMonitor(DriftConfig(window_size=300, min_samples=10, max_texts_per_second=1e-9), store)
    labels, confidences = model.predict(tiny_models.eval_texts[:200])
    monitor.record(model, tiny_models.eval_texts[:200], labels, confidences)
    monitor.refresh()
    assert monitor.report(refresh=False).window_size <= 2  # the record's own background refresh may add one


def test_a_swap_restarts_the_window_and_follows_the_new_reference(
    tiny_models: TinyModels, reference: DriftReference
) -> None:
    store = ModelStore()
    first = loaded(tiny_models.good_a, "1", reference)
    store.swap(first)
    monitor = DriftMonitor(DriftConfig(window_size=200, min_samples=50, max_texts_per_second=EVERY_TEXT), store)
    record_texts(monitor, first, tiny_models.eval_texts[:200])
    assert monitor.report().window_size == 200

    second = loaded(tiny_models.good_b, "2", reference)
    store.swap(second)
    report = monitor.report()
    assert (report.status, report.window_size, report.reference_version) == ("insufficient_data", 0, "2")
    record_texts(monitor, second, tiny_models.eval_texts[:60])
    assert monitor.report().window_size == 60


def test_a_version_without_reference_is_unknown_and_exports_no_score(tiny_models: TinyModels) -> None:
    store = ModelStore()
    registry = CollectorRegistry()
    monitor = DriftMonitor(DriftConfig(max_texts_per_second=EVERY_TEXT), store, registry)
    assert monitor.report().status == "no_champion"
    model = loaded(tiny_models.good_a, "7", None)
    store.swap(model)
    record_texts(monitor, model, tiny_models.eval_texts[:100])
    report = monitor.report()
    assert report.status == "unknown"
    assert "version 7 has no drift reference" in report.reason
    assert {signal.status for signal in report.signals.values()} == {"unknown"}
    assert not any(name == "sentiment_drift_score" for name, _ in exported(registry))


def test_disabled_records_nothing_and_exports_nothing(tiny_models: TinyModels, reference: DriftReference) -> None:
    store = ModelStore()
    model = loaded(tiny_models.good_a, "1", reference)
    store.swap(model)
    registry = CollectorRegistry()
    monitor = DriftMonitor(DriftConfig(enabled=False), store, registry)
    record_texts(monitor, model, tiny_models.eval_texts[:100])
    assert monitor.report().status == "disabled"
    assert not any(name.startswith("sentiment_drift") for name, _ in exported(registry))


class _Gateway:
    def __init__(self, outcome: Any) -> None:
        self.outcome = outcome

    def drift_reference(self, ref: ChampionRef) -> DriftReference | None:
        if isinstance(self.outcome, Exception):
            raise self.outcome
        return self.outcome


def test_a_reference_that_cannot_be_fetched_means_unknown_not_a_rejection(reference: DriftReference) -> None:
    ref = ChampionRef("3", run_id="r")
    assert drift_reference_for(_Gateway(reference), ref) is reference
    assert drift_reference_for(_Gateway(OSError("S3 down")), ref) is None
    assert drift_reference_for(object(), ref) is None  # a gateway that knows nothing about profiles


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"DRIFT_WINDOW_SIZE": "100", "DRIFT_MIN_SAMPLES": "200"}, "DRIFT_MIN_SAMPLES"),
        ({"DRIFT_WARNING_PSI": "0.5", "DRIFT_ALERT_PSI": "0.2"}, "DRIFT_WARNING_PSI"),
        ({"DRIFT_MAX_TEXTS_PER_SECOND": "0"}, "DRIFT_MAX_TEXTS_PER_SECOND"),
    ],
)
def test_inconsistent_drift_settings_are_refused(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], message: str
) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(ValidationError, match=message):
        Settings()


def test_live_window_values_round_trip(tiny_models: TinyModels, reference: DriftReference) -> None:
    """The positive rate the monitor reconstructs from (label, confidence) is the model's own."""
    store = ModelStore()
    model = loaded(tiny_models.good_a, "1", reference)
    store.swap(model)
    monitor = DriftMonitor(DriftConfig(window_size=400, min_samples=10, max_texts_per_second=EVERY_TEXT), store)
    texts = tiny_models.eval_texts[:300]
    record_texts(monitor, model, texts)
    report = monitor.report()
    expected = float(np.mean(tiny_models.good_a.predict_proba(texts)[:, 1] >= 0.5))
    assert report.signals["positive_rate"].live_mean == pytest.approx(expected)
