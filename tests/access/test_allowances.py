"""Allowances (gateway/state/allowance.py): several requests' worth carved from several
leases at once; every unit still counted once, and nothing held past its leases."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator

import pytest
from limits import parse

from gateway.ratelimit.headers import as_text, ratelimit_headers
from gateway.ratelimit.limiter import RatePlan, Rule
from gateway.state.allowance import ALLOWANCE_REQUESTS, SHARE, Allowance
from gateway.state.backend import Hold
from gateway.state.leases import LeaseBook
from tests.access.test_leases import limiter, state
from tests.redis_keys import drop_prefix


def book_of(*keys: str, amount: float = 1000.0, seconds: float = 5.0) -> LeaseBook:
    book = LeaseBook(seconds, lambda leases: None)
    for key in keys:
        book.grant(key, {"n": amount}, remaining=10 * amount)
    return book


async def test_a_carve_takes_the_same_share_from_every_lease_of_a_group() -> None:
    book = book_of("a", "b", "t", amount=100 * ALLOWANCE_REQUESTS)
    now = time.monotonic()
    carved = book.carve(((("a", "b"), "n", 1), (("t",), "n", 10)), now)
    assert carved is not None
    allowance, low = carved
    # ALLOWANCE_REQUESTS requests' worth: that many units from each request lease, ten
    # times as many tokens from the token one.
    n = ALLOWANCE_REQUESTS
    assert allowance.left == [n, 10 * n] and low == []
    assert [book.leases[k].left["n"] for k in ("a", "b", "t")] == [99 * n, 99 * n, 90 * n]
    assert allowance.take(1, 10, now) and allowance.left == [n - 1, 10 * n - 10]
    assert not allowance.take(1, 10 * n, now)  # both or none
    assert allowance.left == [n - 1, 10 * n - 10]
    book.close()


async def test_a_carve_leaves_most_of_a_small_lease_to_others_and_needs_every_lease() -> None:
    book = book_of("a", amount=40.0)
    now = time.monotonic()
    carved = book.carve(((("a",), "n", 2), ((), "n", 0)), now)
    assert carved is not None
    assert carved[0].left[0] == 2 * (40 // (2 * SHARE))  # a quarter of what the lease holds
    assert book.carve(((("a", "missing"), "n", 1), ((), "n", 0)), now) is None
    assert book.leases["a"].left["n"] == 40 - carved[0].left[0]  # the miss took nothing
    assert book.carve(((("a",), "n", 100), ((), "n", 0)), now) is None  # too little held
    book.close()


async def test_an_ended_allowance_goes_back_into_the_leases_still_held() -> None:
    book = book_of("a", "b")
    now = time.monotonic()
    carved = book.carve(((("a",), "n", 1), (("b",), "n", 5)), now)
    assert carved is not None
    allowance = carved[0]
    assert allowance.take(1, 5, now)
    book.end_allowance(allowance)
    assert [book.leases[k].left["n"] for k in ("a", "b")] == [999.0, 995.0]  # only the spent
    assert [book.leases[k].remaining for k in ("a", "b")] == [9999.0, 9995.0]
    assert not allowance.take(0, 0, now)  # ended: serves nothing more
    book.end_allowance(allowance)  # twice: gives nothing back twice
    assert book.leases["a"].left["n"] == 999.0
    book.close()


def one_lease_allowance(
    seconds: float, amount: float
) -> tuple[LeaseBook, Allowance, list[dict[str, float]]]:
    """A book holding one lease of `amount`, an allowance carved from it, and what the
    book gives back as its leases end."""
    returned: list[dict[str, float]] = []
    book = LeaseBook(seconds, lambda leases: returned.extend(lease.left for lease in leases))
    book.grant("a", {"n": amount})
    carved = book.carve(((("a",), "n", 1), ((), "n", 0)), time.monotonic())
    assert carved is not None
    return book, carved[0], returned


async def test_a_lease_that_ends_ends_its_allowances_first_and_gives_their_rest_back() -> None:
    _, allowance, returned = one_lease_allowance(0.05, 100.0)
    assert allowance.take(3, 0, time.monotonic())
    await asyncio.sleep(0.15)  # the timer ends the lease
    assert returned == [{"n": 97.0}]  # the allowance's unspent part included
    assert not allowance.take(1, 0, time.monotonic())


async def test_leases_in_use_through_an_allowance_live_on_and_end_once_unused() -> None:
    book, allowance, returned = one_lease_allowance(0.1, 1000.0)
    for _ in range(8):  # 0.4 s of use: four times the leases' time
        await asyncio.sleep(0.05)
        assert allowance.take(1, 0, time.monotonic())
    assert len(book) == 1 and returned == []
    await asyncio.sleep(0.3)  # unused: the lease ends, and the allowance first
    assert len(book) == 0 and returned == [{"n": 1000.0 - 8}]  # what it did not spend
    assert not allowance.take(1, 0, time.monotonic())


async def test_a_replaced_lease_ends_the_allowances_and_forget_drops_them() -> None:
    book = book_of("a")
    now = time.monotonic()
    carved = book.carve(((("a",), "n", 1), ((), "n", 0)), now)
    assert carved is not None
    book.grant("a", {"n": 50.0}, window_left_seconds=30.0)  # another period: replaced
    assert not carved[0].take(1, 0, now)
    again = book.carve(((("a",), "n", 1), ((), "n", 0)), now)
    assert again is not None
    book.forget()  # Redis lost: nothing is put back, nothing is spent from them
    assert not again[0].take(1, 0, now) and len(book) == 0


@pytest.fixture
async def prefix(redis_url: str) -> AsyncIterator[str]:
    name = f"test-allowance-{uuid.uuid4().hex[:10]}:"
    yield name
    drop_prefix(redis_url, name)


async def test_rate_decisions_from_allowances_count_every_unit_once(
    redis_url: str, prefix: str
) -> None:
    """Three instances take requests and tokens through their plans' allowances and settle
    each request's tokens into them; once they close, Redis holds exactly what was used."""
    requests = Rule("key", "requests", parse("100000/day"), "k")
    per_model = Rule("model", "requests", parse("100000/day"), "m")
    tokens = Rule("key", "tokens", parse("10000000/day"), "k")
    instances = [limiter(redis_url, prefix) for _ in range(3)]
    plans = [RatePlan([requests, per_model, tokens]) for _ in instances]
    served = 0
    for i in range(600):
        one, plan = instances[i % 3], plans[i % 3]
        decision = await one.take(plan, 100)
        assert decision.allowed
        await one.settle_tokens(decision, plan.token_rules, 30 - 100)
        served += 1
    assert any(plan.allowance is not None for plan in plans)  # served from allowances
    for one in instances:
        await one.aclose()
    exact = limiter(redis_url, prefix, fraction=0)
    rooms = [w.remaining for w in await exact.primary.windows([requests, per_model, tokens])]
    assert rooms == [100000 - served, 100000 - served, 10000000 - 30 * served]
    await exact.aclose()


async def test_the_headers_count_down_one_request_at_a_time_from_an_allowance(
    redis_url: str, prefix: str
) -> None:
    one = limiter(redis_url, prefix)
    requests = Rule("key", "requests", parse("100000/day"), "k")
    plan = RatePlan([requests])
    await one.take(plan, 0)  # leased here
    rooms = [
        int(as_text(ratelimit_headers(await one.take(plan, 0)))["x-ratelimit-remaining-requests"])
        for _ in range(40)
    ]
    assert plan.allowance is not None
    assert rooms == list(range(rooms[0], rooms[0] - 40, -1))
    await one.aclose()


async def test_budget_reservations_from_allowances_never_pass_the_budget_and_settle_exactly(
    redis_url: str, prefix: str
) -> None:
    """As SpendStore.reserve does: from this process's allowance and leases when they hold
    it, else in Redis. Three instances under $1 a day and a month's token cap, each request
    reserving $0.001 and settling at $0.0005: never past the budget, nothing left held."""
    keys = ("spend:key:k:day:d", "spend:key:k:month:m")
    limits = [{"usd": 1.0}, {"tokens": 1e9}]
    holds = [
        Hold(key, {"tokens": 10.0, "usd": 0.001}, lim)
        for key, lim in zip(keys, limits, strict=True)
    ]
    terms = tuple(hold.lease_terms() for hold in holds)
    instances = [state(redis_url, prefix) for _ in range(3)]

    async def reserve(i: int) -> bool:
        one = instances[i % 3]
        leased = one.take_leased(terms, {"tokens": 10.0, "usd": 0.001}, ttl=60)
        if not leased and await one.reserve(holds, ttl=60) is not None:
            return False
        spent = {"tokens": 5.0, "usd": 0.0005, "reserved_tokens": -10.0, "reserved_usd": -0.001}
        await one.debit_each(keys, spent, ttl=60)
        return True

    granted = carved = 0
    for wave in range(0, 2400, 24):
        granted += sum(await asyncio.gather(*(reserve(i) for i in range(wave, wave + 24))))
        carved += sum(len(one.budget_leases.allowances) for one in instances)
    assert carved  # served from allowances while the budget had room for them
    assert 1000 <= granted <= 2000  # settled at half: up to 2,000 fit
    for one in instances:
        await one.aclose()
    reader = state(redis_url, prefix, fraction=0)
    for counts in await reader.hgetall_many(list(keys)):
        assert counts["usd"] == pytest.approx(granted * 0.0005)
        assert counts["usd"] <= 1.0 + 1e-9
        assert counts.get("reserved_usd", 0.0) == pytest.approx(0.0, abs=1e-9)
        assert counts.get("reserved_tokens", 0.0) == pytest.approx(0.0, abs=1e-6)
    await reader.aclose()
