"""The `cache:` section: exact and semantic response caching."""

from __future__ import annotations

from collections.abc import Collection, Iterator
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

Scope = Literal["key", "team", "global"]


class Section(BaseModel):
    # Same rules as schema.Section; not imported from there, as schema.py imports this module.
    model_config = ConfigDict(extra="forbid", frozen=True)


class ExactCacheConfig(Section):
    enabled: bool = Field(True, description="Serve identical requests from the cache.")
    ttl_seconds: float = Field(3600.0, gt=0, description="How long an entry lives.")
    max_entries: int = Field(10_000, ge=1, description="In-process LRU bound (entries).")
    max_bytes: int = Field(64 * 1024 * 1024, ge=1024, description="In-process LRU bound (bytes).")
    max_entry_bytes: int = Field(
        1024 * 1024, ge=256, description="Replies larger than this are not stored."
    )
    scope: Scope = Field(
        "key", description="Who shares entries: one API key, one team, or everybody."
    )
    store_n_gt_1: bool = Field(False, description="Also store replies to requests with n > 1.")


class SemanticCacheConfig(Section):
    enabled: bool = Field(False, description="Serve near-identical questions (opt-in).")
    embedder: Literal["local", "provider"] = Field(
        "local", description="local: all-MiniLM-L6-v2 in-process; provider: an embeddings alias."
    )
    embedding_model: str | None = Field(
        None, description="Model alias whose /v1/embeddings embeds, when embedder is provider."
    )
    embedding_dim: int = Field(384, ge=1, le=4096, description="Dimension of the embeddings.")
    threshold: float | None = Field(
        None, ge=0, le=1, description="Cosine similarity to serve; default: the matcher's."
    )
    backend: Literal["memory", "pgvector"] = Field(
        "memory", description="memory: per-process exact index; pgvector: shared PostgreSQL."
    )
    dsn: SecretStr | None = Field(
        None, description="PostgreSQL DSN for pgvector; write it as ${ENV_VAR}."
    )
    table: str = Field("gateway_semantic_cache", pattern=r"^[a-z_][a-z0-9_]{0,62}$")
    max_temperature: float = Field(0.3, ge=0, description="Only requests at or below this.")
    max_messages: int = Field(8, ge=1, description="Only conversations this short.")
    max_prompt_chars: int = Field(
        2000,
        ge=1,
        le=8000,
        description="Only newest user turns this short (the model sees "
        "about 1,000-1,500 characters; past it only the guards compare, at a cost that grows "
        "faster than the length).",
    )
    allow_tools: bool = Field(False, description="Also requests that declare tools.")
    max_wait_ms: float = Field(
        40.0,
        ge=0,
        le=60_000,
        description="The local embedder's longest wait: a lookup (or store) whose "
        "embedding would queue longer behind others skips the semantic cache (a miss, "
        "counted as result=busy), so under load it never costs more than this. 0: wait.",
    )
    ttl_seconds: float = Field(86_400.0, gt=0, description="How long an entry lives.")
    max_entries_per_scope: int = Field(50_000, ge=1, description="In-process bound per scope.")
    max_entries: int = Field(
        200_000, ge=1, description="In-process bound over all scopes (bounds the memory)."
    )

    @model_validator(mode="after")
    def _check_backend(self) -> SemanticCacheConfig:
        if self.enabled and self.backend == "pgvector" and self.dsn is None:
            raise ValueError("dsn is required for backend 'pgvector'")
        if self.enabled and self.embedder == "provider" and not self.embedding_model:
            raise ValueError("embedding_model is required for embedder 'provider'")
        return self


class CacheConfig(Section):
    enabled: bool = Field(False, description="Master switch for the cache stage (opt-in).")
    exact: ExactCacheConfig = ExactCacheConfig()
    semantic: SemanticCacheConfig = SemanticCacheConfig()
    hits_count_tokens: bool = Field(
        False, description="Record a hit's cached usage as tokens (default: zero upstream tokens)."
    )
    hits_count_requests: bool = Field(
        True,
        description="false: a hit gives back its request-limit charge (key, user, model, "
        "global; the per-IP limit still counts it).",
    )
    ttl_header: str = Field(
        "x-gateway-cache-ttl", description="Request header that sets the TTL in seconds."
    )


def cache_references(models: Collection[str], cache: CacheConfig) -> Iterator[str]:
    """The embedding model of a `provider` embedder must be a configured alias."""
    semantic = cache.semantic
    wanted = semantic.enabled and semantic.embedder == "provider"
    if wanted and semantic.embedding_model not in models:
        alias = semantic.embedding_model
        yield f"cache.semantic.embedding_model: unknown model alias '{alias}'"
