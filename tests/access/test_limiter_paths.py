"""The limiter's three paths decide alike: memory, Redis in one script call (plain and
Sentinel) and Redis rule by rule with the library's scripts (Cluster). A refused request
takes nothing from any rule, and the counts stay readable by the library's own scripts."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
import redis
from limits import parse

from gateway.observability.metrics import Metrics
from gateway.ratelimit.limiter import Limiter, RedisWindows, Rule

KEY_RULE = Rule("key", "requests", parse("4/minute"), "k")
TOKENS = Rule("key", "tokens", parse("100/minute"), "k")
GLOBAL = Rule("global", "requests", parse("3/minute"), "*")

# (charges, refused rule or None): run in order against one fresh limiter.
STEPS = [
    ([(KEY_RULE, 1), (TOKENS, 30), (GLOBAL, 1)], None),
    ([(KEY_RULE, 1), (TOKENS, 80), (GLOBAL, 1)], TOKENS),  # 30 + 80 > 100: nothing taken
    ([(KEY_RULE, 1), (TOKENS, 70), (GLOBAL, 1)], None),  # exactly 100 tokens
    ([(KEY_RULE, 1), (GLOBAL, 1)], None),
    ([(KEY_RULE, 1), (GLOBAL, 1)], GLOBAL),  # global full; the key keeps its 4th request
    ([(KEY_RULE, 1)], None),
    ([(KEY_RULE, 1)], KEY_RULE),
    ([(TOKENS, 101)], TOKENS),  # more than the whole limit
]
REMAINING_AFTER = {KEY_RULE: 0, TOKENS: 0, GLOBAL: 0}


def make(kind: str, redis_url: str) -> Limiter:
    if kind == "memory":
        return Limiter("memory://", "", Metrics())
    limiter = Limiter(redis_url, f"t-{uuid.uuid4().hex[:8]}:", Metrics())
    assert isinstance(limiter.primary, RedisWindows)
    limiter.primary.cluster = kind == "redis-rule-by-rule"
    return limiter


@pytest.fixture(params=["memory", "redis-one-call", "redis-rule-by-rule"])
async def limiter(request: pytest.FixtureRequest, redis_url: str) -> AsyncIterator[Limiter]:
    redis.Redis.from_url(redis_url).ping()  # fail, not skip, without Redis
    made = make(request.param, redis_url)
    yield made
    await made.aclose()


async def test_every_path_decides_alike_and_refusals_take_nothing(limiter: Limiter) -> None:
    for charges, refused in STEPS:
        decision = await limiter.acquire(charges)
        assert decision.refused == refused, charges
        assert not limiter.degraded
        if refused is not None:
            assert any(w.rule == refused for w in decision.windows)  # for Retry-After
            assert decision.retry_after() >= 1
    windows = await limiter._call("windows", (list(REMAINING_AFTER),), "open")
    assert {w.rule: w.remaining for w in windows} == REMAINING_AFTER


async def test_headers_window_is_the_one_after_taking(limiter: Limiter) -> None:
    decision = await limiter.acquire([(KEY_RULE, 1), (TOKENS, 25), (GLOBAL, 1)])
    # Only the key's windows are reported (the headers describe the key), after the take.
    assert {w.rule: w.remaining for w in decision.windows} == {KEY_RULE: 3, TOKENS: 75}


async def test_one_call_counts_are_read_alike_by_the_library_script(redis_url: str) -> None:
    one_call, by_rule = make("redis-one-call", redis_url), make("redis-rule-by-rule", redis_url)
    assert isinstance(by_rule.primary, RedisWindows) and isinstance(one_call.primary, RedisWindows)
    by_rule.primary.key_prefix = one_call.primary.key_prefix  # the same windows
    try:
        await one_call.acquire([(KEY_RULE, 1), (TOKENS, 40)])
        await by_rule.acquire([(KEY_RULE, 1), (TOKENS, 40)])
        read = await by_rule.primary.windows([KEY_RULE, TOKENS])
        assert [w.remaining for w in read] == [2, 20]
    finally:
        await one_call.aclose()
        await by_rule.aclose()
