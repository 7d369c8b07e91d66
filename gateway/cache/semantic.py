"""The semantic cache: embed the newest user turn, search its scope, let the matcher judge.

A `VectorStore` keeps (scope, vector, question text, reply bytes) and returns the nearest
entries of one scope only; it never compares across scopes. The matcher
(`gateway.cache.matcher.decide`) then serves a candidate only above the threshold and
when the guards pass (numbers, quotes, code, URLs, negations, named entities agree).
Candidates are tried nearest first; the first the matcher accepts is served.

Everything here loads lazily: numpy and the embedding model only when semantic caching
is enabled in config.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    import numpy as np

    from gateway.cache.embedders import Embedder
    from gateway.cache.matcher import MatchPolicy

log = logging.getLogger("gateway.cache")
CANDIDATES = 4  # nearest entries handed to the matcher; guards may refuse the first
# Texts (new + candidates) longer than this are judged in a worker thread: judging costs
# about 1 ms per KiB of text, and the event loop must not block for more than ~2 ms.
# (cache.semantic.max_prompt_chars bounds each text, so the thread's work is bounded too.)
INLINE_JUDGE_CHARS = 2048


@dataclass(frozen=True, slots=True)
class Candidate:
    text: str
    value: bytes
    similarity: float


@dataclass(frozen=True, slots=True)
class SemanticHit:
    value: bytes
    similarity: float


@runtime_checkable
class Paced(Protocol):
    """An embedder that knows how long a new text would wait (the local one)."""

    async def embed_within(self, text: str, max_wait: float) -> np.ndarray | None: ...


class VectorStore(Protocol):
    kind: str

    async def search(self, scope: str, vector: np.ndarray, limit: int) -> list[Candidate]:
        """The nearest live entries of `scope`, most similar first."""
        ...

    async def add(
        self, scope: str, vector: np.ndarray, text: str, value: bytes, ttl: float
    ) -> None: ...

    async def aclose(self) -> None: ...


class SemanticCache:
    def __init__(
        self,
        embedder: Embedder,
        store: VectorStore,
        policy: MatchPolicy,
        max_wait: float = 0.0,
    ) -> None:
        self.embedder = embedder
        self.store = store
        self.policy = policy
        self.max_wait = max_wait  # seconds; 0: always wait for the embedding

    @property
    def threshold(self) -> float:
        return float(self.policy.threshold)

    async def embed(self, text: str) -> tuple[np.ndarray | None, bool]:
        """The text's vector, or None when the embedder fails or, with `max_wait`, is too
        busy to answer in time (the second value: True when busy). Either way the cache
        steps aside: an optional speed-up never costs a request more than `max_wait`."""
        try:
            if self.max_wait > 0 and isinstance(self.embedder, Paced):
                row = await self.embedder.embed_within(text, self.max_wait)
                return row, row is None
            vector: np.ndarray = (await self.embedder.embed([text]))[0]
            return vector, False
        except Exception as exc:
            log.warning("semantic cache embedding failed: %s", type(exc).__name__)
            return None, False

    async def lookup(
        self, scope: str, text: str, vector: np.ndarray
    ) -> tuple[SemanticHit | None, float | None]:
        """The hit to serve (or None) and the best similarity seen (for metrics)."""
        try:
            candidates = await self.store.search(scope, vector, CANDIDATES)
        except Exception as exc:  # a cache must never fail the request
            log.warning("semantic cache search failed: %s", type(exc).__name__)
            return None, None
        best = candidates[0].similarity if candidates else None
        close = [c for c in candidates if c.similarity >= self.threshold]
        if len(text) + sum(len(c.text) for c in close) > INLINE_JUDGE_CHARS:
            return await asyncio.to_thread(self._judge, close, text), best
        return self._judge(close, text), best

    def _judge(self, candidates: list[Candidate], text: str) -> SemanticHit | None:
        """The nearest candidate the guards let through, if any."""
        from gateway.cache.matcher import decide

        for candidate in candidates:
            if decide(candidate.similarity, candidate.text, text, self.policy).serve:
                return SemanticHit(candidate.value, candidate.similarity)
        return None

    async def add(
        self, scope: str, text: str, vector: np.ndarray, value: bytes, ttl: float
    ) -> None:
        try:
            await self.store.add(scope, vector, text, value, ttl)
        except Exception as exc:
            log.warning("semantic cache store failed: %s", type(exc).__name__)
