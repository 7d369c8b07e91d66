"""The in-process semantic store (the default): one exact vector index per scope.

Exact search (one matrix-vector product per lookup) is fast enough to tens of thousands
of entries per scope. A scope holds at most `max_per_scope` entries; past that the oldest
is overwritten (a ring). Entries expire by TTL, checked on read.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from gateway.cache.exact import compact
from gateway.cache.semantic import Candidate

if TYPE_CHECKING:
    import numpy as np

INITIAL_ROWS = 64


class _ScopeIndex:
    def __init__(self, dim: int, max_rows: int) -> None:
        import numpy as np

        self.max_rows = max_rows
        rows = min(INITIAL_ROWS, max_rows)
        self.vectors = np.zeros((rows, dim), dtype=np.float32)
        self.deadlines = np.zeros(rows, dtype=np.float64)
        self.payloads: list[tuple[str, bytes]] = []
        self.oldest = 0  # the row to overwrite next once the ring is full

    def add(self, vector: np.ndarray, text: str, value: bytes, deadline: float) -> None:
        size = len(self.payloads)
        if size < self.max_rows:
            if size == len(self.vectors):
                self._grow()
            row = size
            self.payloads.append((text, value))
        else:
            row, self.oldest = self.oldest, (self.oldest + 1) % self.max_rows
            self.payloads[row] = (text, value)
        self.vectors[row] = vector
        self.deadlines[row] = deadline

    def _grow(self) -> None:
        import numpy as np

        rows = min(len(self.vectors) * 2, self.max_rows)
        vectors = np.zeros((rows, self.vectors.shape[1]), dtype=np.float32)
        vectors[: len(self.vectors)] = self.vectors
        deadlines = np.zeros(rows, dtype=np.float64)
        deadlines[: len(self.deadlines)] = self.deadlines
        self.vectors, self.deadlines = vectors, deadlines

    def search(self, vector: np.ndarray, limit: int, now: float) -> list[Candidate]:
        import numpy as np

        size = len(self.payloads)
        similarities = self.vectors[:size] @ np.asarray(vector, dtype=np.float32)
        similarities[self.deadlines[:size] <= now] = -np.inf
        top = np.argpartition(-similarities, limit)[:limit] if size > limit else np.arange(size)
        top = top[np.argsort(-similarities[top])]
        return [
            Candidate(*self.payloads[row], float(similarities[row]))
            for row in top
            if np.isfinite(similarities[row])
        ]


class MemoryVectorStore:
    kind = "memory"

    def __init__(self, dim: int, max_per_scope: int) -> None:
        self.dim = dim
        self.max_per_scope = max_per_scope
        self._scopes: dict[str, _ScopeIndex] = {}

    async def search(self, scope: str, vector: np.ndarray, limit: int) -> list[Candidate]:
        index = self._scopes.get(scope)
        return [] if index is None else index.search(vector, limit, time.monotonic())

    async def add(
        self, scope: str, vector: np.ndarray, text: str, value: bytes, ttl: float
    ) -> None:
        index = self._scopes.get(scope)
        if index is None:
            index = self._scopes[scope] = _ScopeIndex(self.dim, self.max_per_scope)
        index.add(vector, text, compact(value), time.monotonic() + ttl)

    def __len__(self) -> int:
        return sum(len(index.payloads) for index in self._scopes.values())

    async def aclose(self) -> None:
        self._scopes.clear()
