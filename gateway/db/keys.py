"""Admin-created keys in PostgreSQL, with the state backend (Redis) as their fast copy.

KeyStore (gateway/auth/keys.py) keeps admin-created keys in two state hashes: `auth:keys`
(digest -> record) and `auth:key_ids` (id -> digest). `KeyBackedState` wraps the state
backend and is the only place that knows PostgreSQL holds them too: a record written or
deleted in `auth:keys` is written or deleted in `api_keys` first (so the database is never
behind), and when the state has lost its copy (the `auth:keys:synced` marker is gone: Redis
flushed or restarted without persistence) the next miss reloads every record from the
database. A miss on a synced state costs one GET and no database query, so random keys
presented by attackers never reach PostgreSQL. YAML keys never pass through here.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager

import asyncpg
import orjson

from gateway.auth.keys import BY_HASH, BY_ID, KeyExists
from gateway.db.pool import DB_ERRORS, Database
from gateway.errors import DatabaseUnavailable
from gateway.state import StateBackend
from gateway.state.backend import Hold
from gateway.state.health import RedisHealth

SYNCED = "auth:keys:synced"


@asynccontextmanager
async def unavailable_as_503() -> AsyncIterator[None]:
    """An admin change or listing the database cannot take: 503, nothing half-done."""
    try:
        yield
    except DB_ERRORS:
        raise DatabaseUnavailable("The key database cannot be reached; try again.") from None


class KeyArchive:
    """The `api_keys` table: digest -> the record KeyStore writes (hashes only)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def put(self, hexdigest: str, record: bytes) -> None:
        key_id = orjson.loads(record)["id"]
        pool = await self.db.pool()
        try:
            await pool.execute(
                "INSERT INTO api_keys (digest, id, record) VALUES ($1, $2, $3::jsonb) "
                "ON CONFLICT (digest) DO UPDATE SET record = EXCLUDED.record",
                hexdigest,
                key_id,
                record.decode(),
            )
        except asyncpg.UniqueViolationError:
            raise KeyExists(key_id) from None

    async def delete(self, hexdigest: str) -> None:
        pool = await self.db.pool()
        await pool.execute("DELETE FROM api_keys WHERE digest = $1", hexdigest)

    async def digests(self) -> set[str]:
        pool = await self.db.pool()
        return {r["digest"] for r in await pool.fetch("SELECT digest FROM api_keys")}

    async def records(self) -> dict[str, bytes]:
        pool = await self.db.pool()
        rows = await pool.fetch("SELECT digest, record::text AS record FROM api_keys ORDER BY id")
        return {r["digest"]: r["record"].encode() for r in rows}


class KeyBackedState:
    """A state backend whose key hashes are backed by `api_keys`; all else passes through."""

    def __init__(self, inner: StateBackend, archive: KeyArchive) -> None:
        self.inner = inner
        self.archive = archive
        self.kind = inner.kind
        self._sync_lock = asyncio.Lock()

    async def hget(self, key: str, field: str) -> bytes | None:
        found = await self.inner.hget(key, field)
        if found is None and key in (BY_HASH, BY_ID):
            async with unavailable_as_503():
                if await self.resync():
                    found = await self.inner.hget(key, field)
        return found

    async def hset(self, key: str, field: str, value: bytes) -> None:
        if key == BY_HASH:
            async with unavailable_as_503():
                await self.archive.put(field, value)
        await self.inner.hset(key, field, value)

    async def hdel(self, key: str, field: str) -> None:
        if key == BY_HASH:
            async with unavailable_as_503():
                await self.archive.delete(field)
        await self.inner.hdel(key, field)

    async def hvalues(self, key: str) -> dict[str, bytes]:
        if key in (BY_HASH, BY_ID):
            async with unavailable_as_503():
                await self.resync()
        return await self.inner.hvalues(key)

    async def resync(self) -> bool:
        """Reload the key hashes from the database when the state lost them; True if it did."""
        if await self.inner.get(SYNCED) is not None:
            return False
        async with self._sync_lock:
            if await self.inner.get(SYNCED) is not None:
                return True  # another request of this process reloaded them meanwhile
            records = await self.archive.records()
            for hexdigest, record in records.items():
                await self.inner.hset(BY_HASH, hexdigest, record)
                await self.inner.hset(BY_ID, orjson.loads(record)["id"], hexdigest.encode())
            # A key revoked while we copied must not come back: drop what is gone now.
            alive = await self.archive.digests()
            for hexdigest, record in records.items():
                if hexdigest not in alive:
                    await self.inner.hdel(BY_HASH, hexdigest)
                    await self.inner.hdel(BY_ID, orjson.loads(record)["id"])
            await self.inner.set(SYNCED, b"1")
        return True

    # -- everything else is the wrapped backend's
    @property
    def health(self) -> RedisHealth | None:
        return self.inner.health

    async def get(self, key: str) -> bytes | None:
        return await self.inner.get(key)

    async def swap(self, key: str, value: bytes, ttl: float | None = None) -> bytes | None:
        return await self.inner.swap(key, value, ttl)

    async def debit(self, updates: dict[str, dict[str, float]], ttl: float | None = None) -> None:
        await self.inner.debit(updates, ttl)

    async def write_pending(self) -> None:
        await self.inner.write_pending()

    async def debit_each(
        self, keys: tuple[str, ...], amounts: dict[str, float], ttl: float | None = None
    ) -> None:
        await self.inner.debit_each(keys, amounts, ttl)

    async def reserve(self, holds: list[Hold], ttl: float | None = None) -> int | None:
        return await self.inner.reserve(holds, ttl)

    def take_leased(
        self, terms: tuple[str, ...], amounts: Mapping[str, float], ttl: float | None = None
    ) -> bool:
        return self.inner.take_leased(terms, amounts, ttl)

    async def set(self, key: str, value: bytes, ttl: float | None = None) -> None:
        await self.inner.set(key, value, ttl)

    async def set_many(self, items: list[tuple[str, bytes, float | None]]) -> None:
        await self.inner.set_many(items)

    async def delete(self, key: str) -> None:
        await self.inner.delete(key)

    async def incr(self, key: str, amount: float, ttl: float | None = None) -> float:
        return await self.inner.incr(key, amount, ttl)

    async def hincr(self, key: str, field: str, amount: float) -> float:
        return await self.inner.hincr(key, field, amount)

    async def hgetall(self, key: str) -> dict[str, float]:
        return await self.inner.hgetall(key)

    async def hincr_many(
        self, updates: dict[str, dict[str, float]], ttl: float | None = None
    ) -> None:
        await self.inner.hincr_many(updates, ttl)

    async def hgetall_many(self, keys: list[str]) -> list[dict[str, float]]:
        return await self.inner.hgetall_many(keys)

    async def ping(self) -> bool:
        return await self.inner.ping()

    def limits_uri(self) -> str:
        return self.inner.limits_uri()

    async def aclose(self) -> None:
        await self.inner.aclose()
