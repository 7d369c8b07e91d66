"""Semantic tiering: embed each tier's examples once; a prompt goes to the tier of its
nearest example when the cosine similarity reaches the threshold, else the rules decide.

The embedder is the semantic cache's (`gateway.cache.embedders`), imported only when a
route configures a classifier.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from gateway.config.routing import ClassifierConfig

if TYPE_CHECKING:
    import numpy as np

    from gateway.cache.embedders import Embedder

log = logging.getLogger("gateway")


@dataclass(frozen=True)
class TierMatch:
    tier: str
    target: str
    score: float


def default_embedder() -> Embedder:
    from gateway.cache.embedders import LocalMiniLMEmbedder

    return LocalMiniLMEmbedder()


class SemanticClassifier:
    def __init__(self, config: ClassifierConfig, embedder: Embedder) -> None:
        self.config = config
        self.embedder = embedder
        self._owners: list[str] = []  # tier name of each example row
        self._examples: np.ndarray | None = None
        self._lock = asyncio.Lock()
        self._warming: asyncio.Task[None] | None = None

    async def warm_up(self) -> None:
        """Embed the examples (once); requests before this finishes wait for it."""
        if self._examples is not None:
            return
        async with self._lock:
            if self._examples is not None:
                return
            texts: list[str] = []
            owners: list[str] = []
            for tier, spec in self.config.tiers.items():
                texts += spec.examples
                owners += [tier] * len(spec.examples)
            self._owners = owners
            self._examples = await self.embedder.embed(texts)

    async def _warm_in_background(self) -> None:
        try:
            await self.warm_up()
        except Exception:  # e.g. the model package is missing: the rules keep deciding
            log.exception("the routing classifier could not load its embedder")

    async def classify(self, text: str) -> TierMatch | None:
        """The nearest tier, or None (the rules decide). Until the model has loaded and
        embedded the examples (in the background, started by the first call) the rules
        decide too: loading must not stall requests."""
        if not text.strip():
            return None
        if self._examples is None:
            if self._warming is None:
                self._warming = asyncio.create_task(self._warm_in_background())
            return None
        query = await self.embedder.embed([text])
        scores = self._examples @ query[0]
        best = int(scores.argmax())
        score = float(scores[best])
        if score < self.config.threshold:
            return None
        tier = self._owners[best]
        return TierMatch(tier, self.config.tiers[tier].target, score)
