"""Stored Responses-API state (`previous_response_id`), scoped to the key that created it.

The interface the Responses ingress plugs into: put / get / delete by (id, key id), with
an optional time to live. Another key asking for the same id finds nothing, exactly as if
the id did not exist (ids are never confirmed to other keys).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import orjson

from gateway.db.pool import Database


class ResponseStore(Protocol):
    async def put(self, id: str, key_id: str, data: dict[str, Any], ttl: float | None) -> None: ...

    async def get(self, id: str, key_id: str) -> dict[str, Any] | None: ...

    async def delete(self, id: str, key_id: str) -> bool: ...


class PostgresResponseStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def put(self, id: str, key_id: str, data: dict[str, Any], ttl: float | None) -> None:
        expires = None if ttl is None else datetime.now(UTC) + timedelta(seconds=ttl)
        pool = await self.db.pool()
        await pool.execute(
            "INSERT INTO stored_responses (key_id, id, data, expires_at) "
            "VALUES ($1, $2, $3::jsonb, $4) ON CONFLICT (key_id, id) "
            "DO UPDATE SET data = EXCLUDED.data, expires_at = EXCLUDED.expires_at",
            key_id,
            id,
            orjson.dumps(data).decode(),
            expires,
        )

    async def get(self, id: str, key_id: str) -> dict[str, Any] | None:
        pool = await self.db.pool()
        raw = await pool.fetchval(
            "SELECT data::text FROM stored_responses WHERE key_id = $1 AND id = $2 "
            "AND (expires_at IS NULL OR expires_at > now())",
            key_id,
            id,
        )
        return None if raw is None else orjson.loads(raw)

    async def delete(self, id: str, key_id: str) -> bool:
        pool = await self.db.pool()
        done = await pool.execute(
            "DELETE FROM stored_responses WHERE key_id = $1 AND id = $2", key_id, id
        )
        return bool(done != "DELETE 0")

    async def purge_expired(self) -> int:
        pool = await self.db.pool()
        done = await pool.execute("DELETE FROM stored_responses WHERE expires_at <= now()")
        return int(done.split()[-1])
