"""Rate-limit windows: the types a decision is made of, and the per-process store.

`MemoryWindows` is the `limits` library's sliding-window counter over its in-process
storage: the limiter's store for one process, and its fallback while Redis is down.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

from limits import RateLimitItem
from limits.aio.storage import MemoryStorage
from limits.aio.strategies import SlidingWindowCounterRateLimiter

from gateway.state.allowance import Allowance
from gateway.state.leases import Lease

Kind = Literal["requests", "tokens"]


@dataclass(frozen=True, slots=True)
class Rule:
    scope: str  # key, user, ip, model, global, failed_auth (a metric label)
    kind: Kind
    item: RateLimitItem
    identity: str  # key id, user, ip …: part of the storage key, never a metric label
    key: str = field(init=False, compare=False, repr=False)  # the storage key, built once
    period: int = field(init=False, compare=False, repr=False)  # seconds per window
    amount: int = field(init=False, compare=False, repr=False)  # the limit per window
    amount_header: bytes = field(init=False, compare=False, repr=False)  # as headers show it

    def __post_init__(self) -> None:
        object.__setattr__(self, "key", self.item.key_for(self.scope, self.kind, self.identity))
        object.__setattr__(self, "period", self.item.get_expiry())
        object.__setattr__(self, "amount", self.item.amount)
        object.__setattr__(self, "amount_header", str(self.item.amount).encode())


# Read-only, not frozen: built per request, and frozen ones cost 3x to build.
@dataclass(slots=True)
class Window:
    rule: Rule
    remaining: int
    reset_at: float  # epoch seconds when room is next freed
    period_left: float | None = None  # seconds until the current count period ends (Redis)


# Read-only, not frozen: built per request, and frozen ones cost 3x to build.
@dataclass(slots=True)
class Decision:
    refused: Rule | None
    windows: list[Window]
    store: object = None  # the windows that decided: settlement goes back to them
    allowance: Allowance | None = None  # the allowance it was taken from, if one: then
    shown: Shown = ()  # the rules its headers show, in place of `windows`

    @property
    def allowed(self) -> bool:
        return self.refused is None

    def retry_after(self) -> float:
        now = time.time()
        waits = [w.reset_at - now for w in self.windows if w.rule == self.refused]
        return max(1.0, math.ceil(max(waits, default=1.0)))


Charge = tuple[Rule, int]  # a rule and the amount to take from it
# Per rule an allowance's headers show: the rule, its lease, the allowance's field it
# draws on (0: requests, 1: tokens).
Shown = tuple[tuple[Rule, Lease, int], ...]
# The charge refused (its index; None: every charge was taken, else none was) and, per
# charge, its window when reported (the refused charge's always is).
Outcome = tuple["int | None", "list[Window | None]"]


class Windows(Protocol):
    async def windows(self, rules: Sequence[Rule]) -> list[Window]: ...

    async def add(self, charges: Sequence[Charge]) -> None: ...


async def settle_refusal(
    store: Windows,
    charges: Sequence[Charge],
    report: Sequence[bool],
    taken: Sequence[bool],
    windows: list[Window | None] | None = None,
) -> Outcome:
    """After rule-by-rule takes: give back what was taken when one rule refused, and read
    the windows to report (the refused rule's for Retry-After) that were not read yet."""
    refused = taken.index(False) if not all(taken) else None
    if refused is not None:
        await store.add([(r, -c) for (r, c), ok in zip(charges, taken, strict=False) if ok])
    windows = windows or [None] * len(charges)
    missing = [
        i for i, wanted in enumerate(report) if windows[i] is None and (wanted or i == refused)
    ]
    rules = [charges[i][0] for i in missing]
    for i, window in zip(missing, await store.windows(rules), strict=True):
        windows[i] = window
    return refused, windows


class MemoryWindows:
    """The library's strategy over its in-process storage (one process, or the fallback)."""

    def __init__(self) -> None:
        self.storage = MemoryStorage()
        self.strategy = SlidingWindowCounterRateLimiter(self.storage)

    async def acquire(self, charges: Sequence[Charge], report: Sequence[bool]) -> Outcome:
        taken: list[bool] = []
        for rule, cost in charges:
            ok = await self.strategy.hit(rule.item, rule.scope, rule.kind, rule.identity, cost=cost)
            taken.append(ok)
            if not ok:
                break
        return await settle_refusal(self, charges, report, taken)

    async def windows(self, rules: Sequence[Rule]) -> list[Window]:
        out = []
        for rule in rules:
            stats = await self.strategy.get_window_stats(
                rule.item, rule.scope, rule.kind, rule.identity
            )
            out.append(Window(rule, stats.remaining, stats.reset_time))
        return out

    async def add(self, charges: Sequence[Charge]) -> None:
        for rule, amount in charges:
            expiry = rule.item.get_expiry()
            _, current = self.storage.sliding_window_keys(rule.key, expiry, time.time())
            await self.storage.incr(current, 2 * expiry, amount)

    async def ping(self) -> bool:
        return True

    async def reset_connections(self) -> None:
        return None

    async def aclose(self) -> None:
        return None


def reported(charges: Sequence[Charge]) -> list[bool]:
    """Which windows the response headers describe: the key's, else every rule's.
    (Each window read is one more script call in the round trip.)"""
    keyed = [rule.scope == "key" for rule, _ in charges]
    return keyed if any(keyed) else [True] * len(charges)
