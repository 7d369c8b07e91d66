"""The limiter across Redis outages: after the first failure it decides per process at once
(a hung Redis costs only the first request its timeout), and it returns to Redis, counting
exactly, when the probe sees Redis answer; a failure begun before that return starts no new
outage."""

from __future__ import annotations

import asyncio
import signal
import time
import uuid
from collections.abc import Iterator

import pytest
from limits import parse

from gateway.errors import LimiterBusy
from gateway.observability.metrics import Metrics
from gateway.ratelimit.limiter import Limiter, Rule
from tests.redis_servers import Servers, plain_server, stop_all


@pytest.fixture
def redis_port() -> Iterator[tuple[int, Servers]]:
    servers: Servers = []
    try:
        yield plain_server(servers), servers
    finally:
        for process in servers:  # never leave one stopped: kill needs it resumed to exit
            process.send_signal(signal.SIGCONT)
        stop_all(servers)


def redis_errors(limiter: Limiter) -> float:
    return limiter.metrics.redis_errors.labels("ratelimit")._value.get()


def fallback_gauge(limiter: Limiter) -> float:
    return limiter.metrics.ratelimit_fallback._value.get()


async def timed_acquire(limiter: Limiter, rule: Rule) -> float:
    started = time.monotonic()
    decision = await limiter.acquire([(rule, 1)])
    assert decision.allowed
    return time.monotonic() - started


async def test_hung_redis_costs_only_the_first_request_its_timeout(
    redis_port: tuple[int, Servers],
) -> None:
    port, (server,) = redis_port
    limiter = Limiter(f"redis://127.0.0.1:{port}/0", f"t{uuid.uuid4().hex}:", Metrics())
    rule = Rule("ip", "requests", parse("1000/minute"), "client")
    try:
        await timed_acquire(limiter, rule)
        server.send_signal(signal.SIGSTOP)  # the socket stays open, nothing answers
        first = await timed_acquire(limiter, rule)
        assert limiter.degraded and fallback_gauge(limiter) == 1
        assert redis_errors(limiter) == 1
        after = [await timed_acquire(limiter, rule) for _ in range(20)]
        # Redis was not tried again by any of them: the per-process fallback decided.
        assert redis_errors(limiter) == 1 and limiter.degraded
        print(f"\nhung Redis: first request {first:.2f} s, then at most {max(after):.4f} s")

        server.send_signal(signal.SIGCONT)
        deadline = time.monotonic() + 10
        while limiter.degraded and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert not limiter.degraded and fallback_gauge(limiter) == 0
        fresh = Rule("ip", "requests", parse("1000/minute"), "after")
        for _ in range(5):
            await timed_acquire(limiter, fresh)
        (window,) = await limiter.primary.windows([fresh])
        assert window.remaining == 995  # each decided once, in Redis
    finally:
        server.send_signal(signal.SIGCONT)
        await limiter.aclose()


class StaleFailure:
    """A primary whose one call in flight fails only after the limiter has recovered."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.entered = asyncio.Event()

    async def acquire(self, *args: object) -> object:
        self.entered.set()
        await self.release.wait()
        raise ConnectionError("connection dropped by the recovery")

    async def ping(self) -> bool:
        return True

    async def reset_connections(self) -> None:
        return None

    async def aclose(self) -> None:
        return None


async def test_a_failure_begun_before_the_recovery_starts_no_new_outage() -> None:
    limiter = Limiter("memory://", "t:", Metrics())
    limiter.primary = primary = StaleFailure()  # type: ignore[assignment]
    rule = Rule("ip", "requests", parse("10/minute"), "client")
    in_flight = asyncio.create_task(limiter.acquire([(rule, 1)], "open"))
    await primary.entered.wait()
    limiter._degrade(ConnectionError("outage"))
    while limiter.degraded:  # the probe sees Redis answer at once
        await asyncio.sleep(0.01)
    primary.release.set()
    assert (await in_flight).allowed  # decided by the fallback, once
    assert not limiter.degraded and limiter.epoch == 1
    await limiter.aclose()


def run_late(seconds: float) -> None:
    """Hold the event loop, as a process whose CPU is saturated does."""
    time.sleep(seconds)


async def test_a_timeout_while_the_loop_runs_late_is_load_not_an_outage(
    redis_port: tuple[int, Servers],
) -> None:
    """Under CPU saturation a Redis answer waits unread while the loop serves others, and
    the call times out. Taken for an outage, limits would switch to per-process counts
    (N instances admit N times a limit) when the gateway is busiest: it answers 503
    instead, Redis stays up. A stall before the call began does not count, and the same
    timeout with the loop on time is an outage, as ever."""
    port, (server,) = redis_port
    limiter = Limiter(f"redis://127.0.0.1:{port}/0", f"t{uuid.uuid4().hex}:", Metrics())
    rule = Rule("ip", "requests", parse("1000/minute"), "client")
    try:
        await timed_acquire(limiter, rule)
        run_late(0.4)  # a stall before the calls below (start-up, a big body): not theirs
        await asyncio.sleep(0.15)
        server.send_signal(signal.SIGSTOP)  # nothing answers: every call times out
        call = asyncio.create_task(limiter.acquire([(rule, 1)]))
        await asyncio.sleep(0.05)  # the call is in flight
        run_late(0.4)
        with pytest.raises(LimiterBusy):
            await call
        assert not limiter.degraded and fallback_gauge(limiter) == 0
        assert limiter.redis_health.load_failures == 1
        await timed_acquire(limiter, rule)  # the loop on time: an outage, the fallback decides
        assert limiter.degraded and fallback_gauge(limiter) == 1
    finally:
        server.send_signal(signal.SIGCONT)
        await limiter.aclose()
