"""Budget leases on Redis: reservations of spend decided in this process from slices of
the budgets' counters it holds (gateway/state/leases.py), in one script call otherwise.

`take` serves a reservation whose counters all take the same amounts (a key's and its
team's budgets, day and month: `SpendStore.reserve`) from an allowance carved from their
leases (gateway/state/allowance.py); `reserve` decides a list of holds from the leases
that cover them and the rest in Redis, asking for leases on the way. Not on a Cluster,
where one script cannot span the counters' slots.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable, Collection, Coroutine, Hashable, Mapping
from typing import Any

from gateway.state.allowance import Allowance
from gateway.state.backend import Hold, MissingMark
from gateway.state.debits import Debit
from gateway.state.leases import Lease, LeaseBook, lease_multiple

ALLOWANCES_HELD = 4096  # budget allowances kept (one per key and day); all end when full
# One script call for `holds`: the first without room (None: all reserved) and per hold
# whether its lease (extra amounts) was granted.
ReserveHolds = Callable[
    [list[Hold], int, "list[dict[str, float]] | None"], Awaitable[tuple[int | None, list[bool]]]
]


class BudgetLeases:
    def __init__(
        self,
        seconds: float,
        fraction: float,
        reserve_holds: ReserveHolds,
        release: Callable[[Debit], None],
    ) -> None:
        """`reserve_holds`: the state's script call. `release`: queues a debit (what
        ended leases give back)."""
        self.fraction = fraction
        self.reserve_holds = reserve_holds
        self.release = release
        self.book = LeaseBook(seconds, self._give_back)
        # Per budget plan's lease terms: its fields' names and its allowance.
        self.allowances: dict[tuple[str, ...], tuple[tuple[str, str], Allowance]] = {}
        self._tasks: set[asyncio.Task[None]] = set()  # lease refills in flight

    def take(
        self, terms: tuple[str, ...], amounts: Mapping[str, float], ttl: float | None = None
    ) -> bool:
        """`StateBackend.take_leased` for two fields (tokens and usd): from the allowance
        of `terms`, else from a new one carved from their leases; False, with nothing
        taken, when the leases lack it."""
        if not self.fraction or len(amounts) != 2:
            return False
        now = time.monotonic()
        held = self.allowances.get(terms)
        if held is not None:
            (first, second), allowance = held
            if allowance.take(amounts.get(first, math.inf), amounts.get(second, math.inf), now):
                return True
            self.book.end_allowance(allowance)
        low = self._carve(terms, amounts, now)
        if low is None:
            return False
        if low:
            self._refill(low, int((ttl or 0) * 1000) or 2**40)
        return True

    def _carve(
        self, terms: tuple[str, ...], amounts: Mapping[str, float], now: float
    ) -> list[tuple[Any, Lease]] | None:
        """A new allowance for `terms` (gateway/state/allowance.py) of two fields, this
        request's `amounts` taken from it; None when the leases cannot give one."""
        (first, a), (second, b) = amounts.items()
        carved = self.book.carve(((terms, first, a), (terms, second, b)), now)
        if carved is None:
            self.allowances.pop(terms, None)
            return None
        allowance, low = carved
        if len(self.allowances) >= ALLOWANCES_HELD:
            for _, stale in self.allowances.values():
                self.book.end_allowance(stale)
            self.allowances.clear()
        self.allowances[terms] = ((first, second), allowance)
        allowance.take(a, b, now)
        return low

    async def reserve(self, holds: list[Hold], ttl_ms: int) -> int | None:
        """Holds whose lease covers their amounts are reserved here; the others in one
        script call that may grant each a lease (gateway/state/leases.py)."""
        terms = [h.lease_terms() for h in holds]
        held = self._held(holds, terms)
        missing = [t for t, lease in zip(terms, held, strict=True) if lease is None]
        if missing and await self.book.wait_for_refills(missing):
            held = self._held(holds, terms)  # a concurrent call may have leased them
        low: list[tuple[Any, Lease]] = []
        now = time.monotonic()
        for term, hold, lease in zip(terms, holds, held, strict=True):
            if lease is not None:  # taken now: a lease may end at the next await
                self.book.spend(lease, hold.amounts, now)
                if lease.running_low() and not self.book.refilling_now(term):
                    low.append((term, lease))
        if low:
            self._refill(low, ttl_ms)
        asked = [i for i, lease in enumerate(held) if lease is None]
        if not asked:
            return None
        refused: int | None = -1
        try:
            refused = await self._reserve_in_redis(holds, terms, asked, ttl_ms)
        finally:
            if refused is not None:  # refused, or Redis failed: nothing reserved
                for term, hold, lease in zip(terms, holds, held, strict=True):
                    if lease is not None:
                        self.book.refund(term, lease, hold.amounts)
        return refused

    async def _reserve_in_redis(
        self, holds: list[Hold], terms: list[str], asked: list[int], ttl_ms: int
    ) -> int | None:
        """The `asked` holds in one call, each asking for a lease where no other call
        does: the index of the hold refused, else None."""
        claimed = set(self.book.claim(terms[i] for i in asked))
        extras = [self._lease_extra(holds[i]) if terms[i] in claimed else {} for i in asked]
        try:
            refused, granted = await self.reserve_holds([holds[i] for i in asked], ttl_ms, extras)
        except MissingMark as missing:
            raise MissingMark(asked[missing.index]) from None
        finally:
            self.book.unclaim(claimed)
        if refused is not None:
            return asked[refused]
        for i, extra, ok in zip(asked, extras, granted, strict=True):
            if ok and extra:
                self.book.grant(terms[i], extra, subject=holds[i])
        return None

    def _refill(self, leases: list[tuple[Any, Lease]], ttl_ms: int) -> None:
        """Top up budget leases running low, in the background (one call, nothing else
        reserved); claimed now, so requests that run out meanwhile wait for it."""
        claimed = set(self.book.claim(term for term, _ in leases))
        refills = [(term, lease) for term, lease in leases if term in claimed]
        if refills:
            self._start(self._top_up(refills, claimed, ttl_ms))

    async def _top_up(
        self, refills: list[tuple[Any, Lease]], claimed: Collection[Hashable], ttl_ms: int
    ) -> None:
        holds = [
            Hold(
                lease.subject.key,
                dict.fromkeys(lease.size, 0.0),
                lease.subject.limits,
                requires=lease.subject.requires,  # a hash Redis lost is not leased from
            )
            for _, lease in refills
        ]
        try:  # a refused or failed refill leaves requests to reserve for themselves
            refused, granted = await self.reserve_holds(
                holds, ttl_ms, [lease.size for _, lease in refills]
            )
        except Exception:
            return
        finally:
            self.book.unclaim(claimed)
        for (term, lease), ok in zip(refills, granted if refused is None else [], strict=False):
            if ok:
                self.book.grant(term, lease.size, subject=lease.subject)

    def _start(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _held(self, holds: list[Hold], terms: list[str]) -> list[Lease | None]:
        now = time.monotonic()
        return [self.book.covers(t, h.amounts, now) for t, h in zip(terms, holds, strict=True)]

    def _lease_extra(self, hold: Hold) -> dict[str, float]:
        multiple = lease_multiple(hold.amounts, hold.limits, self.fraction)
        return {f: a * multiple for f, a in hold.amounts.items()}

    def _give_back(self, leases: list[Lease]) -> None:
        """What ended leases did not spend, released with the next debits."""
        released = {
            lease.subject.key: {f"reserved_{f}": -a for f, a in lease.left.items()}
            for lease in leases
        }
        self.release((released, None))

    async def aclose(self) -> None:
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self.book.close()
