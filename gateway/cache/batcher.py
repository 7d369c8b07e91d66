"""Micro-batching for the local embedder: concurrent requests share one forward pass.

Texts submitted while the worker thread computes wait for its next batch; a quiet period
ends with a gather window (`gather_s`, at most a few ms) so requests arriving together
start together. Each batch is one call of `run` in one dedicated worker thread, so the
event loop never computes and batches never compete for the core. The same text asked
again while it is in flight waits for that computation instead of repeating it.

The worker thread may run at a lower priority (`nice`, Linux only): when the event loop
and a forward pass want the same core, the scheduler then wakes the loop first.

All state is touched on the event loop only; a new event loop (tests, `asyncio.run`
called twice) starts with a fresh queue.
"""

from __future__ import annotations

import asyncio
import concurrent.futures as cf
import os
import sys
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

MAX_GATHER_S = 0.002  # the bound: a request never waits longer to be batched


class MicroBatcher:
    """Runs `run(texts) -> rows` on batches of concurrently submitted texts."""

    def __init__(
        self,
        run: Callable[[list[str]], np.ndarray],
        gather_s: float = 0.0,
        max_batch: int = 32,
        nice: int = 0,
    ) -> None:
        if not 0.0 <= gather_s <= MAX_GATHER_S:
            raise ValueError(f"gather_s: {gather_s} is not within [0, {MAX_GATHER_S}]")
        self._run = run
        self.gather_s = gather_s
        self.max_batch = max_batch
        self._worker = cf.ThreadPoolExecutor(
            1, thread_name_prefix="gateway-embed", initializer=lower_priority, initargs=(nice,)
        )
        self._loop: asyncio.AbstractEventLoop | None = None
        self._queue: list[tuple[str, str]] = []  # (key, text)
        self._waiting: dict[str, asyncio.Future[np.ndarray]] = {}  # queued or in flight
        self._drain: asyncio.Task[None] | None = None
        self.batches = 0  # forward passes run (for tests and benchmarks)
        self.seconds_per_text = 0.0  # recent batches' wall time per text (an EWMA)
        self._running = 0  # texts in the batch computing now

    def expected_wait(self) -> float:
        """Seconds a text submitted now would wait behind the others before its own pass:
        what is queued and computing, at the recent pace (0 when the worker is idle)."""
        return (len(self._queue) + self._running) * self.seconds_per_text

    async def submit(self, keys: list[str], texts: list[str]) -> list[np.ndarray]:
        """The rows for `texts` (one per text); `keys` identify equal texts (see embedders)."""
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            self._loop, self._queue, self._waiting, self._drain = loop, [], {}, None
        futures = []
        for key, text in zip(keys, texts, strict=True):
            future = self._waiting.get(key)
            if future is None:
                future = self._waiting[key] = loop.create_future()
                self._queue.append((key, text))
            futures.append(future)
        if self._drain is None:
            self._drain = loop.create_task(self._run_batches())
        # shield: one caller leaving (client gone) must not cancel a row others wait for
        return list(await asyncio.gather(*(asyncio.shield(f) for f in futures)))

    async def _run_batches(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            await asyncio.sleep(self.gather_s)  # 0: still lets this loop tick's arrivals in
            while self._queue:
                batch, self._queue = self._queue[: self.max_batch], self._queue[self.max_batch :]
                keys, texts = [key for key, _ in batch], [text for _, text in batch]
                self._running, started = len(texts), time.monotonic()
                try:
                    rows = await loop.run_in_executor(self._worker, self._run, texts)
                except Exception as exc:
                    self._settle(keys, None, exc)
                else:
                    self.batches += 1
                    self._pace(time.monotonic() - started, len(texts))
                    self._settle(keys, rows, None)
                finally:
                    self._running = 0
        finally:
            self._drain = None

    def _pace(self, seconds: float, texts: int) -> None:
        per_text = seconds / texts
        previous = self.seconds_per_text
        self.seconds_per_text = per_text if not previous else 0.8 * previous + 0.2 * per_text

    def _settle(self, keys: list[str], rows: np.ndarray | None, error: Exception | None) -> None:
        for i, key in enumerate(keys):
            future = self._waiting.pop(key)
            if future.done():
                continue
            if error is not None:
                future.set_exception(error)
            else:
                assert rows is not None
                future.set_result(rows[i])

    def close(self) -> None:
        self._worker.shutdown(wait=False, cancel_futures=True)


def lower_priority(nice: int) -> None:
    """Raise the calling thread's nice value by `nice`. Only on Linux, where a thread's
    native id names it to setpriority (elsewhere it would name a process)."""
    if nice > 0 and sys.platform.startswith("linux"):
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, os.getpriority(os.PRIO_PROCESS, tid) + nice)
