"""SemanticCache.lookup: short prompts are judged on the event loop, long ones off it."""

from __future__ import annotations

import asyncio
import threading

import numpy as np
import pytest

from gateway.cache.matcher import MatchPolicy
from gateway.cache.memory_store import MemoryVectorStore
from gateway.cache.semantic import INLINE_JUDGE_CHARS, SemanticCache


class SameVector:
    dim = 2

    async def embed(self, texts: list[str]) -> np.ndarray:
        return np.tile(np.array([1.0, 0.0], dtype=np.float32), (len(texts), 1))


@pytest.mark.parametrize(
    ("text", "on_loop"),
    [("Is 64 a perfect square?", True), ("Summarize: " + "word " * INLINE_JUDGE_CHARS, False)],
)
def test_long_prompts_are_judged_in_a_worker_thread(text: str, on_loop: bool) -> None:
    cache = SemanticCache(SameVector(), MemoryVectorStore(2, 10), MatchPolicy())
    threads: list[int] = []
    judge = cache._judge

    def recording(candidates, new_text):  # type: ignore[no-untyped-def]
        threads.append(threading.get_ident())
        return judge(candidates, new_text)

    cache._judge = recording  # type: ignore[method-assign]

    async def scenario() -> None:
        vector, busy = await cache.embed(text)
        assert vector is not None and not busy
        await cache.add("s", text, vector, b"reply", 60)
        hit, best = await cache.lookup("s", text, vector)
        assert hit is not None and hit.value == b"reply" and best == pytest.approx(1.0)
        assert (threads == [threading.get_ident()]) is on_loop

    asyncio.run(scenario())
