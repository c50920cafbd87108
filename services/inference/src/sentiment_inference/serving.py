"""Predictions off the event loop, with adaptive micro-batching of concurrent requests.

Why batch: one vectorised `predict_proba` on N texts costs far less than N calls of one text (the pipeline's
per-call overhead dominates a single short review). Why adaptive: a lone request must not wait for companions
that never come.

How: requests append `(texts, future)` to a queue. One batcher task takes the queue whenever the prediction
thread is free. Before each call it lets the event loop run for as long as new requests keep arriving, which
costs a lone request one loop iteration (microseconds), while under load it gathers every request that is
already on the wire, capped at `max_wait`. Requests that arrive during a model call wait for the next call
anyway, so under load batches grow by themselves with concurrency. One dedicated thread runs every model call:
on a GIL-bound CPU workload more threads only add contention, and health and metrics stay on the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter, deque
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from sentiment_inference.drift_monitor import DriftMonitor
from sentiment_inference.metrics import ServiceMetrics
from sentiment_inference.model_store import LoadedModel, ModelStore

logger = logging.getLogger(__name__)


class NoChampionError(Exception):
    """No validated champion is loaded yet: prediction endpoints answer 503."""


@dataclass(frozen=True)
class BatchResult:
    """What one request gets back: every text predicted by the same model version."""

    version: str
    labels: list[str]
    confidences: list[float]


@dataclass
class _Pending:
    texts: Sequence[str]
    future: asyncio.Future[BatchResult]


class MicroBatcher:
    def __init__(
        self,
        store: ModelStore,
        metrics: ServiceMetrics,
        max_texts: int,
        max_wait_seconds: float,
        drift: DriftMonitor | None = None,
    ) -> None:
        self._store = store
        self._drift = drift
        self._metrics = metrics
        self._max_texts = max_texts
        self._max_wait = max_wait_seconds
        self._queue: deque[_Pending] = deque()
        self._queued_texts = 0
        self._wakeup = asyncio.Event()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="predict")
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="micro-batcher")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for pending in self._queue:
            if not pending.future.done():
                pending.future.set_exception(NoChampionError("the service is shutting down"))
        self._queue.clear()
        self._executor.shutdown(wait=False, cancel_futures=True)

    async def predict(self, texts: Sequence[str]) -> BatchResult:
        """Queue texts for the next vectorised call; resolves with the version that predicted them."""
        if self._store.current is None:
            raise NoChampionError
        future: asyncio.Future[BatchResult] = asyncio.get_running_loop().create_future()
        self._queue.append(_Pending(texts, future))
        self._queued_texts += len(texts)
        self._wakeup.set()
        return await future

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            if not self._queue:
                continue
            await self._gather(loop)
            batch = self._take()
            try:
                await self._call(loop, batch)
            except asyncio.CancelledError:
                for pending in batch:
                    if not pending.future.done():
                        pending.future.cancel()
                raise
            except Exception:  # the loop must survive anything a model does; the error went to the requests
                logger.exception("micro-batcher: unexpected error")
            if self._queue:
                self._wakeup.set()

    async def _gather(self, loop: asyncio.AbstractEventLoop) -> None:
        """Let the loop run while requests keep arriving (the adaptive window), up to max_wait."""
        if self._max_wait <= 0:
            return
        deadline = loop.time() + self._max_wait
        seen = len(self._queue)
        while self._queued_texts < self._max_texts:
            # One iteration: the loop reads ready sockets and runs the requests they start up to their enqueue.
            await asyncio.sleep(0)
            if len(self._queue) == seen or loop.time() >= deadline:
                return
            seen = len(self._queue)

    def _take(self) -> list[_Pending]:
        batch: list[_Pending] = []
        count = 0
        while self._queue:
            pending = self._queue[0]
            # Never split a request across calls, and always take at least one (a batch request may be large).
            if batch and count + len(pending.texts) > self._max_texts:
                break
            self._queue.popleft()
            self._queued_texts -= len(pending.texts)
            if pending.future.done():  # the client went away (request cancelled): nothing to compute
                continue
            batch.append(pending)
            count += len(pending.texts)
        return batch

    async def _call(self, loop: asyncio.AbstractEventLoop, batch: list[_Pending]) -> None:
        if not batch:
            return
        # Read the reference once: the whole call (and every request in it) is served by this model.
        model = self._store.current
        if model is None:
            for pending in batch:
                pending.future.set_exception(NoChampionError())
            return
        texts = [text for pending in batch for text in pending.texts]
        started = time.perf_counter()
        try:
            labels, confidences = await loop.run_in_executor(self._executor, model.predict, texts)
        except Exception as error:
            logger.exception("model version %s failed on a batch of %d texts", model.version, len(texts))
            for pending in batch:
                if not pending.future.done():
                    pending.future.set_exception(error)
            return
        self._observe(model, texts, labels, time.perf_counter() - started, confidences)
        offset = 0
        for pending in batch:
            size = len(pending.texts)
            if not pending.future.done():
                pending.future.set_result(
                    BatchResult(model.version, labels[offset : offset + size], confidences[offset : offset + size])
                )
            offset += size

    def _observe(
        self, model: LoadedModel, texts: list[str], labels: list[str], seconds: float, confidences: list[float]
    ) -> None:
        if self._drift is not None:  # a deque append; featurising and scoring happen later (drift_monitor.py)
            self._drift.record(model, texts, labels, confidences)
        metrics = self._metrics
        metrics.model_call_size.observe(len(texts))
        metrics.model_call_latency.observe(seconds)
        for label, count in Counter(labels).items():
            metrics.predictions.labels(sentiment=label).inc(count)
