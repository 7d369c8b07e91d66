"""The pipeline order, in one function."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from gateway.config.schema import GatewayConfig
from gateway.context import RequestContext
from gateway.errors import GatewayError
from gateway.observability.metrics import Metrics
from gateway.pipeline.dispatch import Dispatch
from gateway.pipeline.observe import Observe
from gateway.pipeline.route import Route
from gateway.state import StateBackend
from gateway.types import Next, Provider, Reply, Stage


@dataclass(frozen=True)
class Services:
    """What stages are built from besides their slice of config."""

    metrics: Metrics
    providers: dict[str, Provider]
    state: StateBackend


def build_pipeline(config: GatewayConfig, services: Services) -> list[Stage]:
    """The way of a request, outermost first."""
    return [
        Observe(services.metrics, access_log=config.logging.access_log),
        # auth: key -> Principal (401/403)
        # ratelimit: request limits before, token limits settled after (429)
        Route(config.models),
        # caps: clamp or refuse max_tokens, input size, budget (400/429)
        # cache: exact, then semantic; store when the reply completes
        Dispatch(config.models, services.providers, services.metrics),
    ]


def compose(stages: Sequence[Stage]) -> Next:
    async def end(ctx: RequestContext) -> Reply:
        raise GatewayError("The pipeline ended without an answer.")

    handler: Next = end
    for stage in reversed(stages):
        handler = _bind(stage, handler)
    return handler


def _bind(stage: Stage, call_next: Next) -> Next:
    async def call(ctx: RequestContext) -> Reply:
        return await stage(ctx, call_next)

    return call
