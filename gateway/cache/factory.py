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
) -> SemanticCache | None:
    if not config.enabled:
        return None
    from gateway.cache.matcher import MatchPolicy

    policy = MatchPolicy() if config.threshold is None else MatchPolicy(threshold=config.threshold)
    return SemanticCache(build_embedder(config, models, providers), build_store(config), policy)


def build_store(config: SemanticCacheConfig) -> VectorStore:
    if config.backend == "pgvector":
        from gateway.cache.pgvector import PgVectorStore

        assert config.dsn is not None  # checked by the schema
        return PgVectorStore(config.dsn.get_secret_value(), config.table, config.embedding_dim)
    from gateway.cache.memory_store import MemoryVectorStore

    return MemoryVectorStore(config.embedding_dim, config.max_entries_per_scope)


def build_embedder(
    config: SemanticCacheConfig,
    models: Mapping[str, ModelConfig],
    providers: Mapping[str, Provider],
) -> Embedder:
    from gateway.cache.embedders import LocalMiniLMEmbedder, ProviderEmbedder

    if config.embedder == "local":
        return LocalMiniLMEmbedder()
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
