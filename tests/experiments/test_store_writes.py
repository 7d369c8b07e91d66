"""The experiment store's writes: counters in batches, read back whole."""

from __future__ import annotations

from typing import Any

from gateway.experiments.store import ExperimentStore, Outcome
from gateway.state.redis import RedisState
from tests.redis_keys import drop_prefix, unique_prefix


async def test_outcomes_are_counted_in_batches_not_a_redis_call_each(redis_url: str) -> None:
    """Each finished request adds to its variant's counters: with the other writes of the
    next few ms (one call), not a round trip per request; a report sees them all."""
    prefix = unique_prefix()
    state = RedisState(redis_url, prefix)
    writes = 0
    write = state.hincr_many

    async def counted(*args: Any, **kwargs: Any) -> None:
        nonlocal writes
        writes += 1
        await write(*args, **kwargs)

    state.hincr_many = counted  # type: ignore[method-assign]
    store = ExperimentStore(state)
    try:
        for _ in range(20):
            await store.record("split", "a", Outcome(200, 0.2, 5, 7, 0.01))
        assert writes == 0  # pending, for the next batch
        counts = (await store.read("split", ["a"]))["a"]
        assert writes == 1
        assert counts["requests"] == 20 and counts["completion_tokens"] == 140
    finally:
        await state.aclose()
        drop_prefix(redis_url, prefix)
