"""PostgreSQL + pgvector as the shared semantic-cache store (many gateway instances).

One table: scope, question text, reply bytes, embedding, expiry. An HNSW index on the
cosine distance serves the nearest-neighbour search; the `scope = $1` filter is part of
every query, so entries never match across scopes (a filter that thins the HNSW result
can only cost a miss, never a wrong hit). Expired rows are ignored by every read and
deleted at most once a minute by the instance that happens to store.

Vectors travel in pgvector's binary format (a codec registered per connection), so no
extra client package is needed besides asyncpg (the `pgvector` optional extra).
"""

from __future__ import annotations

import asyncio
import logging
import struct
import time
from typing import TYPE_CHECKING, Any

from gateway.cache.semantic import Candidate

if TYPE_CHECKING:
    import asyncpg
    import numpy as np

log = logging.getLogger("gateway.cache")
CLEANUP_EVERY = 60.0  # seconds between deletes of expired rows


def _encode_vector(value: Any) -> bytes:
    import numpy as np

    row = np.asarray(value, dtype=">f4")
    return struct.pack(">HH", row.shape[0], 0) + row.tobytes()


def _decode_vector(data: bytes) -> Any:
    import numpy as np

    dim, _ = struct.unpack_from(">HH", data)
    return np.frombuffer(data, dtype=">f4", count=dim, offset=4).astype(np.float32)


class PgVectorStore:
    kind = "pgvector"

    def __init__(self, dsn: str, table: str, dim: int, min_size: int = 1, max_size: int = 4):
        self.dsn = dsn
        self.table = table  # validated by the config schema: [a-z_][a-z0-9_]*
        self.dim = dim
        self._pool_size = (min_size, max_size)
        self._pool: asyncpg.Pool | None = None
        self._lock = asyncio.Lock()
        self._cleaned_at = 0.0

    async def pool(self) -> asyncpg.Pool:
        if self._pool is None:
            async with self._lock:
                if self._pool is None:
                    self._pool = await self._open()
        return self._pool

    async def _open(self) -> asyncpg.Pool:
        import asyncpg

        conn = await asyncpg.connect(self.dsn)
        try:
            await self._create_schema(conn)
        finally:
            await conn.close()
        low, high = self._pool_size
        return await asyncpg.create_pool(
            self.dsn, min_size=low, max_size=high, init=_register_codec
        )

    async def _create_schema(self, conn: asyncpg.Connection) -> None:
        t = self.table
        # Concurrent instances may race to create the schema; the lock serialises them.
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", t)
            await conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
            await conn.execute(
                f"""CREATE TABLE IF NOT EXISTS {t} (
                    id bigserial PRIMARY KEY,
                    scope text NOT NULL,
                    question text NOT NULL,
                    reply bytea NOT NULL,
                    embedding vector({self.dim}) NOT NULL,
                    expires_at timestamptz NOT NULL)"""
            )
            await conn.execute(
                f"CREATE INDEX IF NOT EXISTS {t}_hnsw ON {t} "
                "USING hnsw (embedding vector_cosine_ops)"
            )
            await conn.execute(f"CREATE INDEX IF NOT EXISTS {t}_scope ON {t} (scope)")
            await conn.execute(f"CREATE INDEX IF NOT EXISTS {t}_expiry ON {t} (expires_at)")

    async def search(self, scope: str, vector: np.ndarray, limit: int) -> list[Candidate]:
        pool = await self.pool()
        rows = await pool.fetch(
            f"SELECT question, reply, 1 - (embedding <=> $2) AS similarity FROM {self.table} "
            "WHERE scope = $1 AND expires_at > now() ORDER BY embedding <=> $2 LIMIT $3",
            scope,
            vector,
            limit,
        )
        return [Candidate(r["question"], bytes(r["reply"]), float(r["similarity"])) for r in rows]

    async def add(
        self, scope: str, vector: np.ndarray, text: str, value: bytes, ttl: float
    ) -> None:
        pool = await self.pool()
        await pool.execute(
            f"INSERT INTO {self.table} (scope, question, reply, embedding, expires_at) "
            "VALUES ($1, $2, $3, $4, now() + make_interval(secs => $5))",
            scope,
            text,
            value,
            vector,
            float(ttl),
        )
        if time.monotonic() - self._cleaned_at > CLEANUP_EVERY:
            self._cleaned_at = time.monotonic()
            await self.delete_expired()

    async def delete_expired(self) -> int:
        pool = await self.pool()
        status = await pool.execute(f"DELETE FROM {self.table} WHERE expires_at <= now()")
        return int(status.split()[-1])

    async def aclose(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None


async def _register_codec(conn: asyncpg.Connection) -> None:
    await conn.set_type_codec(
        "vector", encoder=_encode_vector, decoder=_decode_vector, format="binary"
    )
