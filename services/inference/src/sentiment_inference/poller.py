"""The champion poller: follow the registry alias, and swap in each new version only once it proved itself.

Every `poll_interval` seconds (sooner when nudged by /admin/reload or a webhook) it asks the registry which
version holds the alias. When that differs from the serving version it downloads the pinned version, loads it
safely, validates it on canary texts, warms it and swaps it in, all in a worker thread off the event loop.

Failure policy:
- registry unreachable (poll failure) or artifact download failed: keep serving, retry with exponential
  backoff (capped), recover by itself;
- a bad model (unloadable, hash mismatch, below the quality floors) is *rejected*: keep serving the old one, and
  do not retry that version before `rejected_retry_seconds` (doubling per attempt), unless an admin forces it;
- a replica with nothing to serve whose champion is rejected (a cold start after a bad promotion) falls back to
  the newest servable version of the registry's champion history, says so (`serving: fallback`), and swaps to
  the champion as soon as the champion (or a new one) passes.
Each worker process and each replica runs its own poller; they converge independently.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Literal

from sentiment_core.quality_gate import QualityFloors
from sentiment_inference.drift_monitor import drift_reference_for
from sentiment_inference.metrics import ServiceMetrics
from sentiment_inference.model_store import (
    LoadedModel,
    ModelRejectedError,
    ModelStore,
    freeze_heap,
    validate,
    warm,
)
from sentiment_inference.registry_gateway import ChampionRef, FetchFailedError, RegistryGateway

logger = logging.getLogger(__name__)

PollOutcome = Literal["loaded", "restored", "unchanged", "no_champion", "rejected", "skipped", "failed", "fallback"]
# champion: serving the alias's version; fallback: the alias's version was rejected, serving an earlier champion;
# previous: the alias moved and its version is not loaded yet (loading, or its download failed); none: nothing.
ServingMode = Literal["champion", "fallback", "previous", "none"]


@dataclass
class RejectedVersion:
    reason: str
    attempts: int
    retry_at: float  # time.monotonic()


@dataclass
class PollResult:
    outcome: PollOutcome
    version: str | None = None
    message: str = ""


@dataclass
class PollState:
    """What /model-info and /health report about the poller."""

    last_poll_at: datetime | None = None
    last_result: PollResult | None = None
    last_success_at: datetime | None = None
    consecutive_failures: int = 0
    next_poll_in_seconds: float | None = None
    champion_version: str | None = None
    rejected: dict[str, RejectedVersion] = field(default_factory=dict)
    # True while the serving model was loaded from the champion history because the champion was rejected.
    fallback: bool = False


class ChampionPoller:
    def __init__(
        self,
        *,
        gateway: RegistryGateway,
        store: ModelStore,
        metrics: ServiceMetrics,
        model_name: str,
        alias: str,
        interval: float,
        max_backoff: float,
        rejected_retry_seconds: float,
        floors: QualityFloors,
        freeze_heap_on_swap: bool = False,
    ) -> None:
        self.gateway = gateway
        self.store = store
        self.metrics = metrics
        self.model_name = model_name
        self.alias = alias
        self.interval = interval
        self.max_backoff = max(max_backoff, interval)
        self.rejected_retry_seconds = rejected_retry_seconds
        self.floors = floors
        self.freeze_heap_on_swap = freeze_heap_on_swap
        self.state = PollState()
        self._lock = asyncio.Lock()
        self._nudge = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._load_failures = 0

    # --- lifecycle -----------------------------------------------------------------------------------------
    def start(self) -> None:
        # The first poll runs in this background task: startup (and liveness) never waits for MLflow.
        self._task = asyncio.get_running_loop().create_task(self._run(), name="champion-poller")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def nudge(self) -> None:
        """Poll as soon as possible (a webhook said the registry changed); does not wait for the result."""
        self._nudge.set()

    async def poll_now(self, force: bool = False) -> PollResult:
        """Poll immediately and return the result; `force` also retries a rejected champion version."""
        return await self.poll_once(force=force)

    async def _run(self) -> None:
        while True:
            try:
                await self.poll_once()
            except asyncio.CancelledError:
                raise
            except Exception:  # never let the poller die: log, count, back off
                logger.exception("champion poll crashed")
                self.metrics.poll_failures.inc()
                self.state.consecutive_failures += 1
            delay = self._next_delay()
            self.state.next_poll_in_seconds = round(delay, 3)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._nudge.wait(), timeout=delay)
            self._nudge.clear()

    def _next_delay(self) -> float:
        failures = max(self.state.consecutive_failures, self._load_failures)
        if failures == 0:
            return self.interval
        # Exponential backoff with jitter so replicas that lost MLflow together do not come back in lockstep.
        backoff = min(self.interval * 2 ** min(failures, 16), self.max_backoff)
        return backoff * random.uniform(0.8, 1.0)  # noqa: S311 - jitter, not security

    # --- one poll ------------------------------------------------------------------------------------------
    async def poll_once(self, force: bool = False) -> PollResult:
        async with self._lock:
            if force:
                # Under the lock: a poll already running must finish (and record its rejection) before the
                # forced one forgets rejections and backoff, else the forced retry finds the version "skipped".
                self.state.rejected.clear()
                self.state.consecutive_failures = 0
                self._load_failures = 0
            result = await self._poll()
            self.state.last_poll_at = datetime.now(UTC)
            self.state.last_result = result
            self.metrics.polls.labels(outcome=result.outcome).inc()
        return result

    async def _poll(self) -> PollResult:
        try:
            ref = await asyncio.to_thread(self.gateway.champion)
        except Exception as error:
            self.state.consecutive_failures += 1
            self.metrics.poll_failures.inc()
            log = logger.warning if self.state.consecutive_failures <= 3 else logger.debug
            log(
                "registry poll failed (%d in a row), keep serving %s: %s",
                self.state.consecutive_failures,
                self._serving_label(),
                _short(error),
                extra={"event": "poll_failed", "consecutive_failures": self.state.consecutive_failures},
            )
            return PollResult("failed", None, f"registry unreachable: {_short(error)}")
        if self.state.consecutive_failures:
            logger.info("registry reachable again after %d failed polls", self.state.consecutive_failures)
        self.state.consecutive_failures = 0
        self.state.last_success_at = datetime.now(UTC)
        self.metrics.last_successful_poll.set(time.time())

        if ref is None:
            self.state.champion_version = None
            message = f"model '{self.model_name}' has no '{self.alias}' alias"
            if self.store.current is not None:
                message += f"; keep serving version {self.store.current.version}"
            return PollResult("no_champion", None, message)
        self.state.champion_version = ref.version

        current = self.store.current
        if current is not None and current.version == ref.version:
            self._load_failures = 0
            return PollResult("unchanged", ref.version, f"serving version {ref.version}")

        rejected = self.state.rejected.get(ref.version)
        if rejected is not None and time.monotonic() < rejected.retry_at:
            wait = rejected.retry_at - time.monotonic()
            result = PollResult(
                "skipped", ref.version, f"version {ref.version} was rejected ({rejected.reason}); retry in {wait:.0f}s"
            )
            return await self._fall_back(ref, result) if current is None else result

        standby = self.store.standby_for(ref.version)
        if standby is not None:
            # A rollback to the model we just replaced: it was validated and is warm, swap it straight back.
            self._swap_in(standby.with_registry_info(self.alias, ref.run_id, ref.tags), current)
            return PollResult("restored", ref.version, f"serving version {ref.version} again (warm standby)")

        result = await self._load(ref, current)
        if result.outcome == "rejected" and self.store.current is None:
            return await self._fall_back(ref, result)
        return result

    async def _fall_back(self, champion: ChampionRef, rejected: PollResult) -> PollResult:
        """Nothing serves and the champion cannot: load the newest servable earlier champion, if there is one.

        Why: a junk champion must not turn a replica that starts now into an outage; the registry's history is
        the list of versions that were good enough to be champion. Returns `rejected` when none can serve.
        """
        try:
            history = await asyncio.to_thread(self.gateway.champion_history)
        except Exception as error:
            logger.warning("cannot read the champion history for a fallback: %s", _short(error))
            return rejected
        for ref in history:
            if ref.version == champion.version:
                continue
            earlier = self.state.rejected.get(ref.version)
            if earlier is not None and time.monotonic() < earlier.retry_at:
                continue
            result = await self._load(ref, None, fallback=True)
            if result.outcome == "loaded":
                message = (
                    f"champion version {champion.version} is rejected ({rejected.message}); serving version"
                    f" {ref.version} from the champion history until the champion can serve"
                )
                logger.warning(message, extra={"event": "model_fallback", "version": ref.version})
                return PollResult("fallback", ref.version, message)
            if result.outcome == "failed":
                break  # transient (registry or store down): the next poll tries again
        return rejected

    async def _load(self, ref: ChampionRef, current: LoadedModel | None, fallback: bool = False) -> PollResult:
        logger.info(
            "alias '%s' points to version %s (serving %s): loading it",
            self.alias,
            ref.version,
            self._serving_label(),
            extra={"event": "model_loading", "version": ref.version},
        )
        started = time.perf_counter()
        # Loading runs in a thread but shares the GIL with serving: the switch interval, set once at start-up
        # (GIL_SWITCH_INTERVAL_MS, main.py), bounds what the requests served during a swap wait per hand-over.
        try:
            candidate = await asyncio.to_thread(self._prepare, ref)
        except ModelRejectedError as error:
            self.metrics.model_loads.labels(result="rejected").inc()
            previous = self.state.rejected.get(ref.version)
            attempts = previous.attempts + 1 if previous else 1
            retry_in = self.rejected_retry_seconds * 2 ** (attempts - 1)
            self.state.rejected[ref.version] = RejectedVersion(str(error), attempts, time.monotonic() + retry_in)
            logger.error(
                "rejected version %s, keep serving %s: %s (next try in %.0fs)",
                ref.version,
                self._serving_label(),
                error,
                retry_in,
                extra={"event": "model_rejected", "version": ref.version, "reason": str(error)},
            )
            return PollResult("rejected", ref.version, str(error))
        except Exception as error:  # FetchFailedError or anything unexpected: transient, back off and retry
            self.metrics.model_loads.labels(result="failed").inc()
            self._load_failures += 1
            kind = "" if isinstance(error, FetchFailedError) else f"{type(error).__name__}: "
            logger.warning(
                "loading version %s failed, keep serving %s: %s%s",
                ref.version,
                self._serving_label(),
                kind,
                _short(error),
                extra={"event": "model_load_failed", "version": ref.version},
            )
            return PollResult("failed", ref.version, f"loading version {ref.version} failed: {kind}{_short(error)}")
        self._load_failures = 0
        self.state.rejected.pop(ref.version, None)
        self._swap_in(candidate, current, fallback)
        seconds = time.perf_counter() - started
        return PollResult("loaded", ref.version, f"serving version {ref.version} (loaded in {seconds:.2f}s)")

    def _prepare(self, ref: ChampionRef) -> LoadedModel:
        """Download, load, validate and warm a candidate (worker thread). Raises ModelRejectedError or a fetch error."""
        pipeline = self.gateway.fetch(ref)
        candidate = LoadedModel.create(
            name=self.model_name,
            version=ref.version,
            alias=self.alias,
            pipeline=pipeline,
            run_id=ref.run_id,
            tags=ref.tags,
        )
        candidate = replace(candidate, drift_reference=drift_reference_for(self.gateway, ref))
        checks = validate(candidate, floors=self.floors)
        warm(candidate)
        logger.info("version %s passed validation %s and is warm", ref.version, checks)
        return candidate

    def _swap_in(self, model: LoadedModel, current: LoadedModel | None, fallback: bool = False) -> None:
        self.store.swap(model)
        self.state.fallback = fallback
        if self.freeze_heap_on_swap:
            # The new model and MLflow's client (imported on the first poll) are long-lived from now on.
            freeze_heap()
        self.metrics.model_loads.labels(result="ok").inc()
        self.metrics.served_model(model.name, model.version, model.alias)
        logger.info(
            "now serving version %s of '%s' (was %s)",
            model.version,
            model.name,
            current.version if current else "none",
            extra={"event": "model_swapped", "version": model.version},
        )

    def serving_mode(self) -> ServingMode:
        current, champion = self.store.current, self.state.champion_version
        if current is None:
            return "none"
        if champion is None or current.version == champion:
            return "champion"
        if champion in self.state.rejected or self.state.fallback:
            return "fallback"
        return "previous"

    def champion_rejection(self) -> dict[str, str] | None:
        """The registry champion's version and why it was refused, while it is refused."""
        champion = self.state.champion_version
        rejected = self.state.rejected.get(champion) if champion is not None else None
        return {"version": champion, "reason": rejected.reason} if champion and rejected else None

    def _serving_label(self) -> str:
        current = self.store.current
        return f"version {current.version}" if current else "nothing (no champion yet)"

    def snapshot(self) -> dict[str, Any]:
        state = self.state
        result = state.last_result
        return {
            "last_poll_at": state.last_poll_at.isoformat() if state.last_poll_at else None,
            "last_poll_result": result.outcome if result else None,
            "last_poll_message": result.message if result else None,
            "last_successful_poll_at": state.last_success_at.isoformat() if state.last_success_at else None,
            "consecutive_poll_failures": state.consecutive_failures,
            "next_poll_in_seconds": state.next_poll_in_seconds,
            "registry_champion_version": state.champion_version,
            "rejected_versions": {
                version: {"reason": rejected.reason, "attempts": rejected.attempts}
                for version, rejected in state.rejected.items()
            },
        }


def _short(error: BaseException, limit: int = 300) -> str:
    text = str(error) or type(error).__name__
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
