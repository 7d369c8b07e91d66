"""The cache's long-lived objects, kept in `Services`: the one local embedder of the
process (shared by the semantic cache and the routing classifier) and the cache backends
(exact cache, semantic store). Built at start, lent to the new pipeline on a reload when
their config did not change (so cached entries survive it), closed when replaced or at
shutdown.

Nothing here loads numpy or the model: `LocalMiniLMEmbedder` loads on its first embed.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from gateway.cache.exact import ExactCache, build_exact_cache
from gateway.cache.factory import build_store
from gateway.config.cache import CacheConfig, SemanticCacheConfig
from gateway.config.schema import GatewayConfig
from gateway.state import StateBackend

if TYPE_CHECKING:
    from gateway.cache.embedders import Embedder
    from gateway.cache.semantic import VectorStore


def needs_local_embedder(config: GatewayConfig) -> bool:
    """Whether the semantic cache (with the local embedder) or a routing classifier is on."""
    semantic = config.cache.semantic
    cache_embeds = config.cache.enabled and semantic.enabled and semantic.embedder == "local"
    return cache_embeds or any(r.classifier is not None for r in config.routes.values())


def shared_embedder(config: GatewayConfig, previous: Embedder | None) -> Embedder | None:
    """The process's local embedder when something uses it: the previous one if there was
    one (its model stays loaded across reloads), else a new, not yet loaded one."""
    if not needs_local_embedder(config):
        return None
    if previous is not None:
        return previous
    from gateway.cache.embedders import LocalMiniLMEmbedder

    return LocalMiniLMEmbedder()


def _store_identity(config: SemanticCacheConfig) -> tuple[object, ...]:
    """What a semantic store's entries depend on: the same values keep the store. The
    embedder is part of it: vectors from another model would match nonsense."""
    return (
        config.backend,
        config.dsn,
        config.table,
        config.embedding_dim,
        config.embedder,
        config.embedding_model,
        config.max_entries_per_scope,
        config.max_entries,
    )


@dataclass(frozen=True)
class CacheBackends:
    """Where cached entries live; `config` is what they were built from."""

    config: CacheConfig
    state: StateBackend  # the exact cache's, when it is Redis
    exact: ExactCache
    store: VectorStore | None  # None when semantic caching is off

    async def aclose(self) -> None:
        if self.store is not None:
            await self.store.aclose()

    def closers_replaced_by(self, new: CacheBackends | None) -> list[Callable[[], Awaitable[None]]]:
        """Close functions for what `new` does not reuse (the exact cache needs none: in
        memory it is dropped, in Redis it is the state client's)."""
        if self.store is None or (new is not None and new.store is self.store):
            return []
        return [self.store.aclose]


def cache_backends(
    config: CacheConfig, state: StateBackend, previous: CacheBackends | None
) -> CacheBackends | None:
    """The backends `config` needs, reusing `previous`'s where their config is unchanged."""
    if not config.enabled:
        return None
    if previous is not None and config.exact == previous.config.exact and state is previous.state:
        exact = previous.exact
    else:
        exact = build_exact_cache(config.exact, state)
    store = None
    if config.semantic.enabled:
        store = _reusable_store(config.semantic, previous)
        if store is None:  # not `or`: an empty in-memory store is falsy (it has a length)
            store = build_store(config.semantic)
    return CacheBackends(config, state, exact, store)


def _reusable_store(
    config: SemanticCacheConfig, previous: CacheBackends | None
) -> VectorStore | None:
    if previous is None or previous.store is None:
        return None
    same = _store_identity(config) == _store_identity(previous.config.semantic)
    return previous.store if same else None
