"""The pipeline order, in one function."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from gateway.config.schema import GatewayConfig
from gateway.context import RequestContext
from gateway.dispatch.prices import prices_of
from gateway.errors import GatewayError
from gateway.observability.tracing import Tracing
from gateway.pipeline.access import auth_stages, caps_stages, limit_stages
from gateway.pipeline.cache import cache_stages
from gateway.pipeline.dispatch import Dispatch
from gateway.pipeline.observe import Observe
from gateway.pipeline.route import Route
from gateway.services import Services
from gateway.types import Next, Reply, Stage

if TYPE_CHECKING:  # the database package loads asyncpg: imported only when configured
    from gateway.db.records import LedgerSink


def build_pipeline(config: GatewayConfig, services: Services) -> list[Stage]:
    """The way of a request, outermost first."""
    return [
        Observe(
            services.metrics,
            access_log=config.logging.access_log,
            log_prompts=config.logging.log_prompts,
            ledger=ledger_sink(config, services),
            aliases=frozenset(config.models) | frozenset(config.routes),
        ),
        *auth_stages(config, services),  # key -> Principal (401/403)
        Route.build(config, services),  # experiment variant, route rules -> target alias
        # ratelimit, on the target alias: requests before, tokens settled after (429)
        *limit_stages(config, services),
        *caps_stages(config, services),  # clamp or refuse max_tokens, input size, budget
        # cache: exact, then semantic; store when the reply completes
        *cache_stages(config, services),
        Dispatch.build(config, services),  # balance, retry, breakers, fallbacks
    ]


def ledger_sink(config: GatewayConfig, services: Services) -> LedgerSink | None:
    if services.records is None:
        return None
    return services.records.ledger_sink(prices_of(config, services.prices))


def compose(stages: Sequence[Stage], tracing: Tracing | None = None) -> Next:
    async def end(ctx: RequestContext) -> Reply:
        raise GatewayError("The pipeline ended without an answer.")

    handler: Next = end
    for i, stage in reversed(list(enumerate(stages))):
        if tracing is None:
            handler = _bind(stage, handler)
        else:  # the outermost stage carries the request span; every other one its own
            handler = (tracing.request if i == 0 else tracing.stage)(stage, handler)
    return handler


def _bind(stage: Stage, call_next: Next) -> Next:
    async def call(ctx: RequestContext) -> Reply:
        return await stage(ctx, call_next)

    return call
