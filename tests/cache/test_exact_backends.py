"""Exact-cache backends: LRU bounds, TTL expiry, the Redis backend, the disabled cache."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from gateway.cache.exact import (
    DisabledCache,
    MemoryExactCache,
    RedisExactCache,
    build_exact_cache,
)
from gateway.config.cache import ExactCacheConfig
from gateway.state.memory import MemoryState
from gateway.state.redis import RedisState


async def test_lru_evicts_least_recently_used_past_max_entries() -> None:
    cache = MemoryExactCache(max_entries=2, max_bytes=10_000)
    await cache.put("a", b"1", 60)
    await cache.put("b", b"2", 60)
    assert await cache.get("a") == b"1"  # a is now the most recently used
    await cache.put("c", b"3", 60)
    assert await cache.get("b") is None
    assert await cache.get("a") == b"1" and await cache.get("c") == b"3"
    assert len(cache) == 2


async def test_lru_stays_within_max_bytes() -> None:
    cache = MemoryExactCache(max_entries=1000, max_bytes=1000)
    for i in range(20):
        await cache.put(f"k{i}", b"x" * 199, 60)  # 201 bytes with the key
    assert cache.bytes <= 1000 and len(cache) == 4
    assert await cache.get("k19") is not None and await cache.get("k0") is None


async def test_entry_larger_than_the_whole_cache_is_not_stored() -> None:
    cache = MemoryExactCache(max_entries=10, max_bytes=100)
    await cache.put("big", b"x" * 200, 60)
    assert len(cache) == 0 and cache.bytes == 0


async def test_replacing_a_key_keeps_the_byte_count_right() -> None:
    cache = MemoryExactCache(max_entries=10, max_bytes=1000)
    await cache.put("k", b"x" * 100, 60)
    await cache.put("k", b"y" * 50, 60)
    assert cache.bytes == 51 and await cache.get("k") == b"y" * 50


async def test_memory_entry_expires_after_ttl() -> None:
    cache = MemoryExactCache(max_entries=10, max_bytes=1000)
    await cache.put("k", b"v", 0.05)
    assert await cache.get("k") == b"v"
    await asyncio.sleep(0.08)
    assert await cache.get("k") is None and cache.bytes == 0


async def test_redis_entry_is_shared_and_expires_after_ttl(redis_url: str) -> None:
    prefix = f"test-cache-{uuid.uuid4().hex}:"
    writer, reader = RedisState(redis_url, prefix=prefix), RedisState(redis_url, prefix=prefix)
    try:
        await RedisExactCache(writer).put("k", b"whole entry", 0.3)
        assert await RedisExactCache(reader).get("k") == b"whole entry"
        ttl_ms = await reader.client.pttl(prefix + "cache:v1:k")
        assert 0 < ttl_ms <= 300
        await asyncio.sleep(0.4)
        assert await RedisExactCache(reader).get("k") is None
    finally:
        await writer.aclose()
        await reader.aclose()


async def test_unreachable_redis_reads_as_miss_and_never_raises() -> None:
    state = RedisState("redis://127.0.0.1:1/0", prefix="x:")
    cache = RedisExactCache(state)
    try:
        await cache.put("k", b"v", 60)
        assert await cache.get("k") is None
    finally:
        await state.aclose()


@pytest.mark.parametrize(
    ("enabled", "state", "kind"),
    [(True, "memory", "memory"), (True, "redis", "redis"), (False, "memory", "disabled")],
)
async def test_backend_follows_state_backend(enabled: bool, state: str, kind: str) -> None:
    backend = MemoryState() if state == "memory" else RedisState("redis://127.0.0.1:6379/0")
    try:
        cache = build_exact_cache(ExactCacheConfig(enabled=enabled), backend)
        assert cache.kind == kind
    finally:
        await backend.aclose()


async def test_disabled_cache_stores_nothing() -> None:
    cache = DisabledCache()
    await cache.put("k", b"v", 60)
    assert await cache.get("k") is None
