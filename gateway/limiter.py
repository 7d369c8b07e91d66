"""Rate limiting on the `limits` library: sliding window counters, shared through Redis.

Why the sliding window counter: a moving window keeps one entry per unit of cost, so a
`100000/minute` token limit would store up to 100,000 list entries per key; the counter
keeps two integers per window, is exact at the instant of each decision (one atomic Lua
call in Redis) and smooths the boundary burst a fixed window allows.

Every rule of a request is decided in ONE Redis round trip: the library's own Lua scripts
(acquire, and a read of the key's windows for the response headers) are queued in one
pipeline. A refusal by one rule releases what the others took. If Redis fails, decisions
fall back to a per-process memory limiter (or refuse, when configured closed) until a
background probe sees Redis answer again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from limits import RateLimitItem
from limits.aio.storage import MemoryStorage, RedisStorage
from limits.aio.strategies import SlidingWindowCounterRateLimiter
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import NoScriptError

from gateway.errors import GatewayError
from gateway.observability.metrics import Metrics

log = logging.getLogger("gateway")

Kind = Literal["requests", "tokens"]
PROBE_SECONDS = 0.5
# Seconds. A refused connection (Redis down) fails at once; a read that times out is
# ambiguous (the script may have run), so its timeout only guards against a hung Redis.
REDIS_CONNECT_TIMEOUT = 1.0
REDIS_READ_TIMEOUT = 2.0


class LimiterUnavailable(GatewayError):
    """Redis is unreachable and limits are configured to fail closed."""

    status = 503
    error_type = "api_error"
    log_level = logging.WARNING


@dataclass(frozen=True, slots=True)
class Rule:
    scope: str  # key, user, ip, model, global, failed_auth (a metric label)
    kind: Kind
    item: RateLimitItem
    identity: str  # key id, user, ip …: part of the storage key, never a metric label

    @property
    def key(self) -> str:
        return self.item.key_for(self.scope, self.kind, self.identity)


@dataclass(frozen=True, slots=True)
class Window:
    rule: Rule
    remaining: int
    reset_at: float  # epoch seconds when room is next freed


@dataclass(frozen=True, slots=True)
class Decision:
    refused: Rule | None
    windows: list[Window]

    @property
    def allowed(self) -> bool:
        return self.refused is None

    def retry_after(self) -> float:
        now = time.time()
        waits = [w.reset_at - now for w in self.windows if w.rule == self.refused]
        return max(1.0, math.ceil(max(waits, default=1.0)))


Charge = tuple[Rule, int]  # a rule and the amount to take from it
Taken = tuple[bool, "Window | None"]  # taken or not, and the window if it was asked for


class MemoryWindows:
    """The library's strategy over its in-process storage (one process, or the fallback)."""

    def __init__(self) -> None:
        self.storage = MemoryStorage()
        self.strategy = SlidingWindowCounterRateLimiter(self.storage)

    async def acquire(self, charges: Sequence[Charge], report: Sequence[bool]) -> list[Taken]:
        out: list[Taken] = []
        for (rule, cost), wanted in zip(charges, report, strict=True):
            ok = await self.strategy.hit(rule.item, rule.scope, rule.kind, rule.identity, cost=cost)
            out.append((ok, (await self.windows([rule]))[0] if wanted else None))
        return out

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


class RedisWindows:
    """The library's Redis storage and scripts, with every rule queued in one pipeline."""

    def __init__(self, uri: str, prefix: str) -> None:
        self.storage = RedisStorage(
            uri,
            implementation="redispy",
            key_prefix=prefix + "limits",
            wrap_exceptions=True,
            socket_timeout=REDIS_READ_TIMEOUT,
            socket_connect_timeout=REDIS_CONNECT_TIMEOUT,
            # No client-side retries: a re-sent decision whose first try ran counts twice.
            retry=Retry(NoBackoff(), 0),
        )
        self.bridge: Any = self.storage.bridge

    def _keys(self, rule: Rule) -> list[str]:
        current = self.storage._current_window_key(rule.key)
        previous = self.storage._previous_window_key(rule.key)
        return [self.bridge.prefixed_key(previous), self.bridge.prefixed_key(current)]

    async def acquire(self, charges: Sequence[Charge], report: Sequence[bool]) -> list[Taken]:
        calls = []
        for (rule, cost), wanted in zip(charges, report, strict=True):
            keys, expiry = self._keys(rule), rule.item.get_expiry()
            calls.append(
                (self.bridge.lua_acquire_sliding_window, keys, [rule.item.amount, expiry, cost])
            )
            if wanted:  # read the window after taking from it, in the same round trip
                calls.append((self.bridge.lua_sliding_window, keys, [expiry]))
        results = iter(await self._run(calls))
        now = time.time()
        out: list[Taken] = []
        for (rule, _), wanted in zip(charges, report, strict=True):
            ok = bool(next(results))
            out.append((ok, _window_from_counts(rule, next(results), now) if wanted else None))
        return out

    async def windows(self, rules: Sequence[Rule]) -> list[Window]:
        calls = [
            (self.bridge.lua_sliding_window, self._keys(r), [r.item.get_expiry()]) for r in rules
        ]
        now = time.time()
        results = await self._run(calls)
        return [_window_from_counts(r, w, now) for r, w in zip(rules, results, strict=True)]

    async def add(self, charges: Sequence[Charge]) -> None:
        calls = []
        for rule, amount in charges:
            current = self._keys(rule)[1]
            calls.append(
                (self.bridge.lua_incr_expire, [current], [rule.item.get_expiry() * 2, amount])
            )
        await self._run(calls)

    async def _run(self, calls: list[tuple[Any, list[str], list[Any]]]) -> list[Any]:
        """EVALSHA the library's scripts in one pipeline; load them if Redis lacks them.

        (redis-py's own script-in-pipeline path asks SCRIPT EXISTS on every execute: a
        second round trip on the hot path.) After a Redis restart some calls of a
        pipeline may fail with NOSCRIPT while others ran (another client loaded the
        scripts in between): only the failed ones run again, so nothing counts twice."""
        client = self.bridge.get_connection()
        results: list[Any] = [None] * len(calls)
        pending = list(range(len(calls)))
        for attempt in (1, 2, 3):
            async with client.pipeline(transaction=False) as pipe:
                for i in pending:
                    script, keys, args = calls[i]
                    pipe.execute_command("EVALSHA", script.sha, len(keys), *keys, *args)
                answers = await pipe.execute(raise_on_error=False)
            failed = []
            for i, answer in zip(pending, answers, strict=True):
                if isinstance(answer, NoScriptError) and attempt < 3:
                    failed.append(i)
                elif isinstance(answer, Exception):
                    raise answer
                else:
                    results[i] = answer
            if not failed:
                return results
            pending = failed
            await self._load_scripts(client)
        raise AssertionError("unreachable")

    async def _load_scripts(self, client: Any) -> None:
        """Load every script at once (a restarted Redis has none)."""
        scripts = [
            self.bridge.lua_acquire_sliding_window,
            self.bridge.lua_sliding_window,
            self.bridge.lua_incr_expire,
        ]
        async with client.pipeline(transaction=False) as pipe:
            for script in scripts:
                pipe.script_load(script.script)
            await pipe.execute()

    async def ping(self) -> bool:
        try:
            return bool(await self.storage.check())
        except Exception:
            return False

    async def reset_connections(self) -> None:
        """Drop pooled connections (stale after a Redis restart) so none fails a request."""
        with contextlib.suppress(Exception):
            await self.bridge.get_connection().connection_pool.disconnect()

    async def aclose(self) -> None:
        with contextlib.suppress(Exception):
            await self.bridge.get_connection().aclose()


def _window_from_counts(rule: Rule, window: Any, now: float) -> Window:
    """Remaining room and reset time from the library's window read (as it computes them)."""
    expiry = rule.item.get_expiry()
    prev_count, prev_ttl, cur_count, cur_ttl = (float(v or 0) for v in window)
    prev_ttl, cur_ttl = max(prev_ttl, 0) / 1000, max(cur_ttl, 0) / 1000
    weighted = prev_count * prev_ttl / expiry + cur_count
    remaining = max(0, rule.item.amount - math.floor(weighted))
    resets = [math.inf]
    if prev_count:
        resets.append(prev_ttl % (expiry / prev_count))
    if cur_count:
        resets.append(cur_ttl % expiry)
    wait = min(resets)
    return Window(rule, remaining, now + (wait if wait != math.inf else 0))


def reported(charges: Sequence[Charge]) -> list[bool]:
    """Which windows the response headers describe: the key's, else every rule's.
    (Each window read is one more script call in the round trip.)"""
    keyed = [rule.scope == "key" for rule, _ in charges]
    return keyed if any(keyed) else [True] * len(charges)


class Limiter:
    def __init__(self, uri: str, prefix: str, metrics: Metrics) -> None:
        self.primary: MemoryWindows | RedisWindows = (
            MemoryWindows() if uri.startswith("memory") else RedisWindows(uri, prefix)
        )
        self.fallback = MemoryWindows()
        self.metrics = metrics
        self.degraded = False
        self._probe: asyncio.Task[None] | None = None

    async def acquire(self, charges: Sequence[Charge], on_error: str = "open") -> Decision:
        """Take every charge, or none: a refusal by one rule gives back what others took.
        `on_error`: what to do while Redis is unreachable, `open` (per-process) or `closed`."""
        if not charges:
            return Decision(None, [])
        report = reported(charges)
        results = await self._call("acquire", (charges, report), on_error)
        windows = [w for _, w in results if w is not None]
        taken = [ok for ok, _ in results]
        if all(taken):
            return Decision(None, windows)
        refused = charges[taken.index(False)][0]
        given_back = [(r, -c) for (r, c), ok in zip(charges, taken, strict=True) if ok]
        if given_back:
            await self.add(given_back)
        if all(w.rule != refused for w in windows):  # its window, for Retry-After
            windows += await self._call("windows", ([refused],), on_error)
        self.metrics.ratelimit_refusals.labels(refused.scope).inc()
        return Decision(refused, windows)

    async def add(self, charges: Sequence[Charge]) -> None:
        """Take (positive) or give back (negative) amounts without a check: settlement."""
        charges = [(r, a) for r, a in charges if a]
        if charges:
            await self._call("add", (charges,), "open")

    async def _call(self, method: str, args: tuple[Any, ...], on_error: str) -> Any:
        if not self.degraded:
            try:
                return await getattr(self.primary, method)(*args)
            except Exception as exc:  # StorageError, connection refused, timeouts
                self._degrade(exc)
        if on_error == "closed":
            raise LimiterUnavailable("Rate limiting is unavailable; try again shortly.")
        return await getattr(self.fallback, method)(*args)

    def _degrade(self, exc: Exception) -> None:
        self.metrics.redis_errors.labels("ratelimit").inc()
        if self.degraded:
            return
        self.degraded = True
        self.metrics.ratelimit_fallback.set(1)
        log.warning(
            "rate-limit storage unreachable; limiting per process until it answers",
            extra={"error": type(exc).__name__},
        )
        self._probe = asyncio.get_running_loop().create_task(self._recover())

    async def _recover(self) -> None:
        while not await self.primary.ping():
            await asyncio.sleep(PROBE_SECONDS)
        await self.primary.reset_connections()
        self.degraded = False
        self.fallback = MemoryWindows()  # start clean next time
        self.metrics.ratelimit_fallback.set(0)
        log.warning("rate-limit storage reachable again; shared limits restored")

    def health(self) -> str | None:
        return "rate limits: per-process fallback (Redis unreachable)" if self.degraded else None

    async def aclose(self) -> None:
        if self._probe is not None:
            self._probe.cancel()
        await self.primary.aclose()
