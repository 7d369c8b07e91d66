"""Redis state: shared by every gateway instance that points at the same server."""

from __future__ import annotations

from redis.exceptions import RedisError

from gateway.state.redis_url import limits_uri, redis_client


class RedisState:
    kind = "redis"

    def __init__(self, url: str, prefix: str = "gw:") -> None:
        self.url = url
        self.prefix = prefix
        self.client = redis_client(  # plain, Sentinel or Cluster, by the URL's scheme
            url, socket_connect_timeout=1.0, socket_timeout=1.0, health_check_interval=10
        )

    async def get(self, key: str) -> bytes | None:
        return await self.client.get(self.prefix + key)

    async def set(self, key: str, value: bytes, ttl: float | None = None) -> None:
        px = int(ttl * 1000) if ttl else None
        await self.client.set(self.prefix + key, value, px=px)

    async def swap(self, key: str, value: bytes, ttl: float | None = None) -> bytes | None:
        px = int(ttl * 1000) if ttl else None
        previous: bytes | None = await self.client.set(self.prefix + key, value, px=px, get=True)
        return previous

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

    async def hset(self, key: str, field: str, value: bytes) -> None:
        await self.client.hset(self.prefix + key, field, value)

    async def hget(self, key: str, field: str) -> bytes | None:
        return await self.client.hget(self.prefix + key, field)

    async def hdel(self, key: str, field: str) -> None:
        await self.client.hdel(self.prefix + key, field)

    async def hvalues(self, key: str) -> dict[str, bytes]:
        raw = await self.client.hgetall(self.prefix + key)
        return {k.decode(): v for k, v in raw.items()}

    async def hincr_many(
        self, updates: dict[str, dict[str, float]], ttl: float | None = None
    ) -> None:
        async with self.client.pipeline(transaction=False) as pipe:
            for key, amounts in updates.items():
                full = self.prefix + key
                for field, amount in amounts.items():
                    pipe.hincrbyfloat(full, field, amount)
                if ttl:
                    pipe.pexpire(full, int(ttl * 1000), nx=True)
            await pipe.execute()

    async def hgetall_many(self, keys: list[str]) -> list[dict[str, float]]:
        async with self.client.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.hgetall(self.prefix + key)
            results = await pipe.execute()
        return [{k.decode(): float(v) for k, v in raw.items()} for raw in results]

    async def ping(self) -> bool:
        try:
            return bool(await self.client.ping())
        except (RedisError, OSError):
            return False

    def limits_uri(self) -> str:
        return limits_uri(self.url)

    async def aclose(self) -> None:
        await self.client.aclose()
