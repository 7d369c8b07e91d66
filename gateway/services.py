"""Services: the live objects stages are built from besides their slice of config."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from gateway.observability.metrics import Metrics
from gateway.observability.tracing import Tracing
from gateway.ratelimit.limiter import Limiter
from gateway.state import StateBackend
from gateway.types import Provider

if TYPE_CHECKING:  # cache services: imported by their builders only when configured
    from gateway.accounting.pricing import PriceBook
    from gateway.auth.authenticator import Authenticator
    from gateway.cache.embedders import Embedder
    from gateway.cache.lifecycle import CacheBackends
    from gateway.db.records import Records


@dataclass(frozen=True)
class Services:
    """What stages are built from besides their slice of config."""

    metrics: Metrics
    providers: dict[str, Provider]
    state: StateBackend
    limiter: Limiter | None = None  # rate limits: memory or Redis, per-process fallback
    tracing: Tracing | None = None  # OpenTelemetry, when tracing.enabled
    embedder: Embedder | None = None  # the one local embedder (semantic cache, classifier)
    cache: CacheBackends | None = None  # exact cache + semantic store, kept across reloads
    authenticator: Authenticator | None = None  # keys, admin key, client IPs (gateway/auth)
    records: Records | None = None  # PostgreSQL system of record (state.database)
    prices: PriceBook | None = None  # the one price book (pricing overrides + price map)
