"""Debits written in batches (gateway/state/write_batch.py): fewer writes, none lost.

- The debits of a few ms go out in one write, after the batch delay, not before.
- A batch the store cannot take moves to the retry queue and is written once it answers.
- Shutdown writes what is pending, also what waits in the retry queue.
- Against real Redis: an instance's next reservation carries its pending debits in the
  same round trip (it always sees its own spend), a failed reservation keeps them for the
  retry queue, and settlements reach Redis without any further request.
- A Redis without the scripts (restarted) still takes both: nothing counted twice or lost.
- The limiter's token settlements: batched, written at shutdown, and queued (not lost)
  when Redis refuses the batch.
"""

from __future__ import annotations

import asyncio

import pytest
from limits import parse

from gateway.accounting.budgets import PERIODS, SpendStore, period_ids, spend_key
from gateway.observability.metrics import Metrics
from gateway.ratelimit.limiter import Limiter, Rule
from gateway.state.backend import Hold
from gateway.state.redis import RedisState
from gateway.state.retry_queue import RetryQueue
from gateway.state.write_batch import WriteBatch
from tests.redis_keys import drop_prefix, unique_prefix
from tests.redis_servers import Servers, plain_server, stop_all


class Store:
    def __init__(self, up: bool = True) -> None:
        self.up = up
        self.batches: list[list[int]] = []

    async def write(self, batch: list[int]) -> None:
        if not self.up:
            raise ConnectionError("store down")
        self.batches.append(batch)


def batch_for(store: Store, delay: float = 0.01) -> WriteBatch[int]:
    retry: RetryQueue[int] = RetryQueue("spend", store.write, Metrics())
    return WriteBatch(store.write, retry, delay)


async def until(condition, timeout: float = 5.0) -> None:  # type: ignore[no-untyped-def]
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "not reached in time"
        await asyncio.sleep(0.005)


async def test_debits_of_the_interval_go_out_in_one_write() -> None:
    store = Store()
    batch = batch_for(store, delay=0.05)
    for amount in range(10):
        batch.put(amount)
    assert store.batches == [] and len(batch) == 10  # nothing before the delay
    await until(lambda: store.batches)
    assert store.batches == [list(range(10))] and len(batch) == 0
    batch.put(10)
    await until(lambda: len(store.batches) == 2)
    assert store.batches[1] == [10]


async def test_a_batch_the_store_refuses_is_retried_until_written() -> None:
    store = Store(up=False)
    batch = batch_for(store)
    batch.put(1)
    batch.put(2)
    await until(lambda: len(batch.retry) == 2)  # moved to the retry queue, not dropped
    store.up = True
    await until(lambda: len(batch.retry) == 0)
    assert sorted(x for b in store.batches for x in b) == [1, 2]
    assert batch.retry.dropped == 0


async def test_shutdown_writes_what_is_pending() -> None:
    store = Store()
    batch = batch_for(store, delay=60)  # the timer would never fire in this test
    batch.put(5)
    await batch.flush()
    assert store.batches == [[5]]


async def test_taken_items_leave_the_batch_and_stop_its_timer() -> None:
    store = Store()
    batch = batch_for(store, delay=0.01)
    batch.put(3)
    assert batch.take() == [3] and len(batch) == 0
    await asyncio.sleep(0.05)
    assert store.batches == []  # the caller writes them in its own round trip


@pytest.fixture
async def state(redis_url: str):  # type: ignore[no-untyped-def]
    prefix = unique_prefix()
    backend = RedisState(redis_url, prefix, Metrics())
    try:
        yield backend
    finally:
        await backend.aclose()
        drop_prefix(redis_url, prefix)


async def test_a_reservation_carries_the_pending_debits_of_its_instance(state) -> None:  # type: ignore[no-untyped-def]
    hold = [Hold("spend:k", {"usd": 1.0}, {"usd": 2.0})]
    assert await state.reserve(hold, ttl=60) is None
    await state.debit({"spend:k": {"usd": 1.0, "reserved_usd": -1.0}}, ttl=60)
    assert len(state.debit_batch) == 1  # not written yet
    assert await state.reserve(hold, ttl=60) is None  # 1 spent + 1 fits; nothing held twice
    assert len(state.debit_batch) == 0
    assert await state.hgetall_many(["spend:k"]) == [{"usd": 1.0, "reserved_usd": 1.0}]
    assert await state.reserve(hold, ttl=60) == 0  # 1 spent + 1 held + 1 > 2


async def test_a_failed_reservation_keeps_its_debits_for_the_retry_queue(state) -> None:  # type: ignore[no-untyped-def]
    await state.debit({"spend:k": {"usd": 0.5}}, ttl=60)
    real_client = state.client
    state.client = BrokenClient()
    with pytest.raises(ConnectionError):
        await state.reserve([Hold("spend:k", {"usd": 1.0}, {"usd": 2.0})], ttl=60)
    assert len(state.debits) == 1  # queued, not lost
    state.client = real_client
    state.health.up = True
    await until(lambda: len(state.debits) == 0)
    assert await state.hgetall_many(["spend:k"]) == [{"usd": 0.5}]


async def test_settlements_reach_redis_without_another_request(state) -> None:  # type: ignore[no-untyped-def]
    await state.debit({"spend:k": {"usd": 0.25, "requests": 1}}, ttl=60)
    await state.debit({"spend:k": {"usd": 0.25, "requests": 1}}, ttl=60)
    await until(lambda: len(state.debit_batch) == 0)
    await until(lambda: state.debit_batch._writes == set())
    assert await state.hgetall_many(["spend:k"]) == [{"usd": 0.5, "requests": 2.0}]


async def test_group_debits_are_summed_once_and_spread_when_written(state) -> None:  # type: ignore[no-untyped-def]
    keys = ("spend:key:k:day:d", "spend:key:k:month:m", "spend:team:t:day:d")
    for _ in range(3):
        await state.debit_each(keys, {"usd": 0.25, "requests": 1.0}, ttl=60)
    assert len(state._each) == 1  # one group, summed as the debits came
    await until(lambda: not state._each and state.debit_batch._writes == set())
    spent = await state.hgetall_many(list(keys))
    assert spent == [{"usd": 0.75, "requests": 3.0}] * 3


async def test_a_reservation_carries_the_pending_group_debits_too(state) -> None:  # type: ignore[no-untyped-def]
    hold = [Hold("spend:k", {"usd": 1.0}, {"usd": 2.0})]
    assert await state.reserve(hold, ttl=60) is None
    await state.debit_each(("spend:k",), {"usd": 1.0, "reserved_usd": -1.0}, ttl=60)
    assert await state.reserve(hold, ttl=60) is None  # 1 spent + 1 fits; nothing held twice
    assert not state._each
    assert await state.hgetall_many(["spend:k"]) == [{"usd": 1.0, "reserved_usd": 1.0}]


async def test_a_usage_read_sees_this_instance_s_pending_debits(state) -> None:  # type: ignore[no-untyped-def]
    ids = period_ids()
    keys = tuple(spend_key("key", "k", period, ids[period]) for period in PERIODS)
    await state.debit_each(keys, {"usd": 0.5, "tokens": 10.0, "requests": 1.0}, ttl=60)
    usage = await SpendStore(state).usage("key", "k")  # at once: no batch interval waited for
    assert usage["day"]["usd"] == 0.5 and usage["month"]["requests"] == 1.0


async def test_group_debits_pending_at_shutdown_are_written(redis_url: str) -> None:
    prefix = unique_prefix()
    backend = RedisState(redis_url, prefix, Metrics())
    await backend.debit_each(("spend:a", "spend:b"), {"usd": 0.5}, ttl=60)
    await backend.aclose()
    reader = RedisState(redis_url, prefix, Metrics())
    try:
        assert await reader.hgetall_many(["spend:a", "spend:b"]) == [{"usd": 0.5}] * 2
    finally:
        await reader.aclose()
        drop_prefix(redis_url, prefix)


class BrokenClient:
    """A client whose every pipeline fails as a refused connection would."""

    def pipeline(self, transaction: bool = False) -> BrokenClient:
        return self

    async def __aenter__(self) -> BrokenClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    def __getattr__(self, name: str):  # type: ignore[no-untyped-def]
        def queue(*args: object, **kwargs: object) -> None:
            return None

        return queue

    async def execute(self, raise_on_error: bool = True) -> list[object]:
        raise ConnectionError("Redis refused the connection")


async def test_token_settlements_are_batched_and_written_at_shutdown(redis_url: str) -> None:
    prefix = unique_prefix()
    rule = Rule("key", "tokens", parse("1000/minute"), "k")
    limiter = Limiter(redis_url, prefix, Metrics())
    reader = Limiter(redis_url, prefix, Metrics())
    try:
        decisions = [await limiter.acquire([(rule, 100)]) for _ in range(3)]
        for decision in decisions:
            await limiter.settle(decision, [(rule, -90)])  # each used 10 of its 100
        assert len(limiter.settle_batch) == 3  # one write for the three, a few ms later
        await limiter.aclose()  # shutdown writes what is pending
        (window,) = await reader.primary.windows([rule])
        assert window.remaining == 1000 - 3 * 10
    finally:
        await reader.aclose()
        drop_prefix(redis_url, prefix)


async def test_a_settlement_batch_redis_refuses_waits_in_the_retry_queue(redis_url: str) -> None:
    prefix = unique_prefix()
    rule = Rule("key", "tokens", parse("1000/minute"), "k2")
    limiter = Limiter(redis_url, prefix, Metrics())
    try:
        decision = await limiter.acquire([(rule, 100)])
        real_add = limiter.primary.add

        async def refused(charges):  # type: ignore[no-untyped-def]
            raise ConnectionError("Redis refused the connection")

        limiter.primary.add = refused  # type: ignore[method-assign]
        await limiter.settle(decision, [(rule, -60)])
        await until(lambda: len(limiter.settlements) == 1)  # queued, not lost
        limiter.primary.add = real_add  # type: ignore[method-assign]
        await until(lambda: len(limiter.settlements) == 0, timeout=15)
        (window,) = await limiter.primary.windows([rule])
        assert window.remaining == 1000 - 40
    finally:
        await limiter.aclose()
        drop_prefix(redis_url, prefix)


async def test_a_restarted_redis_without_scripts_still_takes_debits_and_reservations() -> None:
    servers: Servers = []
    try:
        port = plain_server(servers)
        state = RedisState(f"redis://127.0.0.1:{port}/0", "t:", Metrics())
        hold = [Hold("spend:k", {"usd": 1.0}, {"usd": 2.0})]
        try:
            assert await state.reserve(hold, ttl=60) is None
            await state.debit({"spend:k": {"usd": 1.0, "reserved_usd": -1.0}}, ttl=60)
            await state.client.script_flush()  # what a restart leaves: no scripts loaded
            assert await state.reserve(hold, ttl=60) is None  # both scripts loaded again
            assert await state.hgetall_many(["spend:k"]) == [{"usd": 1.0, "reserved_usd": 1.0}]
            assert len(state.debits) == 0
        finally:
            await state.aclose()
    finally:
        stop_all(servers)
