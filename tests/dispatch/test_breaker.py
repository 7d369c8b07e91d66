"""Circuit breakers: open after N failures in a window, half-open probe after the
cool-down, and shared between instances through Redis."""

from __future__ import annotations

import pytest

from gateway.config.routing import BreakerConfig
from gateway.dispatch.breaker import Breakers
from gateway.observability.metrics import Metrics
from gateway.state.redis import RedisState
from tests.redis_keys import drop_prefix, unique_prefix

CONFIG = BreakerConfig(failures=3, window_seconds=10, cooldown_seconds=5)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def fail(breakers: Breakers, name: str, times: int) -> None:
    for _ in range(times):
        await breakers.failed(name)


async def test_opens_after_n_failures_within_window() -> None:
    clock = Clock()
    breakers = Breakers(CONFIG, Metrics(), clock=clock)
    await fail(breakers, "a", 2)
    clock.now += 11  # those two left the window
    await fail(breakers, "a", 2)
    assert await breakers.allow("a")
    await fail(breakers, "a", 1)
    assert not await breakers.allow("a")
    assert await breakers.allow("b")  # other deployments are untouched
    assert breakers.snapshot() == {"a": "open", "b": "closed"}


@pytest.mark.parametrize(("probe_succeeds", "final"), [(True, "closed"), (False, "open")])
async def test_one_half_open_probe_decides(probe_succeeds: bool, final: str) -> None:
    clock = Clock()
    breakers = Breakers(CONFIG, Metrics(), clock=clock)
    await fail(breakers, "a", 3)
    clock.now += 4.9
    assert not await breakers.allow("a")
    clock.now += 0.2
    assert await breakers.allow("a")  # the probe
    assert not await breakers.allow("a")  # only one at a time
    assert breakers.snapshot() == {"a": "half_open"}
    if probe_succeeds:
        await breakers.succeeded("a")
    else:
        await breakers.failed("a")
    assert breakers.snapshot() == {"a": final}
    assert await breakers.allow("a") is probe_succeeds


async def test_disabled_breakers_always_allow() -> None:
    breakers = Breakers(BreakerConfig(enabled=False, failures=1), Metrics())
    await fail(breakers, "a", 5)
    assert await breakers.allow("a")


async def test_breaker_state_is_shared_through_redis(redis_url: str) -> None:
    prefix = unique_prefix()
    one, two = RedisState(redis_url, prefix=prefix), RedisState(redis_url, prefix=prefix)
    try:
        clock = Clock()
        first = Breakers(CONFIG, Metrics(), shared=one, clock=clock)
        second = Breakers(CONFIG, Metrics(), shared=two, clock=clock)
        await fail(first, "a", 2)
        await fail(second, "a", 1)  # the third failure, seen by another instance
        assert second.snapshot() == {"a": "open"}
        assert not await first.allow("a")  # the first instance learns it from Redis
        assert first.snapshot() == {"a": "open"}
    finally:
        await one.aclose()
        await two.aclose()
        drop_prefix(redis_url, prefix)
