"""Build the access-control stages (auth, ratelimit, caps) from config; none when unused.

The quickstart (no keys, no limits, no caps) gets no stage at all: its path is the core's.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from gateway.accounting.budgets import SpendStore
from gateway.accounting.teams import team_policies
from gateway.accounting.tokens import encoder
from gateway.auth.authenticator import Authenticator
from gateway.config.schema import GatewayConfig
from gateway.dispatch.prices import prices_of
from gateway.observability.metrics import Metrics
from gateway.pipeline.auth import Auth
from gateway.pipeline.caps import Caps
from gateway.pipeline.ratelimit import RateLimit
from gateway.ratelimit.limiter import Limiter
from gateway.state import StateBackend
from gateway.types import Stage

if TYPE_CHECKING:
    from gateway.services import Services


def build_limiter(
    config: GatewayConfig, metrics: Metrics, state: StateBackend | None = None
) -> Limiter:
    """The limiter's storage follows the state backend: memory:// or its Redis URL; it
    shares the backend's view of Redis health (one outage view per process)."""
    section = config.state
    url = section.redis_url if section.backend == "redis" else "memory://"
    health = state.health if state is not None else None
    pool = (section.redis_pool_size, section.redis_pool_timeout_seconds)
    leases = (section.lease_fraction, section.lease_seconds)
    return Limiter(url, section.key_prefix, metrics, health, *pool, *leases)


def uses_limits(config: GatewayConfig) -> bool:
    limits = config.limits
    scoped = [limits.default_key, limits.user, limits.global_, *limits.models.values()]
    return config.auth.enabled or any(not s.empty for s in scoped)


def uses_tokens(config: GatewayConfig) -> bool:
    """Whether requests will be tokenized (warm the tokenizer at start-up then: it costs
    ~80 MB of memory, which a gateway that never counts tokens does not pay). With keys,
    budgets (theirs, their teams', admin-created keys') count prompts."""
    limits = config.limits
    scoped = [limits.default_key, limits.user, limits.global_, *limits.models.values()]
    key_tokens = any(k.limits and k.limits.tokens for k in config.auth.keys)
    key_input = any(k.caps.max_input_tokens for k in config.auth.keys)
    model_input = any(c.max_input_tokens for c in config.caps.models.values())
    counted = key_tokens or key_input or model_input or config.auth.enabled
    return counted or any(s.tokens for s in scoped)


def build_authenticator(
    config: GatewayConfig, metrics: Metrics, state: StateBackend, limiter: Limiter | None
) -> Authenticator:
    """The generation's one Authenticator (pipeline and HTTP handlers share it)."""
    # Services built without a limiter (tests, tools) must not switch authentication off.
    limiter = limiter or build_limiter(config, metrics, state)
    return Authenticator.build(config.auth, config.limits, state, limiter, metrics)


def auth_stages(config: GatewayConfig, services: Services) -> list[Stage]:
    """auth (before route): key -> Principal, per-IP limits."""
    authenticator = services.authenticator or build_authenticator(
        config, services.metrics, services.state, services.limiter
    )
    return [Auth(authenticator)] if authenticator.guards else []


def limit_stages(config: GatewayConfig, services: Services) -> list[Stage]:
    """ratelimit (after route, so that limits.models apply to the alias the request is
    sent to): requests before the call, tokens settled after."""
    if not uses_limits(config):
        return []
    limiter = services.limiter or build_limiter(config, services.metrics, services.state)
    return [RateLimit(config.limits, config.caps, limiter)]


def prices_requests(config: GatewayConfig) -> bool:
    """Whether requests are priced (the caps stage: keys' spend, budgets, model caps)."""
    return config.auth.enabled or bool(config.caps.models)


def caps_stages(config: GatewayConfig, services: Services) -> list[Stage]:
    """caps (after route): token ceilings, input limit, budgets and spend."""
    if not prices_requests(config):
        return []
    records = services.records  # totals rebuilt from the ledger after Redis loses them
    teams = team_policies(config, records.teams if records else None)  # YAML, then database
    spend = records.spend(services.state, teams) if records else SpendStore(services.state, teams)
    prices = prices_of(config, services.prices)
    return [Caps(config.caps, config.models, spend, prices, services.metrics)]


async def access_limiter(
    config: GatewayConfig, metrics: Metrics, state: StateBackend, previous: Services | None
) -> Limiter:
    """The limiter for a (re)loaded config: the previous one while the state is the same;
    the tokenizer is loaded now (in a thread) when requests will be counted."""
    if uses_tokens(config):
        await asyncio.to_thread(encoder)
    if previous is not None and previous.limiter is not None and previous.state is state:
        return previous.limiter
    return build_limiter(config, metrics, state)
