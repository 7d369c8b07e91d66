"""Fixtures for the system-of-record tests: a database of its own on the shared
PostgreSQL (created per test module, dropped after), and ways to cut it off for a while."""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import asyncpg
import pytest

ADMIN_URL = os.environ.get("POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def run(coro: Any) -> Any:
    return asyncio.run(coro)


async def admin_execute(sql: str) -> None:
    conn = await asyncpg.connect(ADMIN_URL, timeout=5)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def database_for(name: str) -> str:
    return ADMIN_URL.rsplit("/", 1)[0] + "/" + name


@contextmanager
def fresh_database(migrate: bool = True) -> Iterator[str]:
    """A new, uniquely named database (schema applied unless `migrate` is False)."""
    name = f"gwtest_{uuid.uuid4().hex[:12]}"
    try:
        run(admin_execute(f'CREATE DATABASE "{name}"'))
    except OSError as exc:
        if os.environ.get("GATEWAY_REQUIRE_REDIS") or os.environ.get("GATEWAY_REQUIRE_POSTGRES"):
            raise
        pytest.skip(f"PostgreSQL is not reachable: {exc}")
    url = database_for(name)
    try:
        if migrate:
            run(migrate_database(url))
        yield url
    finally:
        run(admin_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def migrate_database(url: str) -> None:
    from gateway.db.migrations import upgrade

    conn = await asyncpg.connect(url)
    try:
        await upgrade(conn)
    finally:
        await conn.close()


@pytest.fixture(scope="module")
def database_url() -> Iterator[str]:
    with fresh_database() as url:
        yield url


def fetch(url: str, sql: str, *args: Any) -> list[asyncpg.Record]:
    async def go() -> list[asyncpg.Record]:
        conn = await asyncpg.connect(url)
        try:
            return list(await conn.fetch(sql, *args))
        finally:
            await conn.close()

    return run(go())


def fetchval(url: str, sql: str, *args: Any) -> Any:
    return fetch(url, sql, *args)[0][0]


def clear_ledger(url: str) -> None:
    fetch(url, "TRUNCATE usage_ledger")


def wait_until(check: Callable[[], bool], timeout: float = 30.0) -> bool:
    """Poll `check` until it holds (a deadline against hangs, not a timing assertion)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return check()


@contextmanager
def database_cut_off(url: str) -> Iterator[None]:
    """No connection to the database (open ones are killed) until the block ends."""
    name = url.rsplit("/", 1)[1]
    run(admin_execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false'))
    run(
        admin_execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            f"WHERE datname = '{name}' AND pid <> pg_backend_pid()"
        )
    )
    try:
        yield
    finally:
        run(admin_execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true'))
