"""x-ratelimit-reset-* means the same on both backends: the time until the window's current
period ends (periods are aligned to multiples of their length since the epoch), "0s" while
the window counts nothing."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx
import pytest
from limits import parse as parse_rate

from gateway.ratelimit.headers import duration, reset_seconds
from gateway.ratelimit.limiter import Rule
from tests.access.conftest import KEY_A, KEYS_YAML, redis_state
from tests.servers import RunningServer

BODY = {"model": "gpt-test", "messages": [{"role": "user", "content": "hi"}]}
AUTH = {"authorization": f"Bearer {KEY_A}"}


def period_end_in(now: float, period: int) -> str:
    return duration(period - now % period)


@pytest.mark.parametrize("backend", ["memory", "redis"])
def test_reset_is_time_to_the_period_end_on_both_backends(
    make_gateway: Callable[[str], RunningServer], backend: str, request: pytest.FixtureRequest
) -> None:
    state = ""
    if backend == "redis":  # only this case needs (and skips or fails without) Redis
        state = redis_state(request.getfixturevalue("redis_url"), request.getfixturevalue("prefix"))
    limits = "limits: {default_key: {requests: ['5/minute', '1000/day'], tokens: ['9000/hour']}}\n"
    gateway = make_gateway(state + "auth:" + KEYS_YAML + limits)
    for _ in range(2):  # the first request too (Redis used to say 0s there)
        before = time.time()
        reply = httpx.post(f"{gateway.url}/v1/chat/completions", json=BODY, headers=AUTH)
        after = time.time()
        assert reply.status_code == 200
        expected = {period_end_in(before, 60), period_end_in(after, 60)}
        assert reply.headers["x-ratelimit-reset-requests"] in expected
        hourly = {period_end_in(before, 3600), period_end_in(after, 3600)}
        assert reply.headers["x-ratelimit-reset-tokens"] in hourly | {"0s"}


def test_an_unused_window_resets_in_zero_seconds() -> None:
    rule = Rule(scope="key", kind="requests", item=parse_rate("5/minute"), identity="k")
    now = time.time()
    assert reset_seconds(rule, 5, now) == 0
    assert 0 < reset_seconds(rule, 4, now) <= 60
