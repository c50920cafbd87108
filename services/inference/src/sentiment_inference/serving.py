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

Backpressure, as serving systems do it (Triton's max queue size and queue timeout, KServe's 503 when saturated):
the queue is bounded in requests and in texts, and a request beyond either bound is refused at once
(`OverloadedError`: 503 + Retry-After) instead of making every later request wait. A request that waits longer
than its deadline fails with `DeadlineExceededError`, and one whose client has gone (the caller's `abandoned`
coroutine returns: ASGI `http.disconnect`) is dropped from the queue before its model call. A model error on
a coalesced call is retried request by request, so one failing text fails only its own request.

Fair scheduling of large requests (Triton's sequence batcher and vLLM's chunked prefill do the same): a model
call takes at most `max_texts` texts and `max_chars` characters (the model's cost grows with characters, not with
the count). A request beyond that is predicted in slices, and between two slices the batcher takes the queue
again: a small request that arrived meanwhile waits for one slice (25-50 ms), not for the whole large request,
and a large request whose client has gone stops after the slice that was running.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from sentiment_inference.drift_monitor import DriftMonitor
from sentiment_inference.metrics import ServiceMetrics
from sentiment_inference.model_store import LoadedModel, ModelStore

logger = logging.getLogger(__name__)

# Default most characters one model call reads: 25-50 ms of model time on a loaded core of the 2-core test machine
# (bench/hostile_traffic.py), so a small request never waits behind more than that of a large one.
DEFAULT_MAX_CALL_CHARS = 32_768


class NoChampionError(Exception):
    """No validated champion is loaded yet: prediction endpoints answer 503."""


class OverloadedError(Exception):
    """The queue is full (requests or texts): shed now, the client retries after Retry-After."""


class DeadlineExceededError(Exception):
    """The request waited for (or in) its model call longer than the deadline."""


class ClientGoneError(Exception):
    """The client disconnected before its answer was computed; nothing is computed for it."""


class PredictionFailedError(Exception):
    """The model raised on this request's texts (other requests of the same call were answered)."""


@dataclass(frozen=True)
class BatchResult:
    """What one request gets back: every text predicted by the same model version."""

    version: str
    labels: list[str]
    confidences: list[float]


@dataclass(eq=False)  # identity: a pending request is removed from the queue by identity, never by value
class _Pending:
    texts: Sequence[str]
    future: asyncio.Future[BatchResult]
    taken: int = 0  # texts already handed to model calls (a large request is predicted slice by slice)
    model: LoadedModel | None = None  # set at its first call: every slice of a request uses the same version
    labels: list[str] = field(default_factory=list)
    confidences: list[float] = field(default_factory=list)

    @property
    def remaining(self) -> int:
        return len(self.texts) - self.taken


@dataclass(frozen=True)
class _Slice:
    """Texts [start, end) of one request, in one model call."""

    pending: _Pending
    start: int
    end: int

    @property
    def texts(self) -> Sequence[str]:
        return self.pending.texts[self.start : self.end]


class MicroBatcher:
    def __init__(
        self,
        store: ModelStore,
        metrics: ServiceMetrics,
        max_texts: int,
        max_wait_seconds: float,
        drift: DriftMonitor | None = None,
        max_queue_requests: int = 512,
        max_queue_texts: int = 2048,
        deadline_seconds: float = 5.0,
        max_chars: int = DEFAULT_MAX_CALL_CHARS,
    ) -> None:
        self._store = store
        self._drift = drift
        self._metrics = metrics
        self._max_texts = max_texts
        self._max_chars = max_chars
        self._max_wait = max_wait_seconds
        self._max_queue_requests = max_queue_requests
        self._max_queue_texts = max_queue_texts
        self._deadline = deadline_seconds
        self._queue: deque[_Pending] = deque()
        self._queued_texts = 0
        metrics.queue_requests.set_function(lambda: len(self._queue))
        metrics.queue_texts.set_function(lambda: self._queued_texts)
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

    async def predict(
        self, texts: Sequence[str], abandoned: Callable[[], Awaitable[object]] | None = None
    ) -> BatchResult:
        """Queue texts for the next vectorised call; resolves with the version that predicted them.

        abandoned: returns when the caller no longer wants the answer (its client disconnected); the request
        then leaves the queue and `ClientGoneError` is raised.
        """
        if self._store.current is None:
            raise NoChampionError
        if len(self._queue) >= self._max_queue_requests or self._queued_texts + len(texts) > self._max_queue_texts:
            self._metrics.shed_requests.labels(reason="overloaded").inc()
            raise OverloadedError(
                f"the prediction queue is full ({len(self._queue)} requests, {self._queued_texts} texts waiting;"
                f" limits QUEUE_MAX_REQUESTS={self._max_queue_requests}, QUEUE_MAX_TEXTS={self._max_queue_texts})"
            )
        loop = asyncio.get_running_loop()
        future: asyncio.Future[BatchResult] = loop.create_future()
        pending = _Pending(texts, future)
        self._queue.append(pending)
        self._queued_texts += len(texts)
        self._wakeup.set()
        timer = loop.call_later(self._deadline, self._drop, pending, "timeout")
        watcher = loop.create_task(self._watch(abandoned, pending)) if abandoned is not None else None
        try:
            return await future
        finally:
            timer.cancel()
            if watcher is not None:
                watcher.cancel()

    async def _watch(self, abandoned: Callable[[], Awaitable[object]], pending: _Pending) -> None:
        await abandoned()
        self._drop(pending, "client_gone")

    def _drop(self, pending: _Pending, reason: str) -> None:
        """Fail a request that is still waiting, and free its place in the queue at once."""
        if pending.future.done():
            return
        self._metrics.shed_requests.labels(reason=reason).inc()
        if reason == "timeout":
            pending.future.set_exception(
                DeadlineExceededError(f"no answer within the {self._deadline:g} s deadline (REQUEST_TIMEOUT_SECONDS)")
            )
        else:
            pending.future.set_exception(ClientGoneError())
        try:
            self._queue.remove(pending)  # O(queue length), only on this rare path
        except ValueError:
            return  # its model call is running: the result is discarded and no further slice is taken
        self._queued_texts -= pending.remaining

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            if not self._queue:
                continue
            await self._gather(loop)
            # One more loop iteration before taking: a disconnect the loop has just read (connection_lost)
            # wakes its request's watcher, which drops the request now rather than after its model call.
            await asyncio.sleep(0)
            batch = self._take()
            try:
                await self._call(loop, batch)
            except asyncio.CancelledError:
                for part in batch:
                    if not part.pending.future.done():
                        part.pending.future.cancel()
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

    def _take(self) -> list[_Slice]:
        """The next model call: whole requests from the head of the queue within the call's text and character
        budget; or, when the head alone exceeds it, one slice of it (the rest goes back into the queue after the
        call, behind whatever arrived meanwhile)."""
        batch: list[_Slice] = []
        count = 0
        chars = 0
        while self._queue:
            pending = self._queue[0]
            if pending.future.done():  # the client went away (request cancelled): nothing to compute
                self._queue.popleft()
                self._queued_texts -= pending.remaining
                continue
            if batch and pending.taken:
                break  # a request already in progress is bound to its model version: its slices go alone
            end = pending.taken
            while end < len(pending.texts):
                size = len(pending.texts[end])
                # Always at least one text per call: a text is never split (it is at most MAX_TEXT_CHARS).
                if (batch or end > pending.taken) and (count + 1 > self._max_texts or chars + size > self._max_chars):
                    break
                count += 1
                chars += size
                end += 1
            if end < len(pending.texts) and batch:
                break  # never split a request that a later call can take whole
            self._queue.popleft()
            self._queued_texts -= pending.remaining
            batch.append(_Slice(pending, pending.taken, end))
            pending.taken = end
            if end < len(pending.texts) or batch[-1].start > 0:
                break  # a slice of a large request: alone in its call
        return batch

    async def _call(self, loop: asyncio.AbstractEventLoop, batch: list[_Slice]) -> None:
        if not batch:
            return
        # Read the reference once: the whole call (and every request in it) is served by this model; a request
        # predicted in slices keeps the model of its first slice.
        model = batch[0].pending.model if len(batch) == 1 and batch[0].pending.model else self._store.current
        if model is None:
            for part in batch:
                part.pending.future.set_exception(NoChampionError())
            return
        texts = [text for part in batch for text in part.texts]
        started = time.perf_counter()
        try:
            labels, confidences = await loop.run_in_executor(self._executor, model.predict, texts)
        except Exception as error:
            if len(batch) > 1:
                # Coalesced requests must not share one request's failure: retry each alone (only on this path).
                logger.warning(
                    "model version %s failed on a call of %d requests (%s); retrying them one by one",
                    model.version,
                    len(batch),
                    type(error).__name__,
                )
                for part in batch:
                    if not part.pending.future.done():
                        await self._call(loop, [part])
                return
            pending = batch[0].pending
            logger.exception("model version %s failed on a request of %d texts", model.version, len(pending.texts))
            if not pending.future.done():
                pending.future.set_exception(
                    PredictionFailedError(
                        f"model version {model.version} failed on this request ({type(error).__name__}); it was logged"
                    )
                )
            return
        self._observe(model, texts, labels, time.perf_counter() - started, confidences)
        offset = 0
        for part in batch:
            pending, size = part.pending, part.end - part.start
            offset += size
            if pending.future.done():  # dropped meanwhile (client gone, deadline): no further slice
                continue
            pending.model = model
            pending.labels.extend(labels[offset - size : offset])
            pending.confidences.extend(confidences[offset - size : offset])
            if part.end == len(pending.texts):
                pending.future.set_result(BatchResult(model.version, pending.labels, pending.confidences))
            else:  # behind the requests that arrived during this slice: they wait for one slice, not for all
                self._queue.append(pending)
                self._queued_texts += pending.remaining

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
