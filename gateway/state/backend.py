"""The state backend protocol and its factory."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from gateway.config.schema import StateConfig

if TYPE_CHECKING:
    from gateway.observability.metrics import Metrics
    from gateway.state.health import RedisHealth


# Read-only, not frozen: built per request, and frozen ones cost 3x to build.
@dataclass(slots=True)
class Hold:
    """Room to reserve in one counter hash: per field, an amount and an optional limit."""

    key: str
    amounts: dict[str, float]
    limits: dict[str, float] = field(default_factory=dict)  # a field left out: no limit
    terms: str = ""  # `lease_terms()`, when the caller has it already
    requires: str = ""  # a field the hash must have (its totals are known complete)

    def lease_terms(self) -> str:
        """The counter and the limits it is held under: a lease serves only holds of the
        same terms (gateway/state/leases.py). A string: it is a dict key on every request,
        and a string's hash is computed once (a tuple's on every lookup)."""
        if self.terms:
            return self.terms
        limits = ",".join(f"{name}={limit!r}" for name, limit in self.limits.items())
        return f"{self.key}|{limits}"


class MissingMark(Exception):
    """A hold's hash lacks the field it requires (Redis lost the hash): nothing reserved."""

    def __init__(self, index: int) -> None:
        super().__init__(f"hold {index} lacks its required field")
        self.index = index


class StateBackend(Protocol):
    """Key/value state every instance must agree on (counters, cache, keys)."""

    kind: str

    @property
    def health(self) -> RedisHealth | None:
        """Redis: the one health view every Redis user of the process shares."""
        ...

    async def get(self, key: str) -> bytes | None: ...

    async def set(self, key: str, value: bytes, ttl: float | None = None) -> None: ...

    async def set_many(self, items: list[tuple[str, bytes, float | None]]) -> None:
        """Several `set`s (key, value, ttl) in one round trip."""
        ...

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

    async def debit(self, updates: dict[str, dict[str, float]], ttl: float | None = None) -> None:
        """hincr_many that loses nothing: what cannot be written now is queued and retried
        in the background (gateway/state/retry_queue.py), flushed on aclose."""
        ...

    async def debit_each(
        self, keys: tuple[str, ...], amounts: dict[str, float], ttl: float | None = None
    ) -> None:
        """`debit` of the same `amounts` on each of `keys` (a request's spend counters)."""
        ...

    async def write_pending(self) -> None:
        """Write the debits this process is holding for its next batch now, so that a read
        of spend on this instance sees them (other instances' arrive within their batch)."""
        ...

    async def reserve(self, holds: list[Hold], ttl: float | None = None) -> int | None:
        """Add each hold's amounts to `reserved_<field>` when every field of every hold has
        room (`<field>` + `reserved_<field>` + amount <= limit), atomically; all or none.
        None when reserved, else the index of the first hold without room."""
        ...

    def take_leased(
        self, terms: tuple[str, ...], amounts: Mapping[str, float], ttl: float | None = None
    ) -> bool:
        """`reserve` of the same `amounts` on each hold of `terms` (`Hold.lease_terms`)
        from this process's budget leases, when every one holds them: True when taken
        (nothing to ask Redis), else False with nothing taken."""
        ...

    async def ping(self) -> bool:
        """True when the backend answers now."""
        ...

    def limits_uri(self) -> str:
        """The storage URI for the `limits` library that matches this backend."""
        ...

    async def aclose(self) -> None: ...


def build_state(config: StateConfig, metrics: Metrics | None = None) -> StateBackend:
    if config.backend == "redis":
        from gateway.state.redis import RedisState

        return RedisState(
            config.redis_url,
            prefix=config.key_prefix,
            metrics=metrics,
            pool_size=config.redis_pool_size,
            pool_timeout=config.redis_pool_timeout_seconds,
            lease_fraction=config.lease_fraction,
            lease_seconds=config.lease_seconds,
        )
    from gateway.state.memory import MemoryState

    return MemoryState()
