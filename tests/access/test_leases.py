"""Quota leases (gateway/state/leases.py): few Redis calls, and never past a limit.

Several limiters (or state backends) on one Redis prefix stand for several instances:
each has its own instance id, exactly as separate processes would
(tests/access/test_bursts.py runs real processes).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from limits import parse

from gateway.errors import LimiterBusy
from gateway.observability.metrics import Metrics
from gateway.ratelimit.headers import as_text, ratelimit_headers
from gateway.ratelimit.limiter import Decision, Limiter, RatePlan, Rule
from gateway.state.backend import Hold
from gateway.state.leases import MAX_REQUESTS, LeaseBook, lease_multiple
from gateway.state.redis import RedisState
from tests.redis_keys import drop_prefix

LIMIT = 1000
# A day's window: a minute's would put a window boundary inside one test now and then, and
# a sliding window then legitimately lets through more than LIMIT over the two windows.
RULE = Rule("key", "requests", parse(f"{LIMIT}/day"), "k")


@pytest.mark.parametrize(
    ("amounts", "limits", "fraction", "multiple"),
    [
        ({"n": 1}, {"n": 1000}, 0.01, 10),
        ({"n": 1}, {"n": 100_000_000}, 0.01, MAX_REQUESTS),  # at most MAX_REQUESTS requests' worth
        ({"n": 1}, {"n": 199}, 0.01, 0),  # under 2 requests' worth: decided in Redis
        ({"n": 1}, {"n": 1000}, 0.0, 0),  # leases off
        ({"usd": 0.01, "tokens": 100}, {"usd": 10.0}, 0.01, 10),  # limited fields only
        ({"usd": 0.01, "tokens": 100}, {"usd": 10.0, "tokens": 20_000}, 0.01, 2),
        ({"usd": 0.0, "tokens": 1}, {}, 0.01, MAX_REQUESTS),  # no limit: bookkeeping only
    ],
)
def test_lease_sizes(
    amounts: dict[str, float], limits: dict[str, float], fraction: float, multiple: int
) -> None:
    assert lease_multiple(amounts, limits, fraction) == multiple


async def test_a_lease_serves_what_it_holds_then_gives_back_the_rest() -> None:
    returned: list[dict[str, float]] = []
    book = LeaseBook(0.05, lambda leases: returned.extend(lease.left for lease in leases))
    book.grant("k", {"n": 10.0}, subject="rule")
    now = time.monotonic()
    lease = book.covers("k", {"n": 4}, now)
    assert lease is not None and not lease.running_low()
    book.spend(lease, {"n": 4}, now)
    assert lease.left == {"n": 6.0} and not lease.running_low()
    book.spend(lease, {"n": 2}, now)
    assert lease.running_low()  # under half of the grant: refilled in the background
    assert book.covers("k", {"n": 5}, now) is None  # holds 4
    book.grant("k", {"n": 10.0})  # a top-up in the same period adds
    assert book.covers("k", {"n": 14}, now) is not None
    await asyncio.sleep(0.12)  # the timer ends it and hands back what is left
    assert returned == [{"n": 14.0}] and len(book) == 0


async def test_a_carve_takes_from_every_lease_or_from_none_and_reports_those_running_low() -> None:
    book = LeaseBook(5.0, lambda leases: None)
    for key in ("day", "month"):
        book.grant(key, {"usd": 1.0, "tokens": 100.0})
    now = time.monotonic()
    groups = ((("day", "month"), "usd", 0.1), (("day", "month"), "tokens", 1.0))
    carved = book.carve(groups, now)  # a quarter of what each holds: 2 requests' worth
    assert carved is not None and carved[0].left == [0.2, 2.0] and carved[1] == []
    missing = ((("day", "month", "other"), "usd", 0.1), ((), "tokens", 0.0))
    assert book.carve(missing, now) is None  # not held
    assert book.carve(((("day", "month"), "usd", 0.9), ((), "tokens", 0.0)), now) is None
    assert [book.leases[k].left for k in ("day", "month")] == [{"usd": 0.8, "tokens": 98.0}] * 2
    carved = book.carve(((("day", "month"), "usd", 0.5), ((), "tokens", 0.0)), now)
    assert carved is not None and [key for key, _ in carved[1]] == ["day", "month"]  # under half
    book.claim(["day"])  # a refill in flight: not reported again
    carved = book.carve(((("day", "month"), "usd", 0.1), ((), "tokens", 0.0)), now)
    assert carved is not None and [key for key, _ in carved[1]] == ["month"]
    book.unclaim(["day"])
    book.close()


async def test_one_field_leases_are_covered_and_spent_per_key() -> None:
    book = LeaseBook(5.0, lambda leases: None)
    book.grant("a", {"n": 10.0}, remaining=100.0)
    book.grant("b", {"n": 4.0}, remaining=50.0)
    now = time.monotonic()
    held = book.covering({"a": 3, "b": 5}, "n", now)
    assert list(held) == ["a"]  # b holds 4
    low = book.spend_each(held, {"a": 3, "b": 5}, "n", now)
    assert book.leases["a"].left == {"n": 7.0} and book.leases["a"].remaining == 97.0
    assert low == []
    assert book.spend_each(book.covering({"a": 3}, "n", now), {"a": 3}, "n", now) == [
        book.leases["a"]
    ]  # 4 left of 10: running low
    book.close()


async def test_a_lease_past_its_counter_period_is_not_given_back() -> None:
    returned: list[object] = []
    book = LeaseBook(5.0, returned.extend)
    book.grant("k", {"n": 10.0}, window_left_seconds=0.15)  # the period ends first
    await asyncio.sleep(0)
    assert book.expire(time.monotonic() + 1) == []  # stays counted where it was granted
    book.grant("j", {"n": 3.0})
    book.close()
    assert [lease.left for lease in returned] == [{"n": 3.0}]  # type: ignore[attr-defined]


@pytest.fixture
async def prefix(redis_url: str) -> AsyncIterator[str]:
    name = f"test-lease-{uuid.uuid4().hex[:10]}:"
    yield name
    drop_prefix(redis_url, name)


def counted(obj: Any, method: str) -> list[int]:
    """Count the calls of `obj.method` (one Redis round trip each)."""
    calls = [0]
    original = getattr(obj, method)

    async def call(*args: Any, **kwargs: Any) -> Any:
        calls[0] += 1
        return await original(*args, **kwargs)

    setattr(obj, method, call)
    return calls


def limiter(redis_url: str, prefix: str, fraction: float = 0.01, seconds: float = 1.0) -> Limiter:
    return Limiter(redis_url, prefix, Metrics(), lease_fraction=fraction, lease_seconds=seconds)


async def window_count(one: Limiter) -> int:
    (window,) = await one.primary.windows([RULE])
    return LIMIT - window.remaining


async def test_requests_decided_from_a_lease_make_few_redis_calls(
    redis_url: str, prefix: str
) -> None:
    one = limiter(redis_url, prefix)
    calls = counted(one.primary, "acquire_leasing")
    for _ in range(100):
        decision = await one.acquire([(RULE, 1)])
        assert decision.allowed
        assert decision.windows[0].remaining <= LIMIT - 1
    await asyncio.sleep(0.05)
    assert calls[0] <= 30  # leases of 10 (and their refills), not one call per request
    assert 100 <= await window_count(one) <= 100 + 2 * 10  # the held lease is counted
    await one.aclose()  # gives back what it holds
    fresh = limiter(redis_url, prefix, fraction=0)
    assert await window_count(fresh) == 100
    await fresh.aclose()


async def test_instances_with_leases_never_pass_the_limit_and_leave_nothing_held(
    redis_url: str, prefix: str
) -> None:
    instances = [limiter(redis_url, prefix) for _ in range(3)]
    busy = 0

    async def take(i: int) -> bool:
        nonlocal busy
        try:
            return (await instances[i % 3].acquire([(RULE, 1)])).allowed
        except LimiterBusy:  # a starved loop (a loaded machine): 503, never per process
            busy += 1
            return False

    allowed = sum(await asyncio.gather(*(take(i) for i in range(1300))))
    # Room held by another's lease is refused early; never more than the limit.
    assert LIMIT - 3 * 10 - busy <= allowed <= LIMIT
    for one in instances:
        await one.aclose()  # unused leases go back
    exact = limiter(redis_url, prefix, fraction=0)
    more = [(await exact.acquire([(RULE, 1)])).allowed for _ in range(LIMIT - allowed + 5)]
    # Every unit usable, none twice (a 503'd call may have taken its unit: early at worst).
    assert LIMIT - busy <= allowed + sum(more) <= LIMIT
    await exact.aclose()


async def test_no_lease_is_granted_near_the_limit(redis_url: str, prefix: str) -> None:
    one = limiter(redis_url, prefix)
    await one.primary.add([(RULE, LIMIT - 25)])  # room 25 < (1 instance + 1) x 10 + 1
    grants = counted(one.primary, "acquire_leasing")
    for _ in range(25):
        assert (await one.acquire([(RULE, 1)])).allowed
    assert not (await one.acquire([(RULE, 1)])).allowed
    assert grants[0] >= 16  # near the limit, decisions are made in Redis one by one
    assert await window_count(one) == LIMIT
    await one.aclose()


async def test_an_unused_lease_goes_back_when_it_ends(redis_url: str, prefix: str) -> None:
    one = limiter(redis_url, prefix, seconds=0.2)
    assert (await one.acquire([(RULE, 1)])).allowed
    assert await window_count(one) == 1 + 10  # the request and its lease
    await asyncio.sleep(0.5)  # the lease ends; the give-back goes out with the next batch
    assert await window_count(one) == 1
    await one.aclose()


async def test_leases_are_dropped_when_redis_is_marked_down(redis_url: str, prefix: str) -> None:
    one = limiter(redis_url, prefix)
    assert (await one.acquire([(RULE, 1)])).allowed and len(one.leases) == 1
    one._degrade(ConnectionError("test"))
    assert len(one.leases) == 0  # nothing decided from them until Redis is back
    await one.aclose()


def state(redis_url: str, prefix: str, fraction: float = 0.01) -> RedisState:
    return RedisState(redis_url, prefix=prefix, lease_fraction=fraction, lease_seconds=1.0)


async def test_budget_leases_never_pass_the_budget_and_settle_exactly(
    redis_url: str, prefix: str
) -> None:
    """Three instances reserve $0.001 at a time under a $1 budget (leases of $0.01), then
    settle each reservation at $0.0005: what is spent and held adds up to the cent."""
    instances = [state(redis_url, prefix) for _ in range(3)]
    calls = [counted(one, "_reserve_holds") for one in instances]
    hold = Hold("spend:key:k:day:d", {"usd": 0.001, "tokens": 10.0}, {"usd": 1.0})

    async def reserve(i: int) -> bool:
        one = instances[i % 3]
        if await one.reserve([hold], ttl=60) is not None:
            return False
        await one.debit({hold.key: {"usd": 0.0005, "reserved_usd": -0.001, "reserved_tokens": -10}})
        return True

    granted = 0
    for wave in range(0, 1200, 24):  # 8 calls in flight per instance
        granted += sum(await asyncio.gather(*(reserve(i) for i in range(wave, wave + 24))))
    assert sum(c[0] for c in calls) < 1200 / 3  # most reservations never reached Redis
    # Reservations are settled at half their size, so the budget holds up to 2000.
    assert 1000 <= granted <= 2000
    for one in instances:
        await one.aclose()
    reader = state(redis_url, prefix, fraction=0)
    (counts,) = await reader.hgetall_many([hold.key])
    assert counts["usd"] == pytest.approx(granted * 0.0005)
    assert counts["usd"] <= 1.0 + 1e-9
    assert counts.get("reserved_usd", 0.0) == pytest.approx(0.0, abs=1e-9)  # nothing held
    assert counts.get("reserved_tokens", 0.0) == pytest.approx(0.0, abs=1e-6)
    await reader.aclose()


async def test_a_budget_lease_never_serves_a_request_under_other_limits(
    redis_url: str, prefix: str
) -> None:
    one = state(redis_url, prefix)
    unlimited = Hold("spend:team:t:day:d", {"usd": 0.3}, {})
    assert await one.reserve([unlimited], ttl=60) is None  # leased: 100 x $0.3
    limited = Hold("spend:team:t:day:d", {"usd": 1.0}, {"usd": 1.0})
    assert await one.reserve([limited], ttl=60) == 0  # decided in Redis: $30.3 held
    await one.aclose()


async def test_a_refusal_in_redis_puts_back_what_the_leases_gave(
    redis_url: str, prefix: str
) -> None:
    """A request is taken from its leased rules before the Redis call for the others
    (a lease may end at any await); when Redis refuses, the leases get it back."""
    one = limiter(redis_url, prefix)
    tight = Rule("key", "requests", parse("1/minute"), "k")  # never leased
    assert (await one.acquire([(RULE, 1), (tight, 1)])).allowed
    (lease,) = one.leases.leases.values()
    left = dict(lease.left)
    refused = await one.acquire([(RULE, 1), (tight, 1)])
    assert refused.refused == tight
    assert lease.left == left  # the leased rule's unit is back
    await one.aclose()
    reader = limiter(redis_url, prefix, fraction=0)
    assert await window_count(reader) == 1
    await reader.aclose()


async def test_token_settlements_go_into_the_lease_and_the_count_comes_out_exact(
    redis_url: str, prefix: str
) -> None:
    """Reserve 100 tokens per request, use 30: the 70 given back become room in the
    lease (no Redis write), and once the lease ends Redis counts exactly what was used."""
    tokens = Rule("key", "tokens", parse("1000000/minute"), "k")
    one = limiter(redis_url, prefix)
    writes = counted(one.primary, "add")
    for _ in range(20):
        decision = await one.acquire([(tokens, 100)])
        assert decision.allowed
        await one.settle(decision, [(tokens, 30 - 100)])
    await asyncio.sleep(0.05)
    assert writes[0] == 0  # every settlement went into the lease
    await one.aclose()
    reader = limiter(redis_url, prefix, fraction=0)
    (window,) = await reader.primary.windows([tokens])
    assert 1_000_000 - window.remaining == 20 * 30
    await reader.aclose()


def rooms(decision: Decision) -> tuple[int, int]:
    """What the x-ratelimit-remaining-{requests,tokens} headers of a decision say."""
    headers = as_text(ratelimit_headers(decision))
    return (
        int(headers["x-ratelimit-remaining-requests"]),
        int(headers["x-ratelimit-remaining-tokens"]),
    )


async def test_decisions_from_leases_report_each_rule_and_add_up_a_counter_named_twice(
    redis_url: str, prefix: str
) -> None:
    """The one-pass decision of a plan (every rule held by its own lease) reports as the
    general path does; a request naming one counter twice takes the sum from it."""
    one = limiter(redis_url, prefix)
    other = Rule("global", "requests", parse(f"{LIMIT}/day"), "all")
    tokens = Rule("key", "tokens", parse("1000000/day"), "k-tokens")
    plan = RatePlan([RULE, other, tokens])
    assert plan.distinct and plan.token_rules == (tokens,)
    general = await one.acquire(plan.charges(7))  # every lease asked for here
    assert general.allowed
    decision = await one.take(plan, 7)
    assert [rule for rule, _, _ in decision.shown] == [w.rule for w in general.windows]
    assert [w.rule for w in general.windows] == [RULE, tokens]
    assert as_text(ratelimit_headers(decision)).keys() == as_text(ratelimit_headers(general)).keys()
    first = rooms(decision)  # (headers are written as the decision is made)
    second = rooms(await one.take(plan, 5))
    assert second == (first[0] - 1, first[1] - 5)
    twice = RatePlan([RULE, RULE])
    assert not twice.distinct
    assert (await one.take(twice, 0)).allowed  # two units from one counter
    assert rooms(await one.take(plan, 1))[0] == second[0] - 3
    await one.aclose()
    exact = limiter(redis_url, prefix, fraction=0)
    assert await window_count(exact) == 1 + 1 + 1 + 2 + 1  # every unit counted once
    await exact.aclose()


async def test_a_one_pass_decision_that_misses_a_lease_takes_nothing_from_the_others(
    redis_url: str, prefix: str
) -> None:
    """A rule whose lease lacks room, after rules whose leases had it: the one pass puts
    back what it took, and the general path decides the whole request (each unit counted
    once)."""
    one = limiter(redis_url, prefix)
    tight = Rule("key", "tokens", parse("100000/day"), "k-tight")  # leases 1,000 tokens
    plan = RatePlan([RULE, tight])
    assert (await one.take(plan, 10)).allowed  # both leased now
    held = [one.leases.leases[rule.key] for rule in plan.rules]
    before = [lease.left["n"] for lease in held]
    decision = await one.take(plan, 5_000)  # more than the tight lease holds
    assert decision.allowed  # decided in Redis, with the room there
    assert held[0].left["n"] == before[0] - 1  # taken once, by the general path
    await one.aclose()
    exact = limiter(redis_url, prefix, fraction=0)
    assert await window_count(exact) == 1 + 1
    (window,) = await exact.primary.windows([tight])
    assert 100_000 - window.remaining == 10 + 5_000  # the unused lease given back
    await exact.aclose()
