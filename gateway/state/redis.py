"""Redis state: shared by every gateway instance that points at the same server."""

from __future__ import annotations

import redis.asyncio as aioredis
from redis.exceptions import RedisError


class RedisState:
    kind = "redis"

    def __init__(self, url: str, prefix: str = "gw:") -> None:
        self.url = url
        self.prefix = prefix
        self.client = aioredis.Redis.from_url(
            url, socket_connect_timeout=1.0, socket_timeout=1.0, health_check_interval=10
        )

    async def get(self, key: str) -> bytes | None:
        return await self.client.get(self.prefix + key)

    async def set(self, key: str, value: bytes, ttl: float | None = None) -> None:
        px = int(ttl * 1000) if ttl else None
        await self.client.set(self.prefix + key, value, px=px)

    async def delete(self, key: str) -> None:
        await self.client.delete(self.prefix + key)

    async def incr(self, key: str, amount: float, ttl: float | None = None) -> float:
        full = self.prefix + key
        async with self.client.pipeline(transaction=False) as pipe:
            pipe.incrbyfloat(full, amount)
            if ttl:
                pipe.pexpire(full, int(ttl * 1000), nx=True)
            results = await pipe.execute()
        return float(results[0])

    async def hincr(self, key: str, field: str, amount: float) -> float:
        return float(await self.client.hincrbyfloat(self.prefix + key, field, amount))

    async def hgetall(self, key: str) -> dict[str, float]:
        raw = await self.client.hgetall(self.prefix + key)
        return {k.decode(): float(v) for k, v in raw.items()}

    async def ping(self) -> bool:
        try:
            return bool(await self.client.ping())
        except (RedisError, OSError):
            return False

    def limits_uri(self) -> str:
        return "async+" + self.url

    async def aclose(self) -> None:
        await self.client.aclose()
