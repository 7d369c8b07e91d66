"""In-process state: correct for one process, the zero-setup default."""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Mapping

from gateway.state.backend import Hold, MissingMark


class MemoryState:
    kind = "memory"
    health = None  # nothing to be unreachable

    def __init__(self) -> None:
        self._values: dict[str, tuple[bytes | float, float | None]] = {}
        self._hashes: dict[str, dict[str, float]] = defaultdict(dict)
        self._hash_deadlines: dict[str, float] = {}
        self._blobs: dict[str, dict[str, bytes]] = defaultdict(dict)

    def _live(self, key: str) -> bytes | float | None:
        item = self._values.get(key)
        if item is None:
            return None
        value, expires = item
        if expires is not None and expires <= time.monotonic():
            del self._values[key]
            return None
        return value

    async def get(self, key: str) -> bytes | None:
        value = self._live(key)
        if isinstance(value, float):
            return repr(value).encode()
        return value

    async def set(self, key: str, value: bytes, ttl: float | None = None) -> None:
        self._values[key] = (value, _deadline(ttl))

    async def set_many(self, items: list[tuple[str, bytes, float | None]]) -> None:
        for key, value, ttl in items:
            await self.set(key, value, ttl)

    async def swap(self, key: str, value: bytes, ttl: float | None = None) -> bytes | None:
        previous = await self.get(key)
        await self.set(key, value, ttl)
        return previous

    async def delete(self, key: str) -> None:
        self._values.pop(key, None)
        self._hashes.pop(key, None)

    async def incr(self, key: str, amount: float, ttl: float | None = None) -> float:
        current = self._live(key)
        value = (float(current) if current is not None else 0.0) + amount
        expires = self._values[key][1] if current is not None else _deadline(ttl)
        self._values[key] = (value, expires)
        return value

    async def hincr(self, key: str, field: str, amount: float) -> float:
        bucket = self._hashes[key]
        bucket[field] = bucket.get(field, 0.0) + amount
        return bucket[field]

    async def hgetall(self, key: str) -> dict[str, float]:
        return dict(self._hashes.get(key, {}))

    async def hset(self, key: str, field: str, value: bytes) -> None:
        self._blobs[key][field] = value

    async def hget(self, key: str, field: str) -> bytes | None:
        return self._blobs.get(key, {}).get(field)

    async def hdel(self, key: str, field: str) -> None:
        self._blobs.get(key, {}).pop(field, None)

    async def hvalues(self, key: str) -> dict[str, bytes]:
        return dict(self._blobs.get(key, {}))

    async def hincr_many(
        self, updates: dict[str, dict[str, float]], ttl: float | None = None
    ) -> None:
        now = time.monotonic()
        for key, amounts in updates.items():
            if key in self._hash_deadlines and self._hash_deadlines[key] <= now:
                self._hashes.pop(key, None)
                self._hash_deadlines.pop(key, None)
            if key not in self._hashes and ttl is not None:
                self._hash_deadlines[key] = now + ttl
            for field, amount in amounts.items():
                await self.hincr(key, field, amount)

    async def hgetall_many(self, keys: list[str]) -> list[dict[str, float]]:
        now = time.monotonic()
        return [
            {} if self._hash_deadlines.get(k, now + 1) <= now else await self.hgetall(k)
            for k in keys
        ]

    async def debit(self, updates: dict[str, dict[str, float]], ttl: float | None = None) -> None:
        await self.hincr_many(updates, ttl)

    async def write_pending(self) -> None:
        return None  # debits are written at once

    async def debit_each(
        self, keys: tuple[str, ...], amounts: dict[str, float], ttl: float | None = None
    ) -> None:
        await self.hincr_many(dict.fromkeys(keys, amounts), ttl)  # (read, never changed)

    def take_leased(
        self, terms: tuple[str, ...], amounts: Mapping[str, float], ttl: float | None = None
    ) -> bool:
        return False  # one process: every reservation is decided here at once

    async def reserve(self, holds: list[Hold], ttl: float | None = None) -> int | None:
        """As Redis's script does (no await between the check and the update)."""
        now = time.monotonic()
        for i, hold in enumerate(holds):
            expired = self._hash_deadlines.get(hold.key, now + 1) <= now
            counts: dict[str, float] = {} if expired else self._hashes.get(hold.key, {})
            if hold.requires and hold.requires not in counts:
                raise MissingMark(i)
            for field, amount in hold.amounts.items():
                limit = hold.limits.get(field)
                used = counts.get(field, 0.0) + counts.get(f"reserved_{field}", 0.0)
                if limit is not None and (used >= limit or used + amount > limit):
                    return i
        updates = {h.key: {f"reserved_{f}": a for f, a in h.amounts.items()} for h in holds}
        await self.hincr_many(updates, ttl)
        return None

    async def ping(self) -> bool:
        return True

    def limits_uri(self) -> str:
        return "memory://"

    async def aclose(self) -> None:
        return None


def _deadline(ttl: float | None) -> float | None:
    return None if ttl is None else time.monotonic() + ttl
