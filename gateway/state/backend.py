"""The state backend protocol and its factory."""

from __future__ import annotations

from typing import Protocol

from gateway.config.schema import StateConfig


class StateBackend(Protocol):
    """Key/value state every instance must agree on (counters, cache, keys)."""

    kind: str

    async def get(self, key: str) -> bytes | None: ...

    async def set(self, key: str, value: bytes, ttl: float | None = None) -> None: ...

    async def swap(self, key: str, value: bytes, ttl: float | None = None) -> bytes | None:
        """Set `key` and return its previous value, atomically (one writer wins each step)."""
        ...

    async def delete(self, key: str) -> None: ...

    async def incr(self, key: str, amount: float, ttl: float | None = None) -> float:
        """Add `amount` to a numeric counter (created at 0) and return the new value."""
        ...

    async def hincr(self, key: str, field: str, amount: float) -> float: ...

    async def hgetall(self, key: str) -> dict[str, float]: ...

    # Access control (keys, budgets): byte-valued hashes and pipelined counter hashes.
    async def hset(self, key: str, field: str, value: bytes) -> None: ...

    async def hget(self, key: str, field: str) -> bytes | None: ...

    async def hdel(self, key: str, field: str) -> None: ...

    async def hvalues(self, key: str) -> dict[str, bytes]:
        """Every field of a byte-valued hash."""
        ...

    async def hincr_many(
        self, updates: dict[str, dict[str, float]], ttl: float | None = None
    ) -> None:
        """Add to fields of several counter hashes at once (one round trip); `ttl` on new ones."""
        ...

    async def hgetall_many(self, keys: list[str]) -> list[dict[str, float]]:
        """Several counter hashes read at once (one round trip)."""
        ...

    async def ping(self) -> bool:
        """True when the backend answers now."""
        ...

    def limits_uri(self) -> str:
        """The storage URI for the `limits` library that matches this backend."""
        ...

    async def aclose(self) -> None: ...


def build_state(config: StateConfig) -> StateBackend:
    if config.backend == "redis":
        from gateway.state.redis import RedisState

        return RedisState(config.redis_url, prefix=config.key_prefix)
    from gateway.state.memory import MemoryState

    return MemoryState()
