"""The limiter's Redis store: the `limits` library's sliding-window scripts on the
gateway's own Redis client (gateway/ratelimit/limiter.py decides; this module talks to Redis)."""

from __future__ import annotations

import contextlib
import hashlib
import math
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from limits.aio.storage.redis.bridge import RedisBridge
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import NoScriptError

from gateway.ratelimit.scripts import ACQUIRE_ALL as ACQUIRE_ALL_TEXT
from gateway.ratelimit.windows import Charge, Outcome, Rule, Window, settle_refusal
from gateway.state.leases import INSTANCE_SECONDS
from gateway.state.redis_url import redis_client

# Seconds. A refused connection (Redis down) fails at once; a read that times out is
# ambiguous (the script may have run), so its timeout only guards against a hung Redis.
REDIS_CONNECT_TIMEOUT = 1.0
REDIS_READ_TIMEOUT = 2.0


@dataclass(frozen=True, slots=True)
class LuaScript:
    text: bytes
    sha: str

    @classmethod
    def of(cls, text: str | bytes) -> LuaScript:
        raw = text.encode() if isinstance(text, str) else text
        return cls(raw, hashlib.sha1(raw).hexdigest())


# The `limits` library's own scripts: counts stay compatible with its strategies.
ACQUIRE = LuaScript.of(RedisBridge.SCRIPT_ACQUIRE_SLIDING_WINDOW)
READ = LuaScript.of(RedisBridge.SCRIPT_SLIDING_WINDOW)
INCR = LuaScript.of(RedisBridge.SCRIPT_INCR_EXPIRE)
ACQUIRE_ALL = LuaScript.of(ACQUIRE_ALL_TEXT)  # every rule at once (not on a Cluster)
SCRIPTS = (ACQUIRE, READ, INCR, ACQUIRE_ALL)


class RedisWindows:
    """The library's sliding-window Lua scripts and key layout on the gateway's own Redis
    client, so limits take every URL the state backend takes (plain, unix, TLS, Sentinel,
    Cluster: gateway/state/redis_url.py). Every rule of a decision is queued in one
    pipeline: one round trip for plain Redis and Sentinel (the master's connection); for a
    Cluster, redis-py's cluster pipeline sends each node its commands in parallel (a rule's
    two window keys share a hash tag, so each script call stays on one slot)."""

    def __init__(
        self, url: str, prefix: str, pool_size: int = 64, pool_timeout: float = 10.0
    ) -> None:
        self.client: Any = redis_client(
            url,
            socket_timeout=REDIS_READ_TIMEOUT,
            socket_connect_timeout=REDIS_CONNECT_TIMEOUT,
            # No client-side retries: a re-sent decision whose first try ran counts twice.
            retry=Retry(NoBackoff(), 0),
            pool_size=pool_size,  # a burst waits for a connection (gateway/state/health.py)
            pool_timeout=pool_timeout,
        )
        self.cluster = "+cluster://" in url
        self.key_prefix = prefix + "limits:"
        self.instances_key = prefix + "lease-instances"
        self.instance_id = uuid.uuid4().hex

    def _keys(self, rule: Rule) -> list[str]:
        # The library's layout: "{key}" and "{key}/-1", the braces keep both on one slot.
        current = f"{self.key_prefix}{{{rule.key}}}"
        return [current + "/-1", current]

    async def acquire(self, charges: Sequence[Charge], report: Sequence[bool]) -> Outcome:
        if not self.cluster:
            return await self._acquire_in_one_call(charges, report)
        calls = []
        for (rule, cost), wanted in zip(charges, report, strict=True):
            keys, expiry = self._keys(rule), rule.item.get_expiry()
            calls.append((ACQUIRE, keys, [rule.item.amount, expiry, cost]))
            if wanted:  # read the window after taking from it, in the same round trip
                calls.append((READ, keys, [expiry]))
        results = iter(await self._run(calls))
        now = time.time()
        taken: list[bool] = []
        windows: list[Window | None] = []
        for (rule, _), wanted in zip(charges, report, strict=True):
            taken.append(bool(next(results)))
            windows.append(_window_from_counts(rule, next(results), now) if wanted else None)
        return await settle_refusal(self, charges, report, taken, windows)

    async def _acquire_in_one_call(
        self, charges: Sequence[Charge], report: Sequence[bool]
    ) -> Outcome:
        """Every rule in one script call: all taken, or none (gateway/ratelimit/scripts.py)."""
        outcome, _ = await self.acquire_leasing(charges, report, [0] * len(charges))
        return outcome

    async def acquire_leasing(
        self, charges: Sequence[Charge], report: Sequence[bool], extras: Sequence[int]
    ) -> tuple[Outcome, list[int]]:
        """`acquire` in one script call, each rule also asking for its `extras` (a lease,
        gateway/state/leases.py): the outcome, and per rule the extra granted. Not on a
        Cluster (one call cannot span its slots)."""
        keys: list[str] = [self.instances_key]
        args: list[Any] = [self.instance_id, INSTANCE_SECONDS * 1000]
        for (rule, cost), wanted, extra in zip(charges, report, extras, strict=True):
            keys += self._keys(rule)
            args += [rule.item.amount, rule.item.get_expiry(), cost, 1 if wanted else 0, extra]
        (answer,) = await self._run([(ACQUIRE_ALL, keys, args)])
        now = time.time()
        refused = int(answer[0]) - 1 if int(answer[0]) else None
        granted = [int(g) for g in answer[1 : 1 + len(charges)]]
        counts = iter(answer[1 + len(charges) :])
        windows: list[Window | None] = []
        for i, ((rule, _), wanted) in enumerate(zip(charges, report, strict=True)):
            read = wanted or i == refused
            window = [next(counts) for _ in range(4)] if read else None
            windows.append(_window_from_counts(rule, window, now) if window else None)
        return (refused, windows), granted

    async def windows(self, rules: Sequence[Rule]) -> list[Window]:
        calls = [(READ, self._keys(r), [r.item.get_expiry()]) for r in rules]
        now = time.time()
        results = await self._run(calls)
        return [_window_from_counts(r, w, now) for r, w in zip(rules, results, strict=True)]

    async def add(self, charges: Sequence[Charge]) -> None:
        calls = []
        for rule, amount in charges:
            current = self._keys(rule)[1]
            calls.append((INCR, [current], [rule.item.get_expiry() * 2, amount]))
        await self._run(calls)

    async def _run(self, calls: list[tuple[LuaScript, list[str], list[Any]]]) -> list[Any]:
        """EVALSHA the library's scripts in one pipeline; load them if Redis lacks them.

        (redis-py's own script-in-pipeline path asks SCRIPT EXISTS on every execute: a
        second round trip on the hot path.) After a Redis restart some calls of a
        pipeline may fail with NOSCRIPT while others ran (another client loaded the
        scripts in between): only the failed ones run again, so nothing counts twice."""
        results: list[Any] = [None] * len(calls)
        pending = list(range(len(calls)))
        for attempt in (1, 2, 3):
            answers = await self._send([calls[i] for i in pending])
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
            await self._load_scripts()
        raise AssertionError("unreachable")

    async def _send(self, calls: list[tuple[LuaScript, list[str], list[Any]]]) -> list[Any]:
        """The answers (errors included) of EVALSHA calls: one command needs no pipeline
        (measured: ~0.08 ms less per decision than a pipeline of one)."""
        if len(calls) == 1:
            script, keys, args = calls[0]
            try:
                return [await self.client.evalsha(script.sha, len(keys), *keys, *args)]
            except NoScriptError as exc:
                return [exc]
        async with self.client.pipeline(transaction=False) as pipe:
            for script, keys, args in calls:
                pipe.execute_command("EVALSHA", script.sha, len(keys), *keys, *args)
            return list(await pipe.execute(raise_on_error=False))

    async def _load_scripts(self) -> None:
        """Load every script at once (a restarted Redis has none)."""
        if self.cluster:  # SCRIPT LOAD outside a pipeline: redis-py sends it to every node
            for script in SCRIPTS:
                await self.client.script_load(script.text)
            return
        async with self.client.pipeline(transaction=False) as pipe:
            for script in SCRIPTS:
                pipe.script_load(script.text)
            await pipe.execute()

    async def ping(self) -> bool:
        try:
            return bool(await self.client.ping())
        except Exception:
            return False

    async def reset_connections(self) -> None:
        """Drop pooled connections (stale after a Redis restart) so none fails a request."""
        if self.cluster:  # the cluster client rebuilds its node connections itself
            return
        with contextlib.suppress(Exception):
            await self.client.connection_pool.disconnect()

    async def aclose(self) -> None:
        with contextlib.suppress(Exception):
            await self.client.aclose()


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
    period_left = max(cur_ttl - expiry, 0.0)  # the current key's period, before it shifts
    return Window(rule, remaining, now + (wait if wait != math.inf else 0), period_left)
