"""An in-process exact vector index for the semantic cache, partitioned by scope.

Each scope (tenant, model, ... whatever the cache key puts in it) owns one float32
matrix; a search is one matrix-vector product over that scope's rows, so results are
exact and never cross scopes. Rows are L2-normalised, so the dot product is the cosine.

- Growth is amortised: a full matrix grows by half its size (one copy per growth), and
  rows freed by expiry, eviction or replacement are reused before the matrix grows.
- Entries expire at `expires_at` (on `clock`, `time.monotonic` by default): an expired
  row is never returned, and is freed by the search that meets it or by `purge`.
- At most `max_entries` live entries in all scopes together, and at most `max_per_scope`
  in one scope; past either bound the oldest added entry (of all, or of that scope) goes
  first. A matrix never grows past the rows its scope may hold.
- Each entry carries a payload (the semantic store keeps the question text and the reply).

Not thread-safe: call it from one thread (the event loop) or guard it with a lock.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING, Generic, TypeVar

if TYPE_CHECKING:
    import numpy as np

INITIAL_ROWS = 64
GROWTH = 1.5  # capacity factor when a scope's matrix is full
FREED = float("-inf")  # the expiry of a row that holds no entry

P = TypeVar("P")
Result = tuple[float, str, P]  # (similarity, entry_id, payload)


class _Scope(Generic[P]):
    """One scope's rows: vectors, expiries, and who owns each row."""

    def __init__(self, dim: int, max_rows: int) -> None:
        import numpy as np

        rows = min(INITIAL_ROWS, max_rows)
        self.max_rows = max_rows
        self.vectors = np.zeros((rows, dim), dtype=np.float32)
        self.expires = np.full(rows, FREED, dtype=np.float64)
        self.ids: list[str | None] = [None] * rows
        self.payloads: list[P | None] = [None] * rows
        self.rows: dict[str, int] = {}  # entry_id -> row, oldest added first
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
        self.ids[row] = self.payloads[row] = None
        self.expires[row] = FREED
        self.free.append(row)
        return entry_id

    def _grow(self) -> None:
        import numpy as np

        old = len(self.expires)
        new = min(int(old * GROWTH) + 1, self.max_rows)
        vectors = np.zeros((new, self.vectors.shape[1]), dtype=np.float32)
        vectors[:old] = self.vectors
        expires = np.full(new, FREED, dtype=np.float64)
        expires[:old] = self.expires
        self.vectors, self.expires = vectors, expires
        self.ids += [None] * (new - old)
        self.payloads += [None] * (new - old)


class VectorIndex(Generic[P]):
    """Exact cosine search over L2-normalised vectors, per scope, with TTL and size bounds."""

    def __init__(
        self,
        dim: int,
        max_entries: int,
        clock: Callable[[], float] = time.monotonic,
        max_per_scope: int | None = None,
    ) -> None:
        max_per_scope = max_per_scope or max_entries
        if dim <= 0 or max_entries <= 0 or max_per_scope <= 0:
            raise ValueError("dim, max_entries and max_per_scope must be positive")
        self.dim = dim
        self.max_entries = max_entries
        self.max_per_scope = min(max_per_scope, max_entries)
        self.clock = clock
        self._scopes: dict[str, _Scope[P]] = {}
        self._age: OrderedDict[tuple[str, str], None] = OrderedDict()  # oldest first

    def __len__(self) -> int:
        return len(self._age)

    def add(
        self, scope: str, vector: np.ndarray, entry_id: str, payload: P, expires_at: float
    ) -> None:
        """Store (or replace) `entry_id` in `scope`; evicts the oldest entries past a bound."""
        import numpy as np

        vector = np.asarray(vector, dtype=np.float32).reshape(-1)
        if vector.shape != (self.dim,):
            raise ValueError(f"vector has {vector.shape[0]} dimensions, index has {self.dim}")
        index = self._scopes.get(scope)
        if index is None:
            index = self._scopes[scope] = _Scope(self.dim, self.max_per_scope)
        row = index.rows.pop(entry_id, None)
        if row is None:
            if len(index.rows) >= self.max_per_scope:
                self.remove(scope, next(iter(index.rows)))
            row = index.take_row()
        index.rows[entry_id] = row  # (re)inserted last: the scope's newest
        index.vectors[row] = vector
        index.expires[row] = expires_at
        index.ids[row], index.payloads[row] = entry_id, payload
        self._scopes.setdefault(scope, index)  # the per-scope eviction may have dropped it
        self._age[(scope, entry_id)] = None
        self._age.move_to_end((scope, entry_id))
        while len(self._age) > self.max_entries:
            self.remove(*next(iter(self._age)))

    def clear(self) -> None:
        """Drop every entry and give the memory back."""
        self._scopes.clear()
        self._age.clear()

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

    def search(self, scope: str, vector: np.ndarray, k: int = 1) -> list[Result[P]]:
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
            (float(scores[row]), str(index.ids[row]), index.payloads[row])  # type: ignore[misc]
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

    def _release_expired(self, scope: str, index: _Scope[P], rows: np.ndarray) -> None:
        for row in rows.tolist():
            entry_id = index.ids[row]
            if entry_id is not None:
                self.remove(scope, entry_id)


def _top_k(scores: np.ndarray, k: int) -> list[int]:
    """Row numbers of the k highest scores, highest first (argpartition, then a small sort)."""
    import numpy as np

    if k >= len(scores):
        return list(np.argsort(-scores, kind="stable").tolist())
    part = np.argpartition(-scores, k - 1)[:k]
    return list(part[np.argsort(-scores[part], kind="stable")].tolist())
