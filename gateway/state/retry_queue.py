"""Debits that could not be written now: kept in process and retried until they are.

A reply's cost (spend) or token settlement that Redis cannot take at the moment (down,
hung, or a busy pool) goes here instead of being lost. One writer task per queue retries
in the background, every pending item in one batch (the store merges the batch into one
pipeline); it waits while the shared health view says Redis is down. The queue is bounded
(`limit` items): past it the oldest debit is dropped and counted, so a long outage costs
memory in proportion to the limit, never more. `flush()` runs at shutdown: one last write
of what is left, and what still cannot be written is counted as dropped and logged.

Delivery is at least once: a debit that was never sent (Redis marked down, a busy pool,
a refused connection) is written exactly once; one whose write timed out may have landed
and is written again, so a hung Redis can count that one debit twice, never lose it.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

from gateway.observability.metrics import Metrics
from gateway.state.health import RedisHealth

log = logging.getLogger("gateway")

T = TypeVar("T")
DEFAULT_LIMIT = 100_000
RETRY_SECONDS = 0.2
MAX_RETRY_SECONDS = 5.0


class RetryQueue(Generic[T]):
    def __init__(
        self,
        store: str,
        write: Callable[[list[T]], Awaitable[None]],
        metrics: Metrics | None,
        health: RedisHealth | None = None,
        limit: int = DEFAULT_LIMIT,
    ) -> None:
        self.store = store  # a metric label: spend, limits
        self.write = write  # writes a whole batch, or raises and writes none of it
        self.metrics = metrics
        self.health = health
        self.items: collections.deque[T] = collections.deque()
        self.limit = limit
        self.dropped = 0
        self._writer: asyncio.Task[None] | None = None

    def __len__(self) -> int:
        return len(self.items)

    def put(self, item: T) -> None:
        if len(self.items) >= self.limit:
            self.items.popleft()
            self._count_dropped(1)
        self.items.append(item)
        self._gauge()
        if self._writer is None or self._writer.done():
            self._writer = asyncio.get_running_loop().create_task(self._retry())

    async def _retry(self) -> None:
        wait = RETRY_SECONDS
        while self.items:
            await asyncio.sleep(wait)
            if self.health is not None and not self.health.up:
                continue  # the one probe will tell when Redis is back
            if await self._write_pending():
                wait = RETRY_SECONDS
            else:
                wait = min(wait * 2, MAX_RETRY_SECONDS)

    async def _write_pending(self) -> bool:
        batch = list(self.items)
        try:
            await self.write(batch)
        except Exception as exc:
            log.warning(
                "queued debits not written yet; retrying",
                extra={"store": self.store, "pending": len(batch), "error": type(exc).__name__},
            )
            return False
        for _ in batch:  # new items may have arrived during the write: keep those
            self.items.popleft()
        self._gauge()
        return True

    async def flush(self, timeout: float = 5.0) -> None:
        """Shutdown: stop retrying, write what is left once, count what is lost."""
        if self._writer is not None:
            self._writer.cancel()
            with contextlib.suppress(BaseException):
                await self._writer
        if not self.items:
            return
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._write_pending(), timeout)
        if self.items:
            lost = len(self.items)
            self.items.clear()
            self._gauge()
            self._count_dropped(lost)
            log.error("debits lost at shutdown: Redis did not take them", extra={"lost": lost})

    def _count_dropped(self, count: int) -> None:
        self.dropped += count
        if self.metrics is not None:
            self.metrics.debits_dropped.labels(self.store).inc(count)

    def _gauge(self) -> None:
        if self.metrics is not None:
            self.metrics.debit_queue_depth.labels(self.store).set(len(self.items))
