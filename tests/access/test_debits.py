"""No debit is lost and none breaks settlement: the retry queue, a busy pool, wild usage.

- A debit the store cannot take now waits in a bounded queue, is retried in one batch,
  and is written at shutdown or counted as dropped (metrics), never silently lost.
- A pool whose every connection is busy makes callers wait (back-pressure); past the
  wait it raises PoolExhausted and Redis is not marked down.
- Usage an upstream reports out of range (negative, huge, not a number) is clamped and
  the reply still settles its spend.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable

import httpx
import orjson
import pytest

from gateway.accounting.usage_bounds import MAX_TOKENS, sane_tokens
from gateway.auth.keys import hash_key
from gateway.observability.metrics import Metrics
from gateway.state.health import PoolExhausted
from gateway.state.redis import RedisState
from gateway.state.retry_queue import RetryQueue
from tests.access.conftest import ADMIN
from tests.redis_keys import drop_prefix
from tests.servers import RunningServer
from tests.upstream import FakeUpstream

KEY = "sk-test-debits-0123456789"


class FlakyStore:
    def __init__(self) -> None:
        self.up = False
        self.written: list[int] = []
        self.batches = 0

    async def write(self, batch: list[int]) -> None:
        self.batches += 1
        if not self.up:
            raise ConnectionError("store down")
        self.written += batch


def depth(metrics: Metrics, store: str) -> float:
    return metrics.debit_queue_depth.labels(store)._value.get()


def dropped(metrics: Metrics, store: str) -> float:
    return metrics.debits_dropped.labels(store)._value.get()


async def test_queued_debits_are_retried_in_one_batch_once_the_store_answers() -> None:
    store, metrics = FlakyStore(), Metrics()
    queue: RetryQueue[int] = RetryQueue("spend", store.write, metrics)
    for amount in (1, 2, 3):
        queue.put(amount)
    assert depth(metrics, "spend") == 3
    while store.batches < 2:  # at least one failed retry
        await asyncio.sleep(0.05)
    store.up = True
    while len(queue):
        await asyncio.sleep(0.05)
    assert store.written == [1, 2, 3] and depth(metrics, "spend") == 0
    await queue.flush()


async def test_the_queue_is_bounded_and_shutdown_counts_what_it_could_not_write() -> None:
    store, metrics = FlakyStore(), Metrics()
    queue: RetryQueue[int] = RetryQueue("limits", store.write, metrics, limit=3)
    for amount in range(5):
        queue.put(amount)
    assert len(queue) == 3 and dropped(metrics, "limits") == 2  # the oldest two
    await queue.flush(timeout=1)  # the store is still down: lost, and counted
    assert dropped(metrics, "limits") == 5 and depth(metrics, "limits") == 0


async def test_shutdown_writes_what_is_queued() -> None:
    store, metrics = FlakyStore(), Metrics()
    queue: RetryQueue[int] = RetryQueue("spend", store.write, metrics)
    queue.put(7)
    store.up = True
    await queue.flush()
    assert store.written == [7] and dropped(metrics, "spend") == 0


async def test_a_busy_pool_waits_then_gives_up_without_marking_redis_down(
    redis_url: str,
) -> None:
    prefix = f"test-pool-{uuid.uuid4().hex[:8]}:"
    state = RedisState(redis_url, prefix, Metrics(), pool_size=1, pool_timeout=10)
    try:
        # 20 calls on one connection: each waits its turn (back-pressure), all succeed.
        await asyncio.gather(*(state.incr("n", 1) for _ in range(20)))
        assert await state.get("n") == b"20"
        # The one connection held by a blocking command past a short pool timeout.
        state.client.connection_pool.timeout = 0.1
        holder = asyncio.create_task(state.client.blpop([prefix + "never"], timeout=0.5))
        await asyncio.sleep(0.05)
        with pytest.raises(PoolExhausted):
            await state.get("n")
        await holder
        assert state.health.up and state.health.outages == 0
        assert await state.get("n") == b"20"
    finally:
        await state.aclose()
        drop_prefix(redis_url, prefix)


@pytest.mark.parametrize(
    ("value", "expected"),
    [(12, 12), (-5, 0), (10**12, MAX_TOKENS), (1e308, MAX_TOKENS), ("12", 0), ([], 0)],
    ids=["plain", "negative", "huge", "huge-float", "string", "list"],
)
def test_usage_figures_are_clamped(value: object, expected: int) -> None:
    assert sane_tokens(value) == expected


@pytest.mark.parametrize(
    ("usage", "tokens"),
    [
        ({"prompt_tokens": -50, "completion_tokens": 4}, 4),
        ({"prompt_tokens": 3, "completion_tokens": 10**15}, 3 + MAX_TOKENS),
        ({"prompt_tokens": "many", "completion_tokens": None}, 0),
        ({"prompt_tokens": 1e308, "completion_tokens": 2}, MAX_TOKENS + 2),
    ],
    ids=["negative", "huge", "not-numbers", "huge-float"],
)
def test_wild_upstream_usage_never_breaks_settlement(
    make_gateway: Callable[[str], RunningServer],
    upstream: FakeUpstream,
    usage: dict,
    tokens: int,
) -> None:
    reply = {
        "id": "x",
        "object": "chat.completion",
        "model": "upstream-model",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}}],
        "usage": usage,
    }
    upstream.reset(raw_body=orjson.dumps(reply))
    gateway = make_gateway(
        "auth:\n  admin_key: ${TEST_ADMIN_KEY}\n  keys:\n"
        f'    - {{id: wild, hash: "{hash_key(KEY)}", budget: {{tokens_per_day: 100000000}}, '
        "limits: {tokens: ['100000000/minute']}}\n"
    )
    body = {"model": "gpt-test", "messages": [{"role": "user", "content": "hi"}]}
    body["max_tokens"] = 5
    answer = httpx.post(
        f"{gateway.url}/v1/chat/completions",
        json=body,
        headers={"authorization": f"Bearer {KEY}"},
    )
    assert answer.status_code == 200, answer.text
    admin = {"authorization": f"Bearer {ADMIN}"}
    for _ in range(50):
        spent = httpx.get(f"{gateway.url}/admin/keys/wild/usage", headers=admin).json()
        if spent["usage"]["day"]["requests"] or not tokens:
            break
        time.sleep(0.05)  # settlement runs when the reply completes
    if tokens:
        assert spent["usage"]["day"]["tokens"] == tokens
