"""Drift of live traffic: a bounded rolling window compared with the reference profile of the version it serves.

Hot path (`record`, on the event loop after each model call): one deque append of references the batch already
holds, plus a clock read. Tokenising a text for its length and unseen-token share costs about as much as
predicting it, so that work runs later, in a short-lived background thread at most once per
`REFRESH_SECONDS`, on at most `max_texts_per_second` texts per second of traffic (the newest ones): under load
the window is a sample of the traffic rather than a tax on it. PSI scores are computed when asked (`/drift`, a
`/metrics` scrape) from the window's arrays: a few numpy calls on at most `window_size` values.

A window covers one model version: when the served version changes, the window restarts, because confidence
and the predicted class depend on the model, not only on the traffic.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector, CollectorRegistry

from sentiment_core.drift import SIGNALS, DriftReference, LiveSample, sample_from_scores, status_of
from sentiment_inference.model_store import LoadedModel, ModelStore
from sentiment_inference.settings import Settings

logger = logging.getLogger(__name__)

# How often the background thread may featurise new texts; also the staleness of the metric under traffic.
REFRESH_SECONDS = 1.0

OverallStatus = Literal["disabled", "no_champion", "unknown", "insufficient_data", "ok", "warning", "drift"]
SignalStatus = Literal["unknown", "insufficient_data", "ok", "warning", "drift"]
_RANK = {"ok": 0, "warning": 1, "drift": 2}


@dataclass(frozen=True)
class DriftConfig:
    enabled: bool = True
    window_size: int = 1000
    min_samples: int = 200
    warning_psi: float = 0.1
    drift_psi: float = 0.25
    max_texts_per_second: float = 25.0


@dataclass(frozen=True)
class SignalReport:
    status: SignalStatus
    score: float | None = None
    reference_mean: float | None = None
    live_mean: float | None = None


@dataclass(frozen=True)
class DriftReport:
    """What `/drift` answers and the metrics show; `signals` is empty unless a reference exists."""

    status: OverallStatus
    reason: str
    model_version: str | None
    reference_version: str | None
    window_size: int
    window_capacity: int
    min_samples: int
    warning_psi: float
    drift_psi: float
    signals: dict[str, SignalReport]


@dataclass(frozen=True)
class _Batch:
    model: LoadedModel
    texts: Sequence[str]
    labels: Sequence[str]
    confidences: Sequence[float]


class _Window:
    """Fixed-capacity ring of per-text values (numpy), for one model version."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.values = np.zeros((4, capacity), dtype=np.float64)  # confidence, positive, length, unseen share
        self.size = 0
        self._next = 0

    def add(self, sample: LiveSample) -> None:
        rows = np.vstack([sample.confidences, sample.positives, sample.lengths, sample.unseen_shares])
        rows = rows[:, -self.capacity :]
        n = rows.shape[1]
        index = (self._next + np.arange(n)) % self.capacity
        self.values[:, index] = rows
        self._next = int((self._next + n) % self.capacity)
        self.size = min(self.size + n, self.capacity)

    def sample(self) -> LiveSample:
        v = self.values[:, : self.size]
        return LiveSample(confidences=v[0], positives=v[1] > 0.5, lengths=v[2], unseen_shares=v[3])


class DriftMonitor(Collector):
    """Records live predictions cheaply, scores them lazily, and exports `sentiment_drift_*` gauges."""

    def __init__(self, config: DriftConfig, store: ModelStore, registry: CollectorRegistry | None = None) -> None:
        self.config = config
        self._store = store
        # Bounded: if the background thread falls behind, the oldest batches drop out (they would be sampled away).
        self._pending: deque[_Batch] = deque(maxlen=max(config.window_size, 64))
        self._lock = threading.Lock()
        self._refresh_lock = threading.Lock()
        self._window = _Window(config.window_size)
        self._window_model: LoadedModel | None = None
        self._refreshing = False
        self._last_refresh = time.monotonic()
        self._next_refresh = 0.0
        self._cached: tuple[int, DriftReport] | None = None
        self._generation = 0
        if registry is not None and config.enabled:
            registry.register(self)

    # --- hot path (event loop) -------------------------------------------------------------------------------
    def record(
        self, model: LoadedModel, texts: Sequence[str], labels: Sequence[str], confidences: Sequence[float]
    ) -> None:
        if not self.config.enabled or model.drift_reference is None:
            return  # nothing to compare with: a version without a profile costs nothing here
        self._pending.append(_Batch(model, texts, labels, confidences))
        now = time.monotonic()
        if now >= self._next_refresh and not self._refreshing:
            self._refreshing = True
            self._next_refresh = now + REFRESH_SECONDS
            threading.Thread(target=self._refresh_in_background, name="drift-refresh", daemon=True).start()

    # --- off the hot path ------------------------------------------------------------------------------------
    def _refresh_in_background(self) -> None:
        try:
            self.refresh()
        except Exception:  # a bad text must never kill monitoring for good: log, drop that round
            logger.exception("drift refresh failed")
        finally:
            self._refreshing = False

    def refresh(self) -> None:
        """Featurise the newest pending texts (within the budget) into the window of the version they belong to.

        Tokenising runs outside `_lock`, so a scrape on the event loop never waits for it; `_refresh_lock` keeps
        refreshes one at a time, in order.
        """
        with self._refresh_lock:
            now = time.monotonic()
            rate_budget = self.config.max_texts_per_second * (now - self._last_refresh)
            budget = int(min(self.config.window_size, max(1.0, rate_budget)))
            self._last_refresh = now
            # Only what was pending when we started: batches appended meanwhile wait for the next refresh.
            batches: list[_Batch] = []
            for _ in range(len(self._pending)):
                if not self._pending:
                    break
                batches.append(self._pending.popleft())
            chosen: list[tuple[_Batch, int]] = []
            for batch in reversed(batches):  # newest first: older texts beyond the budget are sampled away
                if budget <= 0:
                    break
                take = min(len(batch.texts), budget)
                chosen.append((batch, take))
                budget -= take
            samples = [(batch.model, self._featurise(batch, take)) for batch, take in reversed(chosen)]
            with self._lock:
                for model, sample in samples:  # oldest first, so a version change restarts the window in order
                    self._ensure_version(model)
                    if sample is not None:
                        self._window.add(sample)
                        self._generation += 1

    @staticmethod
    def _featurise(batch: _Batch, take: int) -> LiveSample | None:
        reference = batch.model.drift_reference
        if reference is None:
            return None
        texts, labels = batch.texts[-take:], batch.labels[-take:]
        proba = np.asarray(batch.confidences[-take:], dtype=np.float64)
        positive = np.fromiter((label == "positive" for label in labels), dtype=bool, count=len(labels))
        # Back from (label, confidence) to P(positive): what the reference was built from.
        return sample_from_scores(texts, np.where(positive, proba, 1.0 - proba), reference.seen)

    def _ensure_version(self, model: LoadedModel) -> None:
        current = self._window_model
        if current is None or current.version != model.version:
            self._window = _Window(self.config.window_size)
            self._window_model = model
            self._generation += 1

    # --- reading -----------------------------------------------------------------------------------------------
    def report(self, refresh: bool = True) -> DriftReport:
        """The drift status of the serving version; `refresh` first featurises what is pending (not on the loop)."""
        if not self.config.enabled:
            return self._report("disabled", "drift tracking is off (DRIFT_ENABLED=false)", None, None)
        model = self._store.current
        if model is None:
            return self._report("no_champion", "no champion model is serving yet", None, None)
        if refresh:
            self.refresh()
        with self._lock:
            # Swapped in but no traffic yet: an empty window for the version that serves now.
            self._ensure_version(model)
            cached = self._cached
            if cached is not None and cached[0] == self._generation:
                return cached[1]
            report = self._score(model)
            self._cached = (self._generation, report)
            return report

    def _score(self, model: LoadedModel) -> DriftReport:
        reference: DriftReference | None = model.drift_reference
        if reference is None:
            reason = f"version {model.version} has no drift reference profile (trained before profiles existed)"
            return self._report("unknown", reason, model.version, None, dict.fromkeys(SIGNALS, "unknown"))
        size = self._window.size
        if size < self.config.min_samples:
            reason = f"{size} texts in the window; a verdict needs at least {self.config.min_samples}"
            signals = dict.fromkeys(SIGNALS, "insufficient_data")
            return self._report("insufficient_data", reason, model.version, model.version, signals, size)
        scores = reference.score(self._window.sample())
        reports = {
            name: SignalReport(
                status=status_of(s.score, self.config.warning_psi, self.config.drift_psi),
                score=round(s.score, 6),
                reference_mean=round(s.reference_mean, 6),
                live_mean=round(s.live_mean, 6),
            )
            for name, s in scores.items()
        }
        worst = max((r.status for r in reports.values()), key=lambda status: _RANK[status])
        drifting = [name for name, r in reports.items() if r.status != "ok"]
        reason = f"PSI at or above {self.config.warning_psi} on: {', '.join(drifting)}" if drifting else "no drift"
        return DriftReport(
            status=worst,  # type: ignore[arg-type]
            reason=reason,
            model_version=model.version,
            reference_version=model.version,
            window_size=size,
            window_capacity=self.config.window_size,
            min_samples=self.config.min_samples,
            warning_psi=self.config.warning_psi,
            drift_psi=self.config.drift_psi,
            signals=reports,
        )

    def _report(
        self,
        status: OverallStatus,
        reason: str,
        model_version: str | None,
        reference_version: str | None,
        signals: dict[str, SignalStatus] | None = None,
        size: int = 0,
    ) -> DriftReport:
        return DriftReport(
            status=status,
            reason=reason,
            model_version=model_version,
            reference_version=reference_version,
            window_size=size,
            window_capacity=self.config.window_size,
            min_samples=self.config.min_samples,
            warning_psi=self.config.warning_psi,
            drift_psi=self.config.drift_psi,
            signals={name: SignalReport(status=s) for name, s in (signals or {}).items()},
        )

    # --- Prometheus (called on each scrape) --------------------------------------------------------------------
    def collect(self) -> Iterator[Any]:
        """Scores only while a verdict exists: an unknown or too-small window exports no score (alerts stay quiet).

        A scrape must not featurise on the event loop: it starts a background refresh for what is pending and
        reports the window as of the last one (at most REFRESH_SECONDS old under traffic).
        """
        if self._pending and not self._refreshing:
            self._refreshing = True
            threading.Thread(target=self._refresh_in_background, name="drift-refresh", daemon=True).start()
        score = GaugeMetricFamily(
            "sentiment_drift_score",
            "PSI of a live-traffic signal against the serving version's reference profile (absent: no verdict).",
            labels=["signal"],
        )
        threshold = GaugeMetricFamily(
            "sentiment_drift_threshold",
            "PSI from which /drift reports a signal as warning or drift (the alert compares with level=drift).",
            labels=["level"],
        )
        threshold.add_metric(["warning"], self.config.warning_psi)
        threshold.add_metric(["drift"], self.config.drift_psi)
        window = GaugeMetricFamily("sentiment_drift_window_texts", "Texts in the drift window of the serving version.")
        report = self.report(refresh=False)
        for name, signal in report.signals.items():
            if signal.score is not None:
                score.add_metric([name], signal.score)
        window.add_metric([], report.window_size)
        yield score
        yield threshold
        yield window


def drift_config(settings: Settings) -> DriftConfig:
    return DriftConfig(
        enabled=settings.drift_enabled,
        window_size=settings.drift_window_size,
        min_samples=settings.drift_min_samples,
        warning_psi=settings.drift_warning_psi,
        drift_psi=settings.drift_alert_psi,
        max_texts_per_second=settings.drift_max_texts_per_second,
    )


def drift_reference_for(gateway: Any, ref: Any) -> DriftReference | None:
    """The reference profile of a version being loaded, or None ("drift unknown"): never a reason to reject it.

    The gateway provides it when it can (`MlflowGateway.drift_reference`); test doubles without it mean "none".
    """
    fetch = getattr(gateway, "drift_reference", None)
    if fetch is None:
        return None
    try:
        reference: DriftReference | None = fetch(ref)
    except Exception as error:  # the model serves either way; drift just stays unknown for this version
        logger.warning("version %s: drift reference profile unavailable, drift unknown: %s", ref.version, error)
        return None
    return reference
