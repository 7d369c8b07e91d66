"""The connection pool: opened lazily, so the gateway starts (and serves) while PostgreSQL
is down; every user of the database copes with it being unreachable for a while."""

from __future__ import annotations

import asyncio
import logging

import asyncpg

log = logging.getLogger("gateway")
# What an unreachable, restarting or refusing database raises.
DB_ERRORS = (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError)
CONNECT_TIMEOUT = 5.0  # seconds to open a connection
COMMAND_TIMEOUT = 15.0  # seconds for one statement (a ledger batch, a usage report)


class Database:
    """The pool of one `state.database` URL (the URL is a secret: never logged)."""

    def __init__(self, url: str, *, max_size: int = 4) -> None:
        self._url = url
        self._max_size = max_size
        self._pool: asyncpg.Pool | None = None
        self._lock = asyncio.Lock()

    async def pool(self) -> asyncpg.Pool:
        if self._pool is None:
            async with self._lock:
                if self._pool is None:
                    self._pool = await asyncpg.create_pool(
                        self._url,
                        min_size=0,  # no connection until one is needed
                        max_size=self._max_size,
                        timeout=CONNECT_TIMEOUT,
                        command_timeout=COMMAND_TIMEOUT,
                    )
        return self._pool

    async def ping(self, timeout: float = 1.0) -> bool:
        """True when the database answers within `timeout` (readiness must stay fast)."""

        async def select_one() -> bool:
            pool = await self.pool()
            return bool(await pool.fetchval("SELECT 1") == 1)

        try:
            return await asyncio.wait_for(select_one(), timeout)
        except DB_ERRORS:
            return False

    async def aclose(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            try:
                await asyncio.wait_for(pool.close(), timeout=5)
            except DB_ERRORS:
                pool.terminate()


async def connect(url: str) -> asyncpg.Connection:
    """One connection for a command-line tool."""
    return await asyncpg.connect(url, timeout=CONNECT_TIMEOUT, command_timeout=COMMAND_TIMEOUT)
