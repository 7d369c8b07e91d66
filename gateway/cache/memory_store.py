"""The in-process semantic store (the default): a `VectorIndex` whose entries carry the
question text and the reply bytes.

Exact search (one matrix-vector product per lookup) is fast enough to tens of thousands
of entries per scope. The same question asked again in a scope replaces its entry. Past
`max_per_scope` entries in a scope, or `max_entries` in all, the oldest goes; expired
entries are never returned and their rows are reused.

Every index operation runs in one worker thread of the store's own: a search over a large
scope (100k rows: tens of ms) never blocks the event loop, and the index, which is not
thread-safe, is only ever touched by that thread.
"""

from __future__ import annotations

import asyncio
import concurrent.futures as cf
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from gateway.cache.exact import compact
from gateway.cache.semantic import Candidate
from gateway.cache.vector_index import VectorIndex

if TYPE_CHECKING:
    import numpy as np

T = TypeVar("T")


class MemoryVectorStore:
    kind = "memory"

    def __init__(self, dim: int, max_per_scope: int, max_entries: int | None = None) -> None:
        self.dim = dim
        self.index: VectorIndex[tuple[str, bytes]] = VectorIndex(
            dim, max_entries or max_per_scope, max_per_scope=max_per_scope
        )
        self._worker = cf.ThreadPoolExecutor(1, thread_name_prefix="gateway-vectors")

    async def search(self, scope: str, vector: np.ndarray, limit: int) -> list[Candidate]:
        found = await self._in_worker(self.index.search, scope, vector, limit)
        return [Candidate(text, value, similarity) for similarity, _, (text, value) in found]

    async def add(
        self, scope: str, vector: np.ndarray, text: str, value: bytes, ttl: float
    ) -> None:
        payload = (text, compact(value))
        await self._in_worker(self.index.add, scope, vector, text, payload, time.monotonic() + ttl)

    def __len__(self) -> int:
        return len(self.index)

    async def aclose(self) -> None:
        await self._in_worker(self.index.clear)

    async def _in_worker(self, call: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._worker, call, *args)
