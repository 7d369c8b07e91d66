"""`gateway db upgrade | status`: apply the versions of gateway/db/versions.py in order.

Plain SQL and a `schema_migrations` table, no ORM: the gateway's queries are a handful of
inserts and aggregates, and the schema is read by people (dashboards, finance) as much as by
the gateway. An advisory lock serializes upgrades, so instances (or chart jobs) upgrading at
once apply each version exactly once; a version and its row commit in one transaction.
"""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

from gateway.db.versions import VERSIONS

# pg_advisory_lock key: any constant unique to this schema ("gwdb" in ASCII).
LOCK_ID = 0x67776462
TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    integer PRIMARY KEY,
    name       text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)
"""


@dataclass(frozen=True)
class VersionState:
    version: int
    name: str
    applied_at: str | None  # None: pending


async def upgrade(conn: asyncpg.Connection) -> list[int]:
    """Apply every pending version; return the ones this call applied."""
    applied_now: list[int] = []
    await conn.execute("SELECT pg_advisory_lock($1)", LOCK_ID)
    try:
        await conn.execute(TABLE)
        done = {r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")}
        for version, name, sql in VERSIONS:
            if version in done:
                continue
            async with conn.transaction():
                await conn.execute(sql)
                await conn.execute(
                    "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", version, name
                )
            applied_now.append(version)
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", LOCK_ID)
    return applied_now


async def status(conn: asyncpg.Connection) -> list[VersionState]:
    exists = await conn.fetchval("SELECT to_regclass('schema_migrations') IS NOT NULL")
    applied: dict[int, str] = {}
    if exists:
        rows = await conn.fetch("SELECT version, applied_at FROM schema_migrations")
        applied = {r["version"]: r["applied_at"].isoformat() for r in rows}
    return [VersionState(v, name, applied.get(v)) for v, name, _ in VERSIONS]


def pending(states: list[VersionState]) -> list[int]:
    return [s.version for s in states if s.applied_at is None]
