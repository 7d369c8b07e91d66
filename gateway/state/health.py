"""One view per process of whether Redis answers, shared by every Redis user.

The key store, the limiter, budgets, the exact cache, shared breakers and experiments all
ask the same `RedisHealth` before a call. The first call that times out or cannot connect
marks Redis down: every later call goes to its own fallback at once (`RedisUnavailable`,
raised before anything is sent) instead of waiting out its own timeout, and exactly one
probe runs in the background until Redis answers again. A call that began before the
last recovery and fails after it says nothing about Redis now, so it starts no outage
(each call remembers the epoch it began in).

Waiting for a pooled connection is back-pressure, not an outage: `PoolExhausted` never
marks Redis down. Nor does a call that timed out while this process's event loop was
running late (gateway/state/loop_lag.py): the answer was most likely there, unread, while
the loop served other requests. Both are load (`is_load`): the rate limiter answers such
a request 503 (try again) rather than deciding it per process; other Redis users fall
back for that one call.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from types import TracebackType

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import MaxConnectionsError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from gateway.observability.metrics import Metrics
from gateway.state.loop_lag import LoopLag

log = logging.getLogger("gateway")

PROBE_SECONDS = 0.5


class RedisUnavailable(RedisConnectionError):
    """Redis is marked down: the call was not sent; use the fallback."""


class PoolExhausted(RedisConnectionError):
    """Every pooled connection stayed busy for the pool timeout (load, not an outage)."""


BUSY = (PoolExhausted, MaxConnectionsError)  # the latter: a full Cluster node pool
TIMEOUTS = (TimeoutError, RedisTimeoutError)


def is_outage(exc: BaseException) -> bool:
    """Errors that say Redis does not answer (not a busy pool, not a bad command)."""
    if isinstance(exc, (*BUSY, RedisUnavailable, ResponseError)):
        return False
    return isinstance(exc, Exception)


class RedisHealth:
    def __init__(
        self,
        ping: Callable[[], Awaitable[bool]],
        metrics: Metrics | None = None,
        probe_seconds: float = PROBE_SECONDS,
    ) -> None:
        self.ping = ping
        self.metrics = metrics
        self.probe_seconds = probe_seconds
        self.up = True
        self.epoch = 0  # recoveries so far
        self.outages = 0  # times Redis was marked down
        self.failures = 0  # calls that failed for want of Redis (timeouts, refusals)
        self.load_failures = 0  # of those, timeouts while the loop ran late (no outage)
        self.on_down: list[Callable[[BaseException], None]] = []
        self.on_recovery: list[Callable[[], Awaitable[None]]] = []  # before `up` is set
        self._probe: asyncio.Task[None] | None = None
        self.lag = LoopLag()
        self.lag.start()  # built in the server's loop: measured from the first request on
        if metrics is not None:
            metrics.redis_up.set(1)

    def is_load(self, exc: BaseException, started: float = 0.0) -> bool:
        """Whether `exc` says this process is overloaded rather than Redis down: a busy
        pool, or a timeout of a call begun at `started` (`lag.now()`) during which the
        event loop stalled."""
        if isinstance(exc, BUSY):
            return True
        return isinstance(exc, TIMEOUTS) and self.lag.late_since(started)

    def guard(self) -> Guard:
        """`with health.guard(): await client...`: skips the call while Redis is down and
        marks it down when the call fails for want of Redis."""
        return Guard(self)

    def check(self) -> int:
        """The current epoch, or RedisUnavailable at once while Redis is marked down."""
        if not self.up:
            if self.metrics is not None:
                self.metrics.redis_skipped.inc()
            raise RedisUnavailable("Redis is marked down; using the fallback")
        return self.epoch

    def failed(self, epoch: int, exc: BaseException, started: float = 0.0) -> None:
        """A call begun in `epoch` (at `started`, `lag.now()`) failed with `exc`: mark
        Redis down if that says so."""
        if not is_outage(exc):
            return
        self.failures += 1
        if self.is_load(exc, started):
            self.load_failures += 1
            return
        if epoch != self.epoch or not self.up:
            return
        self.up = False
        self.outages += 1
        if self.metrics is not None:
            self.metrics.redis_up.set(0)
        log.warning(
            "Redis unreachable; every Redis user serves from its fallback until it answers",
            extra={"error": type(exc).__name__},
        )
        for listener in self.on_down:
            listener(exc)
        self._probe = asyncio.get_running_loop().create_task(self._recover())

    async def _recover(self) -> None:
        while not await self._ping():
            await asyncio.sleep(self.probe_seconds)
        for hook in self.on_recovery:
            with contextlib.suppress(Exception):
                await hook()
        self.epoch += 1
        self.up = True
        if self.metrics is not None:
            self.metrics.redis_up.set(1)
        log.warning("Redis reachable again; shared state restored")

    async def _ping(self) -> bool:
        try:
            return bool(await self.ping())
        except Exception:
            return False

    async def aclose(self) -> None:
        self.lag.stop()
        if self._probe is not None:
            self._probe.cancel()
            with contextlib.suppress(BaseException):
                await self._probe


class Guard:
    """A cheap synchronous context manager around one awaited Redis call."""

    __slots__ = ("epoch", "health", "started")

    def __init__(self, health: RedisHealth) -> None:
        self.health = health
        self.epoch = 0
        self.started = 0.0

    def __enter__(self) -> Guard:
        self.epoch = self.health.check()
        self.started = self.health.lag.now()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if exc is not None:
            self.health.failed(self.epoch, exc, self.started)
