"""Redis state: shared by every gateway instance that points at the same server.

Calls go through a bounded, blocking connection pool (a burst waits for a connection, it
does not fail) and through the process's one `RedisHealth`: while Redis is marked down a
call raises `RedisUnavailable` at once and its caller uses its fallback. Debits (spend)
are written in batches every few ms (gateway/state/write_batch.py); those that cannot be
written now are queued and retried (`debit`), flushed on `aclose`.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Mapping
from typing import Any

from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import NoScriptError, RedisError

from gateway.observability.metrics import Metrics
from gateway.state.backend import Hold, MissingMark
from gateway.state.budget_leases import BudgetLeases
from gateway.state.debits import Debit, add_into, merge_debits
from gateway.state.health import RedisHealth
from gateway.state.leases import INSTANCE_SECONDS
from gateway.state.redis_url import limits_uri, redis_client
from gateway.state.reserve_script import INCREMENT, RESERVE
from gateway.state.retry_queue import RetryQueue
from gateway.state.write_batch import WriteBatch

TIMEOUT_SECONDS = 1.0


class RedisState:
    kind = "redis"

    def __init__(
        self,
        url: str,
        prefix: str = "gw:",
        metrics: Metrics | None = None,
        pool_size: int = 64,
        pool_timeout: float = 10.0,
        lease_fraction: float = 0.0,
        lease_seconds: float = 1.0,
    ) -> None:
        self.url = url
        self.prefix = prefix
        self.cluster = "+cluster://" in url
        self.client = redis_client(  # plain, Sentinel or Cluster, by the URL's scheme
            url,
            socket_connect_timeout=TIMEOUT_SECONDS,
            socket_timeout=TIMEOUT_SECONDS,
            health_check_interval=10,
            # No client-side retries: a counter re-sent after a timeout counts twice, and
            # a hung Redis would cost each call several timeouts.
            retry=Retry(NoBackoff(), 0),
            pool_size=pool_size,
            pool_timeout=pool_timeout,
        )
        self.pool_size, self.pool_timeout = pool_size, pool_timeout
        self.health = RedisHealth(self._ping, metrics)
        self.health.on_recovery.append(self.reset_connections)
        self.debits: RetryQueue[Debit] = RetryQueue(
            "spend", self._write_debits, metrics, self.health
        )
        # debit_each's amounts, summed per group of counters until the batch leaves
        self._each: dict[tuple[tuple[str, ...], float | None], dict[str, float]] = {}
        self.debit_batch = WriteBatch(self._write_debits, self.debits, collect=self._spread)
        self._reserve = self.client.register_script(RESERVE)
        self._increment = self.client.register_script(INCREMENT)
        # Budget leases (gateway/state/leases.py); not on a Cluster (one call per slot).
        self.lease_fraction = 0.0 if self.cluster else lease_fraction
        self.budget_leases = BudgetLeases(
            lease_seconds,
            self.lease_fraction,
            lambda *call: self._reserve_holds(*call),  # looked up per call (tests count it)
            self.debit_batch.put,
        )
        self.leases = self.budget_leases.book
        self.instances_key = prefix + "lease-instances"
        self.instance_id = uuid.uuid4().hex

    async def get(self, key: str) -> bytes | None:
        with self.health.guard():
            value: bytes | None = await self.client.get(self.prefix + key)
            return value

    async def set(self, key: str, value: bytes, ttl: float | None = None) -> None:
        px = int(ttl * 1000) if ttl else None
        with self.health.guard():
            await self.client.set(self.prefix + key, value, px=px)

    async def set_many(self, items: list[tuple[str, bytes, float | None]]) -> None:
        with self.health.guard():
            async with self.client.pipeline(transaction=False) as pipe:
                for key, value, ttl in items:
                    pipe.set(self.prefix + key, value, px=int(ttl * 1000) if ttl else None)
                await pipe.execute()

    async def swap(self, key: str, value: bytes, ttl: float | None = None) -> bytes | None:
        px = int(ttl * 1000) if ttl else None
        previous: bytes | None = await self.client.set(self.prefix + key, value, px=px, get=True)
        return previous

    async def delete(self, key: str) -> None:
        with self.health.guard():
            await self.client.delete(self.prefix + key)

    async def incr(self, key: str, amount: float, ttl: float | None = None) -> float:
        full = self.prefix + key
        with self.health.guard():
            async with self.client.pipeline(transaction=False) as pipe:
                pipe.incrbyfloat(full, amount)
                if ttl:
                    pipe.pexpire(full, int(ttl * 1000), nx=True)
                results = await pipe.execute()
        return float(results[0])

    async def hincr(self, key: str, field: str, amount: float) -> float:
        with self.health.guard():
            return float(await self.client.hincrbyfloat(self.prefix + key, field, amount))

    async def hgetall(self, key: str) -> dict[str, float]:
        with self.health.guard():
            raw = await self.client.hgetall(self.prefix + key)
        return {k.decode(): float(v) for k, v in raw.items()}

    async def hset(self, key: str, field: str, value: bytes) -> None:
        with self.health.guard():
            await self.client.hset(self.prefix + key, field, value)

    async def hget(self, key: str, field: str) -> bytes | None:
        with self.health.guard():
            found: bytes | None = await self.client.hget(self.prefix + key, field)
            return found

    async def hdel(self, key: str, field: str) -> None:
        with self.health.guard():
            await self.client.hdel(self.prefix + key, field)

    async def hvalues(self, key: str) -> dict[str, bytes]:
        with self.health.guard():
            raw = await self.client.hgetall(self.prefix + key)
        return {k.decode(): v for k, v in raw.items()}

    async def hincr_many(
        self, updates: dict[str, dict[str, float]], ttl: float | None = None
    ) -> None:
        with self.health.guard():
            if not self.cluster:  # one script call (its keys may span slots: not there)
                keys, args = self._increment_call(updates, ttl)
                if keys:
                    await self._increment(keys=keys, args=args)
                return
            async with self.client.pipeline(transaction=False) as pipe:
                for key, amounts in updates.items():
                    full = self.prefix + key
                    for field, amount in amounts.items():
                        if amount:
                            pipe.hincrbyfloat(full, field, amount)
                    if ttl:
                        pipe.pexpire(full, int(ttl * 1000), nx=True)
                await pipe.execute()

    def _increment_call(
        self, updates: dict[str, dict[str, float]], ttl: float | None
    ) -> tuple[list[str], list[Any]]:
        """KEYS and ARGV of the INCREMENT script (gateway/state/reserve_script.py)."""
        keys: list[str] = []
        args: list[Any] = [int(ttl * 1000) if ttl else 0]
        for key, amounts in updates.items():
            fields = [(f, a) for f, a in amounts.items() if a]
            if not fields and not ttl:
                continue
            keys.append(self.prefix + key)
            args.append(len(fields))
            for field, amount in fields:
                args += [field, repr(float(amount))]
        return keys, args

    async def hgetall_many(self, keys: list[str]) -> list[dict[str, float]]:
        with self.health.guard():
            async with self.client.pipeline(transaction=False) as pipe:
                for key in keys:
                    pipe.hgetall(self.prefix + key)
                results = await pipe.execute()
        return [{k.decode(): float(v) for k, v in raw.items()} for raw in results]

    async def debit(self, updates: dict[str, dict[str, float]], ttl: float | None = None) -> None:
        """Written with the other debits of the next few ms, in one script call (or with
        this instance's next reservation, whichever comes first). Summed into the
        pending one as it comes (one merge per debit, not a merge of the batch)."""
        pending = self.debit_batch.pending
        if pending and pending[-1][1] == ttl:
            add_into(pending[-1][0], updates)
        else:
            self.debit_batch.put(({k: dict(v) for k, v in updates.items()}, ttl))

    async def debit_each(
        self, keys: tuple[str, ...], amounts: dict[str, float], ttl: float | None = None
    ) -> None:
        """As `debit`, summed once per request rather than once per counter: a request's
        spend counters (key and team, day and month) take the same amounts, so they are
        summed per group and spread over the counters when the batch leaves."""
        group = self._each.get((keys, ttl))
        if group is None:
            self._each[(keys, ttl)] = dict(amounts)
            self.debit_batch.arm()
            return
        for field, amount in amounts.items():
            group[field] = group.get(field, 0.0) + amount

    async def write_pending(self) -> None:
        await self.debit_batch.flush()

    def _spread(self) -> list[Debit]:
        groups, self._each = self._each, {}
        return [({key: dict(sums) for key in keys}, ttl) for (keys, ttl), sums in groups.items()]

    async def _write_debits(self, batch: list[Debit]) -> None:
        """Every queued debit in one call (summed per hash field)."""
        await self.hincr_many(*merge_debits(batch))

    def take_leased(
        self, terms: tuple[str, ...], amounts: Mapping[str, float], ttl: float | None = None
    ) -> bool:
        return self.budget_leases.take(terms, amounts, ttl)

    async def reserve(self, holds: list[Hold], ttl: float | None = None) -> int | None:
        ttl_ms = int((ttl or 0) * 1000) or 2**40
        if self.lease_fraction:  # (SpendStore.reserve has tried `take_leased` already)
            return await self.budget_leases.reserve(holds, ttl_ms)
        if not self.cluster:
            return (await self._reserve_holds(holds, ttl_ms))[0]
        # A Cluster cannot run one script over hashes in several slots: hold by hold,
        # giving back what the earlier ones took when one lacks room.
        for i, hold in enumerate(holds):
            try:
                refused = (await self._reserve_holds([hold], ttl_ms))[0]
            except MissingMark:
                await self._give_back_holds(holds[:i])
                raise MissingMark(i) from None
            if refused is not None:
                await self._give_back_holds(holds[:i])
                return i
        return None

    async def _give_back_holds(self, holds: list[Hold]) -> None:
        """Release what `holds` reserved (a later hold of the same request was refused)."""
        if not holds:
            return
        taken = {h.key: {f"reserved_{f}": -a for f, a in h.amounts.items()} for h in holds}
        try:  # given back now: the caller's next reservation must see it
            await self.hincr_many(taken)
        except Exception:
            self.debits.put((taken, None))

    async def _reserve_holds(
        self, holds: list[Hold], ttl_ms: int, extras: list[dict[str, float]] | None = None
    ) -> tuple[int | None, list[bool]]:
        """One script call: the first hold without room (None: all reserved) and per hold
        whether its lease was granted. The debits this process has pending go in the
        same round trip, first, so its own reservations always see its own settled spend."""
        args: list[Any] = [ttl_ms, self.instance_id, INSTANCE_SECONDS * 1000]
        for i, hold in enumerate(holds):
            args += [hold.requires, len(hold.amounts)]
            extra = extras[i] if extras else {}
            for field, amount in hold.amounts.items():
                limit = hold.limits.get(field)
                args += [field, "" if limit is None else repr(float(limit)), repr(float(amount))]
                args.append(repr(float(extra.get(field, 0.0))))
        keys = [self.prefix + h.key for h in holds]
        # The instances set is only touched when a lease is asked for (never on a Cluster).
        keys.insert(0, self.instances_key if not self.cluster else keys[0])
        debits = [] if self.cluster else self.debit_batch.take()  # one slot per call there
        try:
            with self.health.guard():
                if debits:
                    answer = await self._reserve_after(merge_debits(debits), keys, args)
                else:
                    answer = await self._reserve(keys=keys, args=args)
        except BaseException:
            for debit in debits:  # maybe not written: retried (at least once, never lost)
                self.debits.put(debit)
            raise
        refused = int(answer[0])
        if refused < 0:
            raise MissingMark(-refused - 1)
        if refused:
            return refused - 1, []
        return None, [bool(int(g)) for g in answer[1:]]

    async def _reserve_after(self, debit: Debit, keys: list[str], args: list[Any]) -> Any:
        """The pending debits' INCREMENT call, then the reservation, in one pipeline."""
        debit_keys, debit_args = self._increment_call(*debit)
        async with self.client.pipeline(transaction=False) as pipe:
            pipe.execute_command(
                "EVALSHA", self._increment.sha, len(debit_keys), *debit_keys, *debit_args
            )
            pipe.execute_command("EVALSHA", self._reserve.sha, len(keys), *keys, *args)
            debited, reserved = await pipe.execute(raise_on_error=False)
        if isinstance(debited, NoScriptError):  # a restarted Redis: neither script is there
            await self._increment(keys=debit_keys, args=debit_args)
        elif isinstance(debited, Exception):  # the reservation stands; the debits retry
            self.debits.put(debit)
        if isinstance(reserved, NoScriptError):
            return await self._reserve(keys=keys, args=args)
        if isinstance(reserved, Exception):
            raise reserved
        return reserved

    async def _ping(self) -> bool:
        try:
            return bool(await self.client.ping())
        except (RedisError, OSError):
            return False

    async def ping(self) -> bool:
        """For /ready: False at once while Redis is marked down (no wait on a hung
        Redis), else a real ping, whose failure marks it down for every user."""
        try:
            with self.health.guard():
                return bool(await self.client.ping())
        except Exception:
            return False

    async def reset_connections(self) -> None:
        """Drop pooled connections (stale after a Redis restart) so none fails a request."""
        if not self.cluster:
            with contextlib.suppress(Exception):
                await self.client.connection_pool.disconnect()

    def limits_uri(self) -> str:
        return limits_uri(self.url)

    async def aclose(self) -> None:
        await self.budget_leases.aclose()
        await self.debit_batch.flush()
        await self.debits.flush()
        await self.health.aclose()
        await self.client.aclose()
