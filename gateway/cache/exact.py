"""Exact-cache backends: bytes by key, with a TTL.

`MemoryExactCache` (the default) is an LRU bounded by entries and bytes; `RedisExactCache`
shares entries between instances through the state backend's Redis (one SET with PX per
entry, so a reader sees a whole entry or none); `DisabledCache` does nothing, so the stage
never asks "is there a cache?".

A cache must never fail a request: backend errors are logged and read as a miss.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from typing import Protocol

from gateway.config.cache import ExactCacheConfig
from gateway.state import StateBackend

log = logging.getLogger("gateway.cache")
KEY_PREFIX = "cache:v1:"


class ExactCache(Protocol):
    kind: str

    async def get(self, key: str) -> bytes | None: ...

    async def put(self, key: str, value: bytes, ttl: float) -> None: ...


class DisabledCache:
    kind = "disabled"

    async def get(self, key: str) -> bytes | None:
        return None

    async def put(self, key: str, value: bytes, ttl: float) -> None:
        return None


class MemoryExactCache:
    """LRU in this process: evicts the least recently used past either bound."""

    kind = "memory"

    def __init__(self, max_entries: int, max_bytes: int) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.bytes = 0
        self._entries: OrderedDict[str, tuple[bytes, float]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    async def get(self, key: str) -> bytes | None:
        item = self._entries.get(key)
        if item is None:
            return None
        value, deadline = item
        if deadline <= time.monotonic():
            self._remove(key)
            return None
        self._entries.move_to_end(key)
        return value

    async def put(self, key: str, value: bytes, ttl: float) -> None:
        size = _size(key, value)
        if size > self.max_bytes:
            return
        if key in self._entries:
            self._remove(key)
        self._entries[key] = (compact(value), time.monotonic() + ttl)
        self.bytes += size
        while len(self._entries) > self.max_entries or self.bytes > self.max_bytes:
            self._remove(next(iter(self._entries)))

    def _remove(self, key: str) -> None:
        value, _ = self._entries.pop(key)
        self.bytes -= _size(key, value)


class RedisExactCache:
    """Entries in the shared state backend's Redis, expiring by Redis TTL."""

    kind = "redis"

    def __init__(self, state: StateBackend) -> None:
        self.state = state

    async def get(self, key: str) -> bytes | None:
        try:
            return await self.state.get(KEY_PREFIX + key)
        except Exception as exc:
            log.warning("exact cache read failed: %s", type(exc).__name__)
            return None

    async def put(self, key: str, value: bytes, ttl: float) -> None:
        try:
            await self.state.set(KEY_PREFIX + key, value, ttl=ttl)
        except Exception as exc:
            log.warning("exact cache write failed: %s", type(exc).__name__)


def build_exact_cache(config: ExactCacheConfig, state: StateBackend) -> ExactCache:
    if not config.enabled:
        return DisabledCache()
    if state.kind == "redis":
        return RedisExactCache(state)
    return MemoryExactCache(config.max_entries, config.max_bytes)


def compact(value: bytes) -> bytes:
    """A right-sized copy: orjson's output keeps its larger write buffer allocated (about
    8 KiB for a 1 KiB reply), which would multiply the memory a long-lived entry holds."""
    return bytes(memoryview(value))


def _size(key: str, value: bytes) -> int:
    return len(key) + len(value)
