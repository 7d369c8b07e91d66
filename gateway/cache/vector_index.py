"""An in-process exact vector index for the semantic cache, partitioned by scope.

Each scope (tenant, model, ... whatever the cache key puts in it) owns one float32
matrix; a search is one matrix-vector product over that scope's rows, so results are
exact and never cross scopes. Rows are L2-normalised, so the dot product is the cosine.

- Growth is amortised: a full matrix grows by half its size (one copy per growth), and
  rows freed by expiry, eviction or replacement are reused before the matrix grows.
- Entries expire at `expires_at` (on `clock`, `time.monotonic` by default): an expired
  row is never returned, and is freed by the search that meets it or by `purge`.
- At most `max_entries` live entries in all scopes together; past that the oldest added
  entry goes first.

Not thread-safe: call it from one thread (the event loop) or guard it with a lock.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

INITIAL_ROWS = 64
GROWTH = 1.5  # capacity factor when a scope's matrix is full
FREED = float("-inf")  # the expiry of a row that holds no entry

Result = tuple[float, str, str]  # (similarity, entry_id, text)


class _Scope:
    """One scope's rows: vectors, expiries, and who owns each row."""

    def __init__(self, dim: int) -> None:
        import numpy as np

        self.vectors = np.zeros((INITIAL_ROWS, dim), dtype=np.float32)
        self.expires = np.full(INITIAL_ROWS, FREED, dtype=np.float64)
        self.ids: list[str | None] = [None] * INITIAL_ROWS
        self.texts: list[str | None] = [None] * INITIAL_ROWS
        self.rows: dict[str, int] = {}  # entry_id -> row
        self.free: list[int] = []  # freed rows below `used`, reused first
        self.used = 0  # rows ever handed out (the searched prefix)

    def take_row(self) -> int:
        if self.free:
            return self.free.pop()
        if self.used == len(self.expires):
            self._grow()
        self.used += 1
        return self.used - 1

    def release(self, row: int) -> str | None:
        entry_id = self.ids[row]
        if entry_id is not None:
            del self.rows[entry_id]
        self.ids[row] = self.texts[row] = None
        self.expires[row] = FREED
        self.free.append(row)
        return entry_id

    def _grow(self) -> None:
        import numpy as np

        old = len(self.expires)
        new = int(old * GROWTH) + 1
        vectors = np.zeros((new, self.vectors.shape[1]), dtype=np.float32)
        vectors[:old] = self.vectors
        expires = np.full(new, FREED, dtype=np.float64)
        expires[:old] = self.expires
        self.vectors, self.expires = vectors, expires
        self.ids += [None] * (new - old)
        self.texts += [None] * (new - old)


class VectorIndex:
    """Exact cosine search over L2-normalised vectors, per scope, with TTL and a size bound."""

    def __init__(
        self, dim: int, max_entries: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if dim <= 0 or max_entries <= 0:
            raise ValueError("dim and max_entries must be positive")
        self.dim = dim
        self.max_entries = max_entries
        self.clock = clock
        self._scopes: dict[str, _Scope] = {}
        self._age: OrderedDict[tuple[str, str], None] = OrderedDict()  # oldest first

    def __len__(self) -> int:
        return len(self._age)

    def add(
        self, scope: str, vector: np.ndarray, entry_id: str, text: str, expires_at: float
    ) -> None:
        """Store (or replace) `entry_id` in `scope`; evicts the oldest entries past the bound."""
        import numpy as np

        vector = np.asarray(vector, dtype=np.float32).reshape(-1)
        if vector.shape != (self.dim,):
            raise ValueError(f"vector has {vector.shape[0]} dimensions, index has {self.dim}")
        index = self._scopes.get(scope)
        if index is None:
            index = self._scopes[scope] = _Scope(self.dim)
        row = index.rows.get(entry_id)
        if row is None:
            row = index.take_row()
            index.rows[entry_id] = row
        index.vectors[row] = vector
        index.expires[row] = expires_at
        index.ids[row], index.texts[row] = entry_id, text
        self._age[(scope, entry_id)] = None
        self._age.move_to_end((scope, entry_id))
        while len(self._age) > self.max_entries:
            self.remove(*next(iter(self._age)))

    def remove(self, scope: str, entry_id: str) -> bool:
        """Drop one entry; False if it was not there."""
        index = self._scopes.get(scope)
        row = index.rows.get(entry_id) if index else None
        if index is None or row is None:
            return False
        index.release(row)
        del self._age[(scope, entry_id)]
        if not index.rows:
            del self._scopes[scope]  # an empty scope gives its memory back
        return True

    def search(self, scope: str, vector: np.ndarray, k: int = 1) -> list[Result]:
        """The `k` live entries of `scope` most similar to `vector`, most similar first."""
        import numpy as np

        index = self._scopes.get(scope)
        if index is None or k <= 0:
            return []
        used = index.used
        expires = index.expires[:used]
        dead = expires <= self.clock()
        self._release_expired(scope, index, np.flatnonzero(dead & (expires != FREED)))
        if scope not in self._scopes:
            return []
        scores = index.vectors[:used] @ np.asarray(vector, dtype=np.float32).reshape(-1)
        scores[dead] = -np.inf
        top = _top_k(scores, k)
        return [
            (float(scores[row]), str(index.ids[row]), str(index.texts[row]))
            for row in top
            if scores[row] != -np.inf
        ]

    def purge(self) -> int:
        """Free every expired entry now; returns how many (searches also free what they meet)."""
        import numpy as np

        now, count = self.clock(), 0
        for scope, index in list(self._scopes.items()):
            expires = index.expires[: index.used]
            rows = np.flatnonzero((expires <= now) & (expires != FREED))
            count += len(rows)
            self._release_expired(scope, index, rows)
        return count

    def _release_expired(self, scope: str, index: _Scope, rows: np.ndarray) -> None:
        for row in rows.tolist():
            entry_id = index.ids[row]
            if entry_id is not None:
                self.remove(scope, entry_id)


def _top_k(scores: np.ndarray, k: int) -> list[int]:
    """Row numbers of the k highest scores, highest first (argpartition, then a small sort)."""
    import numpy as np

    if k >= len(scores):
        return np.argsort(-scores, kind="stable").tolist()
    part = np.argpartition(-scores, k - 1)[:k]
    return part[np.argsort(-scores[part], kind="stable")].tolist()
