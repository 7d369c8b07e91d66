"""Route: resolve the requested model alias to its configuration."""

from __future__ import annotations

from collections.abc import Mapping

from gateway.config.schema import ModelConfig
from gateway.context import RequestContext
from gateway.errors import ModelNotFound
from gateway.types import Next, Reply


class Route:
    def __init__(self, models: Mapping[str, ModelConfig]) -> None:
        self.models = models

    async def __call__(self, ctx: RequestContext, call_next: Next) -> Reply:
        if ctx.alias not in self.models:
            raise ModelNotFound(ctx.alias)
        ctx.target_alias = ctx.alias
        return await call_next(ctx)
