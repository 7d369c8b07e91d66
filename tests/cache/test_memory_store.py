"""The in-process semantic store: nearest first, one scope only, TTL, ring bound."""

from __future__ import annotations

import asyncio

import numpy as np

from gateway.cache.memory_store import MemoryVectorStore

DIM = 4


def unit(*values: float) -> np.ndarray:
    row = np.zeros(DIM, dtype=np.float32)
    row[: len(values)] = values
    return row / np.linalg.norm(row)


async def test_nearest_first_within_the_scope_only() -> None:
    store = MemoryVectorStore(DIM, max_per_scope=100)
    await store.add("a", unit(0, 1), "far", b"far", 60)
    await store.add("a", unit(1, 0), "near", b"near", 60)
    await store.add("b", unit(1, 0), "other scope", b"b", 60)
    found = await store.search("a", unit(1, 0.1), 4)
    assert [c.value for c in found] == [b"near", b"far"]
    assert found[0].similarity > 0.99
    assert await store.search("c", unit(1, 0), 4) == []


async def test_expired_entries_are_not_found() -> None:
    store = MemoryVectorStore(DIM, max_per_scope=100)
    await store.add("a", unit(1, 0), "q", b"v", 0.05)
    await asyncio.sleep(0.08)
    assert await store.search("a", unit(1, 0), 4) == []


async def test_scope_keeps_at_most_max_entries_dropping_the_oldest() -> None:
    store = MemoryVectorStore(DIM, max_per_scope=100)
    for i in range(250):
        await store.add("a", unit(1, i / 250), f"q{i}", str(i).encode(), 60)
    assert len(store) == 100
    values = {c.value for c in await store.search("a", unit(1, 0), 100)}
    assert values == {str(i).encode() for i in range(150, 250)}


async def test_limit_returns_the_top_k() -> None:
    store = MemoryVectorStore(DIM, max_per_scope=1000)
    for i in range(200):
        await store.add("a", unit(1, i / 10), str(i), str(i).encode(), 60)
    found = await store.search("a", unit(1, 0), 3)
    assert [c.value for c in found] == [b"0", b"1", b"2"]


async def test_same_question_in_a_scope_replaces_its_entry() -> None:
    store = MemoryVectorStore(DIM, max_per_scope=100)
    await store.add("a", unit(1, 0), "q", b"old", 60)
    await store.add("a", unit(1, 0), "q", b"new", 60)
    assert len(store) == 1
    assert [c.value for c in await store.search("a", unit(1, 0), 4)] == [b"new"]


async def test_bound_over_all_scopes_drops_the_oldest_anywhere() -> None:
    store = MemoryVectorStore(DIM, max_per_scope=100, max_entries=3)
    for i in range(5):
        await store.add(f"scope{i}", unit(1, 0), f"q{i}", str(i).encode(), 60)
    assert len(store) == 3
    assert await store.search("scope0", unit(1, 0), 4) == []
    assert [c.value for c in await store.search("scope4", unit(1, 0), 4)] == [b"4"]


async def test_close_drops_the_entries() -> None:
    store = MemoryVectorStore(DIM, max_per_scope=100)
    await store.add("a", unit(1, 0), "q", b"v", 60)
    await store.aclose()
    assert len(store) == 0


async def test_index_is_only_touched_by_the_store_worker_thread() -> None:
    import threading

    store = MemoryVectorStore(DIM, max_per_scope=100)
    seen: set[int] = set()
    search, add = store.index.search, store.index.add

    def record(call):  # type: ignore[no-untyped-def]
        def wrapped(*args):  # type: ignore[no-untyped-def]
            seen.add(threading.get_ident())
            return call(*args)

        return wrapped

    store.index.search, store.index.add = record(search), record(add)  # type: ignore[method-assign]
    await store.add("a", unit(1, 0), "q", b"v", 60)
    assert [c.value for c in await store.search("a", unit(1, 0), 1)] == [b"v"]
    assert len(seen) == 1 and threading.get_ident() not in seen  # one thread, not the loop's
