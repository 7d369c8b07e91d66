"""Quota leases: a slice of a shared limit held by one instance, spent without Redis.

A shared limit decided in Redis costs every request a round trip and its client CPU
(benchmarks/README.md: the production shape's largest cost). A lease moves that cost to
one request in many: when an instance goes to Redis anyway, the same atomic call may take
a little more than the request needs, and the instance then answers the next requests
from that slice in memory. Used by rate limits (gateway/ratelimit/limiter.py, a rule's
window count) and budgets (gateway/state/redis.py, a spend hash's `reserved_<field>`).

Why this never lets a limit be passed: a leased amount is counted in Redis when it is
granted, exactly as if requests had taken it, so every instance's decisions see it; the
instance spends no more than it holds; what it does not spend goes back when the lease
ends. Settlement is unchanged: a request served from a lease settles against Redis as
one decided there would (its real usage replaces its reservation).

Why it stays exact at the boundary: Redis grants a lease only while the room left after
it is at least (active instances + 1) x its size (the scripts count instances that asked
for leases in the last `INSTANCE_SECONDS`). Near the limit no lease is granted and every
decision is made in Redis, request by request. What leases can do is hold room that
another instance then lacks: at most one lease per instance and counter, for at most
`lease_seconds`, after which it is given back.

Lease sizes: `fraction` of the limit, and at most `MAX_REQUESTS` requests' worth; a
lease smaller than two requests' worth is not asked for (low limits stay exact per
request, as before).
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
import time
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from gateway.state.allowance import ALLOWANCE_REQUESTS, SHARE, Allowance, Sources

# An allowance field's source: its leases' keys, the lease field, one request's cost.
Group = tuple[Sequence[Hashable], str, float]

MAX_REQUESTS = 500  # a lease serves at most this many requests like the one that asked
MIN_REQUESTS = 2  # smaller than this: not worth holding, decide in Redis
INSTANCE_SECONDS = 10  # an instance that asked for no lease for this long is not counted
RETURN_MARGIN_SECONDS = 0.1  # a lease is given back only this long before its window ends


# Lua, shared by the scripts that grant leases (gateway/ratelimit/scripts.py,
# gateway/state/reserve_script.py): the instances that asked for a lease in the last
# `window` ms, this one included, from a sorted set of instance id -> last ask (KEYS[1]).
ACTIVE_INSTANCES_LUA = """
local instances = nil
local function active_instances(id, window_text)
    if instances == nil then
        local clock = redis.call('time')
        local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
        local window = tonumber(window_text)
        redis.call('zadd', KEYS[1], now, id)
        redis.call('zremrangebyscore', KEYS[1], '-inf', now - window)
        redis.call('pexpire', KEYS[1], window)
        instances = tonumber(redis.call('zcard', KEYS[1]))
    end
    return instances
end
"""


def lease_multiple(
    amounts: Mapping[str, float], limits: Mapping[str, float], fraction: float
) -> int:
    """How many requests like `amounts` a lease should cover: `fraction` of the tightest
    limit, at most MAX_REQUESTS; 0 when that is under MIN_REQUESTS (no lease)."""
    if fraction <= 0:
        return 0
    multiple = MAX_REQUESTS
    for name, limit in limits.items():
        amount = amounts.get(name, 0.0)
        if amount > 0:
            multiple = min(multiple, math.floor(limit * fraction / amount))
    return multiple if multiple >= MIN_REQUESTS else 0


@dataclass(slots=True)
class Lease:
    left: dict[str, float]  # per field, what this instance still holds
    expires_at: float  # time.monotonic(): unused amounts go back then
    return_until: float  # time.monotonic(): past this, the counter may have moved on
    remaining: float = 0.0  # a limit's room as last read, for response headers
    subject: Any = None  # what the holder needs to refill it or give it back
    size: dict[str, float] = field(default_factory=dict)  # the last grant
    low_marks: dict[str, float] = field(default_factory=dict)  # half the last grant

    def resize(self, amounts: Mapping[str, float]) -> None:
        self.size = dict(amounts)
        self.low_marks = {name: amount / 2 for name, amount in amounts.items()}

    def running_low(self) -> bool:
        """Under half of the last grant left: time to ask for more, before it runs out
        (a refill in the background; requests meanwhile go on spending what is left)."""
        left = self.left
        for name, mark in self.low_marks.items():  # noqa: SIM110 (no generator per call)
            if left[name] < mark:
                return True
        return False


class LeaseBook:
    """The leases this process holds, by counter (and the terms it was granted under: a
    lease never serves a request under other limits). Touched on the event loop only.

    `give_back` receives leases that ended with something left (their time is up, a new
    lease replaced them, or `close`); a timer armed by `grant` ends them on time."""

    def __init__(self, seconds: float, give_back: Callable[[list[Lease]], None]) -> None:
        self.seconds = seconds
        self.give_back = give_back
        self.leases: dict[Hashable, Lease] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._refills: dict[Hashable, asyncio.Future[None]] = {}
        self._allowances: set[Allowance] = set()  # carved from these leases, not ended

    def __len__(self) -> int:
        return len(self.leases)

    def covers(self, key: Hashable, amounts: Mapping[str, float], now: float) -> Lease | None:
        """The live lease on `key` holding at least `amounts` of every field, else None."""
        lease = self.leases.get(key)
        if lease is None or lease.expires_at <= now:
            return None
        left = lease.left
        for name, amount in amounts.items():
            if left.get(name, 0.0) < amount:
                return None
        return lease

    def covering(
        self, needs: Mapping[Hashable, float], name: str, now: float
    ) -> dict[Hashable, Lease]:
        """Of one-field leases (`name`), those live and holding what `needs` asks of each
        key: `covers` for every key of a request in one call."""
        leases = self.leases
        found: dict[Hashable, Lease] = {}
        for key, amount in needs.items():
            lease = leases.get(key)
            if lease is not None and lease.expires_at > now and lease.left.get(name, 0.0) >= amount:
                found[key] = lease
        return found

    def spend_each(
        self, held: Mapping[Hashable, Lease], needs: Mapping[Hashable, float], name: str, now: float
    ) -> list[Lease]:
        """`spend` on each held one-field lease what `needs` asks of its key (as `covering`
        returned them, with no await between); those now running low with no refill in
        flight."""
        low: list[Lease] = []
        seconds = self.seconds
        refills = self._refills
        for key, lease in held.items():
            amount = needs[key]
            left = lease.left[name] - amount
            lease.left[name] = left
            lease.remaining -= amount
            until = now + seconds
            lease.expires_at = until if until < lease.return_until else lease.return_until
            if left < lease.low_marks.get(name, 0.0) and key not in refills:
                low.append(lease)
        return low

    def carve(
        self, groups: tuple[Group, Group], now: float
    ) -> tuple[Allowance, list[tuple[Hashable, Lease]]] | None:
        """An allowance (gateway/state/allowance.py) of several requests' worth: per field's
        group (its leases' keys, the lease field, one request's cost), the same amount taken from
        each of its leases, at most ALLOWANCE_REQUESTS requests' worth and 1/SHARE of what
        a lease holds (one request's worth at least). None, with nothing taken, when a lease
        is missing, has ended or lacks one request's cost. Also the leases now running low
        with no refill in flight."""
        leases = self.leases
        multiple = ALLOWANCE_REQUESTS
        found: list[list[tuple[Hashable, Lease]]] = []
        for keys, name, cost in groups:
            row = []
            for key in keys:
                lease = leases.get(key)
                if lease is None or lease.expires_at <= now:
                    return None
                if cost > 0:
                    held = lease.left.get(name, 0.0)
                    if held < cost:
                        return None
                    multiple = min(multiple, int(held / (cost * SHARE)))
                row.append((key, lease))
            found.append(row)
        multiple = max(multiple, 1)  # one request's worth, when that is all a lease holds
        until = now + self.seconds
        expires_at = math.inf
        low: dict[Hashable, Lease] = {}
        sources: list[Sources] = []
        left: list[float] = []
        for (_, name, cost), row in zip(groups, found, strict=True):
            amount = cost * multiple
            for key, lease in row:
                rest = lease.left.get(name, 0.0) - amount
                lease.left[name] = rest
                lease.remaining -= amount
                lease.expires_at = until if until < lease.return_until else lease.return_until
                expires_at = min(expires_at, lease.return_until)
                if rest < lease.low_marks.get(name, 0.0) and key not in self._refills:
                    low[key] = lease
            sources.append(tuple((key, lease, name) for key, lease in row))
            left.append(amount if row else math.inf)
        allowance = Allowance((sources[0], sources[1]), left, expires_at)
        self._allowances.add(allowance)
        return allowance, list(low.items())

    def end_allowance(self, allowance: Allowance) -> None:
        """End an allowance: what it did not spend goes back into the leases it came
        from that are still held (one that ended gave back without it: counted in Redis,
        refusing early at worst, never over-admitting)."""
        self._allowances.discard(allowance)
        leases = self.leases
        for key, lease, name, amount in allowance.end():
            held = leases.get(key)
            if held is not None and held is lease:
                held.left[name] = held.left.get(name, 0.0) + amount
                held.remaining += amount

    def _keep_in_use(self, now: float) -> None:
        """A lease lives on `seconds` after its last use, and a request served from an
        allowance uses every lease it was carved from: their time runs from its last
        take, as if each request had spent from them."""
        seconds = self.seconds
        for allowance in self._allowances:
            if allowance.used_at + seconds <= now:
                continue
            for sources in allowance.sources:
                for _, lease, _ in sources:
                    until = min(allowance.used_at + seconds, lease.return_until)
                    lease.expires_at = max(lease.expires_at, until)

    def _end_allowances(self) -> None:
        """Before any lease ends: an allowance never outlives a lease it came from."""
        for allowance in list(self._allowances):
            self.end_allowance(allowance)

    async def wait_for_refills(self, keys: Iterable[Hashable]) -> bool:
        """Wait for the Redis calls in flight that may lease `keys`, when every key has
        one: concurrent requests then share one call instead of each making their own.
        False (nothing waited for) when some key has none."""
        refills = [self._refills.get(key) for key in keys]
        if not refills or any(f is None for f in refills):
            return False
        await asyncio.wait([f for f in refills if f is not None])  # (never cancels them)
        return True

    def refilling_now(self, key: Hashable) -> bool:
        return key in self._refills

    def claim(self, keys: Iterable[Hashable]) -> list[Hashable]:
        """Mark a Redis call that may lease `keys` as in flight (for `wait_for_refills`):
        the keys no other call has claimed, which only this call may then ask a lease
        for. One lease request per key at a time, so a burst cannot pile leases up."""
        loop = asyncio.get_running_loop()
        mine = [key for key in keys if key not in self._refills]
        for key in mine:
            self._refills[key] = loop.create_future()
        return mine

    def unclaim(self, keys: Iterable[Hashable]) -> None:
        """The call is over: wake whoever waits on its keys."""
        for key in keys:
            future = self._refills.pop(key, None)
            if future is not None and not future.done():
                future.set_result(None)

    def spend(self, lease: Lease, amounts: Mapping[str, float], now: float) -> None:
        """Take `amounts` from a lease `covers` just returned (with no await between:
        a lease can end at any await, and what it held is then given back). A lease in
        use lives on: it ends `seconds` after its last use (or with its counter's period)."""
        for name, amount in amounts.items():
            lease.left[name] -= amount
        until = now + self.seconds
        lease.expires_at = until if until < lease.return_until else lease.return_until

    def refund(self, key: Hashable, lease: Lease, amounts: Mapping[str, float]) -> None:
        """Put back what a refused request took from `lease`, if it is still held (one
        that ended meanwhile gave back without it: the amount stays counted, refusing
        early at worst, never over-admitting)."""
        if self.leases.get(key) is lease:
            for name, amount in amounts.items():
                lease.left[name] += amount

    def grant(
        self,
        key: Hashable,
        amounts: Mapping[str, float],
        window_left_seconds: float | None = None,
        remaining: float = 0.0,
        subject: Any = None,
    ) -> None:
        """Hold `amounts` on `key` (granted by Redis just now), for `seconds` or until
        the counter's window ends; what an earlier lease on `key` still held goes back."""
        now = time.monotonic()
        return_until = math.inf
        if window_left_seconds is not None:
            return_until = now + window_left_seconds - RETURN_MARGIN_SECONDS
        expires_at = min(now + self.seconds, return_until)
        lease = self.leases.get(key)
        if lease is not None and lease.expires_at > now and _same_period(lease, return_until):
            for name, amount in amounts.items():  # a top-up of the same period's lease
                lease.left[name] = lease.left.get(name, 0.0) + amount
            lease.expires_at, lease.remaining = expires_at, remaining
            lease.resize(amounts)
            return
        if key in self.leases:
            self._end_allowances()
        previous = self.leases.pop(key, None)
        lease = Lease(dict(amounts), expires_at, return_until, remaining, subject)
        lease.resize(amounts)
        self.leases[key] = lease
        self._arm()
        self._hand_back(self._returnable(previous, now))

    def _arm(self) -> None:
        if self._timer is None and self.leases:
            loop = asyncio.get_running_loop()
            self._timer = loop.call_later(self.seconds, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._hand_back(self.expire())
        self._arm()

    def _hand_back(self, leases: list[Lease]) -> None:
        if leases:
            self.give_back(leases)

    def close(self) -> None:
        """Shutdown: end every lease now, giving back what is left."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._hand_back(self.drain())

    def expire(self, now: float | None = None) -> list[Lease]:
        """Drop every lease past its time; those with something left to give back."""
        now = time.monotonic() if now is None else now
        self._keep_in_use(now)
        out: list[Lease] = []
        ended = [k for k, lease in self.leases.items() if lease.expires_at <= now]
        if ended:
            self._end_allowances()
        for key in ended:
            out += self._returnable(self.leases.pop(key), now)
        return out

    def drain(self) -> list[Lease]:
        """Drop every lease (shutdown); those with something left to give back."""
        now = time.monotonic()
        self._end_allowances()
        out: list[Lease] = []
        for lease in self.leases.values():
            out += self._returnable(lease, now)
        self.leases.clear()
        return out

    def forget(self) -> None:
        """Drop every lease without giving anything back (Redis lost them, or was reset):
        held amounts stay counted there, which can only refuse early, never over-admit."""
        for allowance in self._allowances:
            allowance.end()
        self._allowances.clear()
        self.leases.clear()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    @staticmethod
    def _returnable(lease: Lease | None, now: float) -> list[Lease]:
        """A lease with something left, still in its counter's period (one moved on past
        `return_until` would take a give-back as room in the next period: there the held
        amount stays counted where it was granted, refusing early, never over-admitting)."""
        if lease is None or now >= lease.return_until:
            return []
        left = {f: a for f, a in lease.left.items() if a > 0}
        return [dataclasses.replace(lease, left=left)] if left else []


def _same_period(lease: Lease, return_until: float) -> bool:
    """Whether a grant read now belongs to the lease's counter period (end times read
    from Redis's ttls differ by the milliseconds between the reads)."""
    return math.isclose(lease.return_until, return_until, abs_tol=0.05)
