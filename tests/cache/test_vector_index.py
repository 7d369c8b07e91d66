"""The in-process vector index: exact nearest first, scopes apart, TTL, bounded size."""

from __future__ import annotations

import numpy as np
import pytest

from gateway.cache.vector_index import INITIAL_ROWS, VectorIndex

DIM = 8
FOREVER = float("inf")


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def unit(*values: float) -> np.ndarray:
    vector = np.zeros(DIM, dtype=np.float32)
    vector[: len(values)] = values
    return vector / np.linalg.norm(vector)


def make(max_entries: int = 100) -> tuple[VectorIndex, Clock]:
    clock = Clock()
    return VectorIndex(DIM, max_entries, clock=clock), clock


def test_search_returns_nearest_first_with_cosine() -> None:
    index, _ = make()
    index.add("s", unit(1, 0), "x", "text x", FOREVER)
    index.add("s", unit(1, 1), "xy", "text xy", FOREVER)
    index.add("s", unit(0, 1), "y", "text y", FOREVER)
    results = index.search("s", unit(1, 0.1), k=2)
    assert [entry_id for _, entry_id, _ in results] == ["x", "xy"]
    assert results[0][0] == pytest.approx(float(unit(1, 0) @ unit(1, 0.1)))
    assert results[0][2] == "text x"


@pytest.mark.parametrize(("k", "found"), [(0, 0), (1, 1), (2, 2), (10, 2)])
def test_search_returns_at_most_k_live_entries(k: int, found: int) -> None:
    index, _ = make()
    index.add("s", unit(1), "a", "a", FOREVER)
    index.add("s", unit(0, 1), "b", "b", FOREVER)
    assert len(index.search("s", unit(1), k=k)) == found


def test_scopes_never_see_each_other() -> None:
    index, _ = make()
    index.add("tenant-a", unit(1), "a", "a", FOREVER)
    assert index.search("tenant-b", unit(1)) == []
    assert [r[1] for r in index.search("tenant-a", unit(1))] == ["a"]


def test_expired_entry_is_not_returned_and_is_freed() -> None:
    index, clock = make()
    index.add("s", unit(1), "old", "old", expires_at=10)
    index.add("s", unit(0, 1), "new", "new", expires_at=100)
    clock.now = 10
    assert [r[1] for r in index.search("s", unit(1), k=5)] == ["new"]
    assert len(index) == 1


def test_purge_frees_every_expired_entry() -> None:
    index, clock = make()
    for i in range(5):
        index.add(f"scope{i % 2}", unit(1, i), f"e{i}", "t", expires_at=i)
    clock.now = 2.5
    assert index.purge() == 3
    assert len(index) == 2


def test_oldest_entry_is_evicted_past_the_bound_across_scopes() -> None:
    index, _ = make(max_entries=2)
    index.add("a", unit(1), "first", "t", FOREVER)
    index.add("b", unit(1), "second", "t", FOREVER)
    index.add("a", unit(1), "third", "t", FOREVER)
    assert len(index) == 2
    assert [r[1] for r in index.search("a", unit(1), k=5)] == ["third"]
    assert [r[1] for r in index.search("b", unit(1), k=5)] == ["second"]


def test_adding_an_existing_id_replaces_it_and_refreshes_its_age() -> None:
    index, _ = make(max_entries=2)
    index.add("s", unit(1), "a", "old text", FOREVER)
    index.add("s", unit(0, 1), "b", "b", FOREVER)
    index.add("s", unit(1), "a", "new text", FOREVER)
    index.add("s", unit(0, 0, 1), "c", "c", FOREVER)  # evicts b, now the oldest
    assert sorted(r[1:] for r in index.search("s", unit(1), k=5)) == [("a", "new text"), ("c", "c")]


def test_matrix_grows_past_its_first_block_and_reuses_freed_rows() -> None:
    index, _ = make(max_entries=10_000)
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((INITIAL_ROWS * 3, DIM)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    for i, vector in enumerate(vectors):
        index.add("s", vector, str(i), str(i), FOREVER)
    assert all(index.search("s", v)[0][1] == str(i) for i, v in enumerate(vectors))
    capacity = len(index._scopes["s"].expires)
    index.remove("s", "0")
    index.add("s", vectors[0], "again", "again", FOREVER)
    assert len(index._scopes["s"].expires) == capacity


def test_empty_scope_is_dropped_when_its_last_entry_goes() -> None:
    index, _ = make()
    index.add("s", unit(1), "a", "a", FOREVER)
    assert index.remove("s", "a")
    assert not index.remove("s", "a")
    assert index._scopes == {}


def test_wrong_dimension_is_rejected() -> None:
    index, _ = make()
    with pytest.raises(ValueError, match="dimensions"):
        index.add("s", np.ones(DIM + 1, dtype=np.float32), "a", "a", FOREVER)


def test_scope_bound_evicts_that_scopes_oldest_only() -> None:
    index = VectorIndex(DIM, max_entries=100, max_per_scope=2)
    index.add("a", unit(1), "a1", "t", FOREVER)
    index.add("b", unit(1), "b1", "t", FOREVER)
    index.add("a", unit(1), "a2", "t", FOREVER)
    index.add("a", unit(1), "a3", "t", FOREVER)
    assert sorted(r[1] for r in index.search("a", unit(1), k=5)) == ["a2", "a3"]
    assert [r[1] for r in index.search("b", unit(1), k=5)] == ["b1"]


def test_replacing_an_entry_makes_it_its_scopes_newest() -> None:
    index = VectorIndex(DIM, max_entries=100, max_per_scope=2)
    index.add("s", unit(1), "a", "t", FOREVER)
    index.add("s", unit(1), "b", "t", FOREVER)
    index.add("s", unit(1), "a", "t", FOREVER)
    index.add("s", unit(1), "c", "t", FOREVER)  # evicts b
    assert sorted(r[1] for r in index.search("s", unit(1), k=5)) == ["a", "c"]


def test_scope_of_one_entry_keeps_the_newest() -> None:
    index = VectorIndex(DIM, max_entries=100, max_per_scope=1)
    index.add("s", unit(1), "a", "t", FOREVER)
    index.add("s", unit(1), "b", "t", FOREVER)
    assert [r[1] for r in index.search("s", unit(1), k=5)] == ["b"]
    assert len(index) == 1


@pytest.mark.parametrize("max_per_scope", [INITIAL_ROWS // 2, INITIAL_ROWS + 5, 300])
def test_matrix_never_grows_past_the_scope_bound(max_per_scope: int) -> None:
    index = VectorIndex(DIM, max_entries=10_000, max_per_scope=max_per_scope)
    for i in range(max_per_scope * 2):
        index.add("s", unit(1, i), str(i), i, FOREVER)
    assert len(index._scopes["s"].expires) == max_per_scope
    assert len(index) == max_per_scope


def test_payload_is_returned_as_stored() -> None:
    index, _ = make()
    index.add("s", unit(1), "a", ("question", b"reply"), FOREVER)
    assert index.search("s", unit(1)) == [(pytest.approx(1.0), "a", ("question", b"reply"))]


def test_clear_drops_everything() -> None:
    index, _ = make()
    index.add("s", unit(1), "a", "t", FOREVER)
    index.clear()
    assert len(index) == 0
    assert index.search("s", unit(1)) == []
