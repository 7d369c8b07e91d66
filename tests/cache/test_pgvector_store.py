"""The pgvector store against a real PostgreSQL: scope isolation, TTL, sharing."""

from __future__ import annotations

import asyncio
import uuid

import numpy as np

from gateway.cache.pgvector import PgVectorStore

DIM = 8


def unit(*values: float) -> np.ndarray:
    row = np.zeros(DIM, dtype=np.float32)
    row[: len(values)] = values
    return row / np.linalg.norm(row)


def table() -> str:
    return f"t_{uuid.uuid4().hex[:12]}"


async def test_search_returns_nearest_of_the_same_scope_only(pg_dsn: str) -> None:
    store = PgVectorStore(pg_dsn, table(), DIM)
    try:
        await store.add("scope-a", unit(1, 0), "capital of Austria?", b"Vienna", 60)
        await store.add("scope-a", unit(0, 1), "unrelated", b"other", 60)
        await store.add("scope-b", unit(1, 0.01), "capital of Austria?", b"Wien, arr", 60)
        found = await store.search("scope-a", unit(1, 0.05), 4)
        assert [c.value for c in found] == [b"Vienna", b"other"]
        assert found[0].similarity > 0.99 and found[0].text == "capital of Austria?"
        assert await store.search("scope-c", unit(1, 0), 4) == []
    finally:
        await store.aclose()


async def test_expired_entries_are_never_found_and_get_deleted(pg_dsn: str) -> None:
    store = PgVectorStore(pg_dsn, table(), DIM)
    try:
        await store.add("s", unit(1, 0), "q", b"old", 0.2)
        assert len(await store.search("s", unit(1, 0), 4)) == 1
        await asyncio.sleep(0.3)
        assert await store.search("s", unit(1, 0), 4) == []
        assert await store.delete_expired() == 1
    finally:
        await store.aclose()


async def test_two_stores_on_one_table_share_entries(pg_dsn: str) -> None:
    name = table()
    first, second = PgVectorStore(pg_dsn, name, DIM), PgVectorStore(pg_dsn, name, DIM)
    try:
        await asyncio.gather(first.pool(), second.pool())  # racing schema creation is safe
        await first.add("s", unit(1, 2), "q", b"shared", 60)
        found = await second.search("s", unit(1, 2), 1)
        assert [c.value for c in found] == [b"shared"]
    finally:
        await first.aclose()
        await second.aclose()


async def test_table_has_an_hnsw_index(pg_dsn: str) -> None:
    name = table()
    store = PgVectorStore(pg_dsn, name, DIM)
    try:
        pool = await store.pool()
        definition = await pool.fetchval(
            "SELECT indexdef FROM pg_indexes WHERE indexname = $1", f"{name}_hnsw"
        )
        assert "hnsw" in definition and "vector_cosine_ops" in definition
    finally:
        await store.aclose()
