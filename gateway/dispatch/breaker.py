"""Circuit breakers, one per deployment: open after `failures` failures within
`window_seconds`, skip the deployment while open, let one probe through (half-open)
after `cooldown_seconds`; the probe's result closes or re-opens it.

State is per process. With a shared state backend (Redis) the failure count and the
"open" mark are shared too, so one instance's failures open the breaker everywhere;
the shared mark is read at most every SYNC_SECONDS per deployment to keep it off the
hot path.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import IntEnum

from gateway.config.routing import BreakerConfig
from gateway.observability.metrics import Metrics
from gateway.state import StateBackend

log = logging.getLogger("gateway")
SYNC_SECONDS = 0.5


class BreakerState(IntEnum):  # the values are the gateway_breaker_state gauge
    CLOSED = 0
    HALF_OPEN = 1
    OPEN = 2


@dataclass
class Breaker:
    config: BreakerConfig
    state: BreakerState = BreakerState.CLOSED
    failures: deque[float] = field(default_factory=deque)
    opened_at: float = 0.0
    probing: bool = False

    def allow(self, now: float) -> bool:
        if self.state is BreakerState.OPEN and now - self.opened_at >= self.config.cooldown_seconds:
            self.state, self.probing = BreakerState.HALF_OPEN, False
        if self.state is BreakerState.CLOSED:
            return True
        if self.state is BreakerState.HALF_OPEN and not self.probing:
            self.probing = True  # exactly one request probes; the rest still skip it
            return True
        return False

    def succeeded(self) -> None:
        self.state, self.probing = BreakerState.CLOSED, False
        self.failures.clear()

    def failed(self, now: float) -> bool:
        """Count a failure; True when this one opened the breaker."""
        if self.state is BreakerState.HALF_OPEN:
            self.trip(now)
            return True
        self.failures.append(now)
        while self.failures and now - self.failures[0] > self.config.window_seconds:
            self.failures.popleft()
        if self.state is BreakerState.CLOSED and len(self.failures) >= self.config.failures:
            self.trip(now)
            return True
        return False

    def trip(self, now: float) -> None:
        self.state, self.opened_at, self.probing = BreakerState.OPEN, now, False
        self.failures.clear()


class Breakers:
    def __init__(
        self,
        config: BreakerConfig,
        metrics: Metrics,
        shared: StateBackend | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self.metrics = metrics
        self.shared = shared if config.shared else None
        self.clock = clock
        self.breakers: dict[str, Breaker] = {}
        self._synced: dict[str, float] = {}

    def _breaker(self, name: str) -> Breaker:
        breaker = self.breakers.get(name)
        if breaker is None:
            breaker = self.breakers[name] = Breaker(self.config)
        return breaker

    async def allow(self, name: str) -> bool:
        if not self.config.enabled:
            return True
        breaker = self._breaker(name)
        now = self.clock()
        if breaker.state is BreakerState.CLOSED and await self._opened_elsewhere(name, now):
            breaker.trip(now)
        before = breaker.state
        allowed = breaker.allow(now)
        if breaker.state is not before:
            self._publish(name, breaker)
        return allowed

    async def succeeded(self, name: str) -> None:
        breaker = self.breakers.get(name)
        if breaker is None or breaker.state is BreakerState.CLOSED:
            return  # failures stay counted: N within the window open it, successes or not
        breaker.succeeded()
        self._publish(name, breaker)
        await self._shared_call("delete", f"breaker:{name}:open")

    async def failed(self, name: str) -> None:
        if not self.config.enabled:
            return
        breaker = self._breaker(name)
        now = self.clock()
        opened = breaker.failed(now)
        if not opened and self.shared is not None and breaker.state is BreakerState.CLOSED:
            count = await self._shared_call(
                "incr", f"breaker:{name}:failures", 1, self.config.window_seconds
            )
            if isinstance(count, int | float) and count >= self.config.failures:
                breaker.trip(now)
                opened = True
        if opened:
            log.warning("circuit breaker opened", extra={"deployment": name})
            self._publish(name, breaker)
            await self._shared_call("delete", f"breaker:{name}:failures")
            cooldown = self.config.cooldown_seconds
            await self._shared_call("set", f"breaker:{name}:open", b"1", cooldown)

    def snapshot(self) -> dict[str, str]:
        return {name: b.state.name.lower() for name, b in sorted(self.breakers.items())}

    async def _opened_elsewhere(self, name: str, now: float) -> bool:
        if self.shared is None or now - self._synced.get(name, -SYNC_SECONDS) < SYNC_SECONDS:
            return False
        self._synced[name] = now
        return await self._shared_call("get", f"breaker:{name}:open") is not None

    async def _shared_call(self, method: str, *args: object) -> object:
        """A shared-state call that never fails dispatch: Redis down means local only."""
        if self.shared is None:
            return None
        try:
            return await getattr(self.shared, method)(*args)
        except Exception:
            log.warning("shared breaker state unavailable", exc_info=True)
            return None

    def _publish(self, name: str, breaker: Breaker) -> None:
        self.metrics.breaker_state.labels(name).set(int(breaker.state))
