"""Rate limiting on the `limits` library: sliding window counters, shared through Redis.

Why the sliding window counter: a moving window keeps one entry per unit of cost, so a
`100000/minute` token limit would store up to 100,000 list entries per key; the counter
keeps two integers per window, is exact at the instant of each decision (one atomic Lua
call in Redis) and smooths the boundary burst a fixed window allows.

Every rule of a request is decided in ONE Redis round trip: the library's own Lua scripts
(acquire, and a read of the key's windows for the response headers) are queued in one
pipeline, on the same kinds of Redis URL as the state backend (Sentinel and Cluster too;
gateway/ratelimit/redis_windows.py). A refusal by one rule releases what the others took.

Under a burst, calls wait for a pooled connection (back-pressure): a decision is exact
under any concurrency, and a pool that stays busy past its timeout answers 503 for that
request, never a switch to per-process counts; so does a call that timed out while this
process's event loop ran late (load, not an outage: gateway/state/loop_lag.py). If Redis
fails (the process's one
`RedisHealth`, shared with every other Redis user, marks it down), decisions fall back to
a per-process memory limiter (or refuse, when configured closed) until the health's one
probe sees Redis answer again. A token settlement Redis cannot take now is queued and
retried (gateway/state/retry_queue.py), so no reply's tokens go uncounted. Settlements
are written in batches, every few ms (gateway/state/write_batch.py).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Coroutine, Hashable, Sequence
from typing import Any

from gateway.errors import LimiterBusy, LimiterUnavailable
from gateway.observability.metrics import Metrics
from gateway.ratelimit.plan import RatePlan
from gateway.ratelimit.redis_windows import RedisWindows
from gateway.ratelimit.windows import (
    Charge,
    Decision,
    Kind,
    MemoryWindows,
    Rule,
    Window,
    reported,
)
from gateway.state.health import RedisHealth
from gateway.state.leases import Lease, LeaseBook, lease_multiple
from gateway.state.retry_queue import RetryQueue
from gateway.state.write_batch import WriteBatch

__all__ = [
    "Charge",
    "Decision",
    "Kind",
    "Limiter",
    "RatePlan",
    "RedisWindows",
    "Rule",
    "Window",
]

log = logging.getLogger("gateway")


class Limiter:
    def __init__(
        self,
        url: str,
        prefix: str,
        metrics: Metrics,
        health: RedisHealth | None = None,
        pool_size: int = 64,
        pool_timeout: float = 10.0,
        lease_fraction: float = 0.0,
        lease_seconds: float = 1.0,
    ) -> None:
        """`url`: `memory://` (per process) or the state backend's Redis URL (any form).
        `health`: the state backend's view of Redis, shared by every Redis user.
        `lease_fraction`: of each high limit, the slice an instance may hold (0: none)."""
        self.primary: MemoryWindows | RedisWindows = (
            MemoryWindows()
            if url.startswith("memory")
            else RedisWindows(url, prefix, pool_size, pool_timeout)
        )
        self.fallback = MemoryWindows()
        self.metrics = metrics
        self.own_health = health is None
        self.redis_health = health or RedisHealth(lambda: self.primary.ping(), metrics)
        self.redis_health.on_down.append(self._on_down)
        self.redis_health.on_recovery.append(self._on_recovery)
        self.settlements: RetryQueue[list[Charge]] = RetryQueue(
            "limits", self._write_settlements, metrics, self.redis_health
        )
        # Settlements of the next few ms go out together (gateway/state/write_batch.py).
        self.settle_batch = WriteBatch(self._write_batch, self.settlements)
        leasing = isinstance(self.primary, RedisWindows) and not self.primary.cluster
        self.lease_fraction = lease_fraction if leasing else 0.0
        self.leases = LeaseBook(lease_seconds, self._give_back)
        self._tasks: set[asyncio.Task[None]] = set()  # lease refills in flight

    @property
    def degraded(self) -> bool:
        return not self.redis_health.up

    @property
    def epoch(self) -> int:
        return self.redis_health.epoch

    async def acquire(self, charges: Sequence[Charge], on_error: str = "open") -> Decision:
        """Take every charge, or none: a refusal by one rule gives back what others took.
        `on_error`: what to do while Redis is unreachable, `open` (per-process) or `closed`."""
        if not charges:
            return Decision(None, [])
        if self.lease_fraction and self.redis_health.up:
            leased = await self._acquire_leasing(charges)
            if leased is not None:
                return leased
        report = reported(charges)
        store, (refused_at, windows) = await self._call_on("acquire", (charges, report), on_error)
        present = [w for w in windows if w is not None]
        if refused_at is None:
            return Decision(None, present, store)
        refused = charges[refused_at][0]
        self.metrics.ratelimit_refusals.labels(refused.scope).inc()
        return Decision(refused, present, store)

    async def take(self, plan: RatePlan, tokens: int, on_error: str = "open") -> Decision:
        """`acquire` for a request of `plan`'s rules estimated at `tokens` tokens: from the
        plan's allowance when its leases hold the cost (the common case)."""
        decision = self.take_now(plan, tokens)
        if decision is not None:
            return decision
        return await self.acquire(plan.charges(tokens), on_error)

    def take_now(self, plan: RatePlan, tokens: int) -> Decision | None:
        """`take` when this process can decide it alone, with no await (the plan's
        allowance, carved anew if need be); None when it cannot: then `acquire`."""
        if self.lease_fraction and plan.distinct and self.redis_health.up:
            return self._take_allowance(plan, tokens)
        return None

    def _take_allowance(self, plan: RatePlan, tokens: int) -> Decision | None:
        """From the plan's allowance (gateway/state/allowance.py): one request and `tokens`
        tokens. When it has ended or holds too little, it ends (its rest goes back to the
        leases) and a new one is carved from the plan's leases; None when they cannot."""
        now = time.monotonic()
        held = plan.allowance
        if held is not None:
            allowance, shown = held
            if allowance.take(1, tokens, now):
                return Decision(None, [], self.primary, allowance, shown)
            self.leases.end_allowance(allowance)
            plan.allowance = None
        carved = self.leases.carve(
            ((plan.request_keys, "n", 1), (plan.token_keys, "n", tokens)), now
        )
        if carved is None:
            return None
        allowance, low = carved
        if low:
            self._refill([lease for _, lease in low])
        leases = self.leases.leases
        shown = tuple(
            (rule, leases[rule.key], 1 if counts_tokens else 0)
            for rule, counts_tokens, report in plan.entries
            if report
        )
        plan.allowance = (allowance, shown)
        allowance.take(1, tokens, now)
        return Decision(None, [], self.primary, allowance, shown)

    async def _acquire_leasing(self, charges: Sequence[Charge]) -> Decision | None:
        """Rules whose lease holds their cost are decided here; the others in one Redis
        call that may grant each a new lease (gateway/state/leases.py). None when that
        call failed (Redis is then marked down: the caller decides without it)."""
        needs: dict[Hashable, int] = {}
        for rule, cost in charges:
            needs[rule.key] = needs.get(rule.key, 0) + cost
        held = self._held(needs)
        if len(held) < len(needs) and await self.leases.wait_for_refills(needs.keys() - held):
            held = self._held(needs)  # a concurrent call may have leased what was missing
        # Taken now, with no await since `_held`: a lease may end at the next await.
        low = self.leases.spend_each(held, needs, "n", time.monotonic())
        report = reported(charges)
        windows: list[Window | None] = [None] * len(charges)
        if held:
            wall = time.time()
            for i, (rule, _) in enumerate(charges):
                local = held.get(rule.key)
                if local is not None and report[i]:
                    windows[i] = Window(rule, max(0, int(local.remaining)), wall)
        if low:
            self._refill(low)
        remote = [i for i, (rule, _) in enumerate(charges) if rule.key not in held]
        if remote:
            answer: list[Window | None] | Decision | None = None
            try:
                answer = await self._decide_in_redis(charges, remote, report)
            finally:
                if answer is None or isinstance(answer, Decision):  # failed, or refused
                    for key, lease in held.items():
                        self.leases.refund(key, lease, {"n": needs[key]})
            if answer is None or isinstance(answer, Decision):
                return answer
            for i, window in zip(remote, answer, strict=True):
                windows[i] = window if report[i] else None
        return Decision(None, [w for w in windows if w is not None], self.primary)

    async def _decide_in_redis(
        self, charges: Sequence[Charge], remote: list[int], report: list[bool]
    ) -> list[Window | None] | Decision | None:
        """The `remote` charges in one call, each asking for a lease where it may (one
        lease request per rule at a time): their windows when taken, the refusal, or
        None when Redis failed."""
        primary = self.primary
        assert isinstance(primary, RedisWindows)
        asked = [charges[i] for i in remote]
        sizes = [self._lease_size(rule, cost) for rule, cost in asked]
        pairs = list(zip(asked, sizes, strict=True))
        claimed = set(self.leases.claim(rule.key for (rule, _), n in pairs if n))
        extras = [n if rule.key in claimed else 0 for (rule, _), n in pairs]
        wanted = [report[i] or extra > 0 for i, extra in zip(remote, extras, strict=True)]
        epoch, started = self.redis_health.epoch, self.redis_health.lag.now()
        try:
            (refused_at, answered), granted = await primary.acquire_leasing(asked, wanted, extras)
        except Exception as exc:  # StorageError, connection refused, timeouts
            if self.redis_health.is_load(exc, started):
                self.redis_health.failed(epoch, exc, started)  # counted as load: no outage
                raise overloaded() from None
            self._failed(epoch, exc, started)
            return None
        finally:
            self.leases.unclaim(claimed)
        if refused_at is not None:
            refused = asked[refused_at][0]
            self.metrics.ratelimit_refusals.labels(refused.scope).inc()
            return Decision(refused, [w for w in answered if w is not None], self.primary)
        for (rule, _), window, extra in zip(asked, answered, granted, strict=True):
            if extra and window is not None:
                self._lease(rule, extra, window)
        return answered

    def _refill(self, leases: list[Lease]) -> None:
        """Top up leases running low, in the background (one call, nothing charged);
        claimed now, so requests that run out meanwhile wait for it."""
        rules: list[Rule] = [lease.subject for lease in leases]
        claimed = set(self.leases.claim(rule.key for rule in rules))
        refills = [
            (rule, int(lease.size["n"]))
            for rule, lease in zip(rules, leases, strict=True)
            if rule.key in claimed
        ]
        if refills:
            self._start(self._top_up(refills, claimed))

    async def _top_up(self, refills: list[tuple[Rule, int]], claimed: set[Hashable]) -> None:
        primary = self.primary
        assert isinstance(primary, RedisWindows)
        rules = [rule for rule, _ in refills]
        epoch, started = self.redis_health.epoch, self.redis_health.lag.now()
        try:
            (_, windows), granted = await primary.acquire_leasing(
                [(rule, 0) for rule in rules], [True] * len(rules), [n for _, n in refills]
            )
        except Exception as exc:  # the leases run out and requests go to Redis themselves
            self._failed(epoch, exc, started)  # (not an outage when it was load)
            return
        finally:
            self.leases.unclaim(claimed)
        for rule, window, extra in zip(rules, windows, granted, strict=True):
            if extra and window is not None:
                self._lease(rule, extra, window)

    def _start(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _held(self, needs: dict[Hashable, int]) -> dict[Hashable, Lease]:
        """The live leases that hold what each rule needs."""
        return self.leases.covering(needs, "n", time.monotonic())

    def _lease_size(self, rule: Rule, cost: int) -> int:
        """Units to ask for on top of `cost`: a lease of a high limit, else 0."""
        multiple = lease_multiple({"n": cost}, {"n": rule.item.amount}, self.lease_fraction)
        return multiple * max(cost, 1)

    def _lease(self, rule: Rule, units: int, window: Window) -> None:
        """Hold `units` granted on `rule` (room for headers: Redis's plus the held units)."""
        room = window.remaining + units
        self.leases.grant(rule.key, {"n": units}, window.period_left, room, rule)

    def _give_back(self, leases: list[Lease]) -> None:
        """Unused leased units back to their windows (with the next settlement batch)."""
        charges = [(lease.subject, -int(lease.left["n"])) for lease in leases]
        charges = [(rule, amount) for rule, amount in charges if amount]
        if charges:
            self.settle_batch.put(charges)

    async def add(self, charges: Sequence[Charge]) -> None:
        """Take (positive) or give back (negative) amounts without a check."""
        charges = [(r, a) for r, a in charges if a]
        if charges:
            await self._call("add", (charges,), "open")

    async def settle(self, decision: Decision, charges: Sequence[Charge]) -> None:
        """Settlement of a decision's reservations, on the windows that took them: in
        Redis within a few ms (batched), or queued and retried when Redis cannot take it."""
        charges = [(r, a) for r, a in charges if a]
        if not charges:
            return
        if decision.store is not self.primary:
            if decision.store is self.fallback:  # else that fallback was reset: gone
                await self.fallback.add(charges)
            return
        if isinstance(self.primary, MemoryWindows):  # one process: no round trip to save
            await self.primary.add(charges)
            return
        if self.lease_fraction:
            charges = self._settle_in_leases(charges)
        if charges:
            self.settle_batch.put(charges)

    async def settle_tokens(self, decision: Decision, rules: Sequence[Rule], delta: int) -> None:
        """`settle` of the same `delta` on each token rule of a decision: into the
        allowance it was taken from while that lasts (each of its units stands for one
        on every token rule's lease), else as `settle` does."""
        if not self.settle_tokens_now(decision, delta):
            await self.settle(decision, [(rule, delta) for rule in rules])

    @staticmethod
    def settle_tokens_now(decision: Decision, delta: int) -> bool:
        """`settle_tokens` into the decision's allowance, with no await, while it lasts;
        False when it cannot (then `settle_tokens`)."""
        allowance = decision.allowance
        return allowance is not None and allowance.give(1, -delta, time.monotonic())

    def _settle_in_leases(self, charges: list[Charge]) -> list[Charge]:
        """Settle into this process's live lease on each rule where it can (tokens given
        back become room in the lease; more used is taken from it): the lease's own units
        are counted in Redis already, and what it holds at its end goes back there. The
        charges left to write to Redis."""
        now = time.monotonic()
        rest: list[Charge] = []
        for rule, delta in charges:
            lease = self.leases.covers(rule.key, {"n": max(delta, 0)}, now)
            if lease is None:
                rest.append((rule, delta))
            else:
                self.leases.spend(lease, {"n": delta}, now)
                lease.remaining -= delta
        return rest

    async def _write_batch(self, batch: list[list[Charge]]) -> None:
        """A batch of settlements in one pipeline; a failure marks Redis down (the batch
        then waits in the retry queue for the health probe)."""
        if not self.redis_health.up:
            raise ConnectionError("Redis is marked down")
        epoch, started = self.redis_health.epoch, self.redis_health.lag.now()
        try:
            await self._write_settlements(batch)
        except Exception as exc:
            self._failed(epoch, exc, started)
            raise

    async def _write_settlements(self, batch: list[list[Charge]]) -> None:
        """Settlements in one pipeline, summed per rule."""
        totals: dict[Rule, int] = {}
        for charges in batch:
            for rule, amount in charges:
                totals[rule] = totals.get(rule, 0) + amount
        await self.primary.add([(r, a) for r, a in totals.items() if a])

    async def _call(self, method: str, args: tuple[Any, ...], on_error: str) -> Any:
        return (await self._call_on(method, args, on_error))[1]

    async def _call_on(
        self, method: str, args: tuple[Any, ...], on_error: str
    ) -> tuple[MemoryWindows | RedisWindows, Any]:
        """Which windows answered, and their answer: Redis's, else the fallback's."""
        if self.redis_health.up:
            epoch, started = self.redis_health.epoch, self.redis_health.lag.now()
            try:
                return self.primary, await getattr(self.primary, method)(*args)
            except Exception as exc:  # StorageError, connection refused, timeouts
                if self.redis_health.is_load(exc, started):
                    self.redis_health.failed(epoch, exc, started)  # counted as load: no outage
                    raise overloaded() from None
                self._failed(epoch, exc, started)
        else:
            self.metrics.redis_skipped.inc()
        if on_error == "closed":
            raise LimiterUnavailable("Rate limiting is unavailable; try again shortly.")
        return self.fallback, await getattr(self.fallback, method)(*args)

    def _failed(self, epoch: int, exc: Exception, started: float = 0.0) -> None:
        self.metrics.redis_errors.labels("ratelimit").inc()
        # A call begun before the last recovery (its connection was dropped by it) says
        # nothing about Redis now: the health view starts no new outage for it.
        self.redis_health.failed(epoch, exc, started)

    def _degrade(self, exc: Exception) -> None:
        """Mark Redis down now (for tests and callers that saw it fail)."""
        self.redis_health.failed(self.redis_health.epoch, exc)

    def _on_down(self, exc: BaseException) -> None:
        self.leases.forget()  # what they held stays counted in Redis: refuses early at worst
        self.metrics.ratelimit_fallback.set(1)
        log.warning(
            "rate-limit storage unreachable; limiting per process until it answers",
            extra={"error": type(exc).__name__},
        )

    async def _on_recovery(self) -> None:
        await self.primary.reset_connections()
        self.fallback = MemoryWindows()  # start clean next time
        self.metrics.ratelimit_fallback.set(0)
        log.warning("rate-limit storage reachable again; shared limits restored")

    def health(self) -> str | None:
        return "rate limits: per-process fallback (Redis unreachable)" if self.degraded else None

    async def aclose(self) -> None:
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self.leases.close()
        await self.settle_batch.flush()
        await self.settlements.flush()
        if self.own_health:
            await self.redis_health.aclose()
        await self.primary.aclose()


def overloaded() -> LimiterBusy:
    """Every pooled Redis connection stayed busy past its timeout: 503, try again."""
    return LimiterBusy(
        "The gateway is overloaded; try again shortly.", headers={"retry-after": "1"}
    )
