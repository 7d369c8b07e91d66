"""Unique Redis key prefixes for tests, and their cleanup (never FLUSHDB the shared Redis)."""

from __future__ import annotations

import uuid

import redis


def unique_prefix() -> str:
    return f"gwtest:{uuid.uuid4().hex}:"


def drop_prefix(redis_url: str, prefix: str) -> None:
    client = redis.Redis.from_url(redis_url)
    try:
        keys = list(client.scan_iter(prefix + "*"))
        if keys:
            client.delete(*keys)
    finally:
        client.close()
