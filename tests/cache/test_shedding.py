"""Under load the semantic cache steps aside rather than make a request wait: a lookup
whose embedding would queue longer than `cache.semantic.max_wait_ms` is a miss."""

from __future__ import annotations

import asyncio
import time

import numpy as np
import pytest

from gateway.cache.batcher import MicroBatcher
from gateway.cache.embedders import LocalMiniLMEmbedder
from gateway.cache.matcher import MatchPolicy
from gateway.cache.memory_store import MemoryVectorStore
from gateway.cache.semantic import SemanticCache

PASS_SECONDS = 0.02  # the stand-in forward pass, per text


def slow_rows(texts: list[str]) -> np.ndarray:
    time.sleep(PASS_SECONDS * len(texts))
    rows = np.zeros((len(texts), 384), dtype=np.float32)
    rows[:, 0] = 1.0
    return rows


def busy_cache(max_wait: float) -> SemanticCache:
    embedder = LocalMiniLMEmbedder()
    embedder.batcher = MicroBatcher(slow_rows, max_batch=1)  # one text per pass
    return SemanticCache(embedder, MemoryVectorStore(384, 100), MatchPolicy(), max_wait)


async def test_the_batcher_knows_how_long_a_new_text_would_wait() -> None:
    batcher = MicroBatcher(slow_rows, max_batch=1)
    assert batcher.expected_wait() == 0.0  # no pace yet: nothing is refused
    await batcher.submit(["a"], ["a"])
    assert batcher.seconds_per_text == pytest.approx(PASS_SECONDS, rel=0.5)
    waiting = [asyncio.create_task(batcher.submit([k], [k])) for k in "bcdef"]
    await asyncio.sleep(0.005)  # one computing, four queued
    assert batcher.expected_wait() == pytest.approx(5 * batcher.seconds_per_text)
    await asyncio.gather(*waiting)


async def test_lookups_that_would_wait_too_long_step_aside() -> None:
    cache = busy_cache(max_wait=3 * PASS_SECONDS)
    await cache.embed("warm: the pace is known")
    batcher = cache.embedder.batcher  # type: ignore[attr-defined]

    async def timed(i: int) -> tuple[bool, float, int]:
        started, passes = time.perf_counter(), batcher.batches
        vector, busy = await cache.embed(f"question {i}")
        assert (vector is None) == busy
        return busy, time.perf_counter() - started, batcher.batches - passes

    results = await asyncio.gather(*(timed(i) for i in range(12)))
    served = [passes for busy, _, passes in results if not busy]
    skipped = [seconds for busy, seconds, _ in results if busy]
    assert 3 <= len(served) <= 5 and len(skipped) >= 7
    assert max(skipped) < 0.005  # stepping aside costs nothing
    # The wait it allowed (3 passes ahead) and its own, counted in passes: a loaded
    # machine makes each pass slower, not the queue a lookup was let into longer.
    assert max(served) <= 5


async def test_a_text_in_the_recent_lru_is_served_even_when_busy() -> None:
    cache = busy_cache(max_wait=PASS_SECONDS)
    first, _ = await cache.embed("How do I reset my password?")
    crowd = [asyncio.create_task(cache.embed(f"other {i}")) for i in range(6)]
    await asyncio.sleep(0)
    again, busy = await cache.embed("how do I reset  my password?")  # same tokens
    assert not busy and again is first
    await asyncio.gather(*crowd)


async def test_without_max_wait_every_lookup_waits_its_turn() -> None:
    cache = busy_cache(max_wait=0.0)
    results = await asyncio.gather(*(cache.embed(f"q {i}") for i in range(6)))
    assert all(vector is not None and not busy for vector, busy in results)


async def test_an_idle_embedder_never_steps_aside_however_slow_its_last_pass() -> None:
    cache = busy_cache(max_wait=0.001)
    cache.embedder.batcher.seconds_per_text = 5.0  # type: ignore[attr-defined]
    vector, busy = await cache.embed("the first question after a cold start")
    assert vector is not None and not busy  # nothing queued ahead: no wait to avoid
