"""Build the caches a config asks for; nothing semantic is imported unless it is enabled."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from gateway.cache.semantic import SemanticCache, VectorStore
from gateway.config.cache import SemanticCacheConfig
from gateway.config.schema import ModelConfig
from gateway.errors import GatewayError
from gateway.types import Provider

if TYPE_CHECKING:
    from gateway.cache.embedders import Embedder


def build_semantic_cache(
    config: SemanticCacheConfig,
    models: Mapping[str, ModelConfig],
    providers: Mapping[str, Provider],
    store: VectorStore | None = None,
    local_embedder: Embedder | None = None,
) -> SemanticCache | None:
    """The semantic cache over `store` (a new one if not given); the local embedder is
    the process's shared one when given (see gateway.cache.lifecycle)."""
    if not config.enabled:
        return None
    from gateway.cache.matcher import MatchPolicy

    policy = MatchPolicy() if config.threshold is None else MatchPolicy(threshold=config.threshold)
    embedder = build_embedder(config, models, providers, local_embedder)
    store = store if store is not None else build_store(config)
    return SemanticCache(embedder, store, policy, max_wait=config.max_wait_ms / 1000)


def build_store(config: SemanticCacheConfig) -> VectorStore:
    if config.backend == "pgvector":
        from gateway.cache.pgvector import PgVectorStore

        assert config.dsn is not None  # checked by the schema
        return PgVectorStore(config.dsn.get_secret_value(), config.table, config.embedding_dim)
    from gateway.cache.memory_store import MemoryVectorStore

    return MemoryVectorStore(config.embedding_dim, config.max_entries_per_scope, config.max_entries)


def build_embedder(
    config: SemanticCacheConfig,
    models: Mapping[str, ModelConfig],
    providers: Mapping[str, Provider],
    local_embedder: Embedder | None = None,
) -> Embedder:
    from gateway.cache.embedders import LocalMiniLMEmbedder, ProviderEmbedder

    if config.embedder == "local":
        return local_embedder if local_embedder is not None else LocalMiniLMEmbedder()
    alias = config.embedding_model or ""
    model = models.get(alias)
    if model is None:
        raise ValueError(f"cache.semantic.embedding_model: unknown model '{alias}'")
    deployment = model.deployments[0]
    provider = providers[deployment.provider]

    async def embed(texts: list[str]) -> list[list[float]]:
        body = {"model": deployment.model, "input": texts}
        reply = await provider.send("embeddings", body, stream=False)
        if reply.body is None or "data" not in reply.body:
            raise GatewayError("The embeddings provider gave no data.")
        rows = sorted(reply.body["data"], key=lambda item: item.get("index", 0))
        return [row["embedding"] for row in rows]

    return ProviderEmbedder(embed, config.embedding_dim)
