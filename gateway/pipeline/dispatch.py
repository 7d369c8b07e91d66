"""Dispatch: pick a deployment of the target alias and call its provider."""

from __future__ import annotations

import random
import time
from collections.abc import Mapping

from gateway.config.schema import DeploymentConfig, ModelConfig
from gateway.context import RequestContext
from gateway.errors import GatewayError, ModelNotFound, UpstreamError
from gateway.observability.metrics import Metrics
from gateway.types import Next, Provider, Reply


class Dispatch:
    def __init__(
        self,
        models: Mapping[str, ModelConfig],
        providers: Mapping[str, Provider],
        metrics: Metrics,
    ) -> None:
        self.models = models
        self.providers = providers
        self.metrics = metrics

    async def __call__(self, ctx: RequestContext, call_next: Next) -> Reply:
        model = self.models.get(ctx.target_alias)
        if model is None:
            raise ModelNotFound(ctx.target_alias)
        deployment = pick_weighted(model.deployments)
        return await self.attempt(ctx, deployment)

    async def attempt(self, ctx: RequestContext, deployment: DeploymentConfig) -> Reply:
        ctx.deployment = deployment.name
        ctx.provider = deployment.provider
        provider = self.providers[deployment.provider]
        body = {**ctx.body, "model": deployment.model}
        started = time.perf_counter()
        try:
            reply = await provider.send(ctx.endpoint, body, stream=ctx.stream)
        except GatewayError as err:
            reason = _reason(err)
            self.metrics.upstream_errors.labels(deployment.provider, deployment.name, reason).inc()
            raise
        finally:
            waited = time.perf_counter() - started
            ctx.upstream_seconds += waited
        self.metrics.upstream_duration.labels(deployment.provider, deployment.name).observe(waited)
        return reply


def pick_weighted(deployments: list[DeploymentConfig]) -> DeploymentConfig:
    if len(deployments) == 1:
        return deployments[0]
    return random.choices(deployments, weights=[d.weight for d in deployments])[0]


def _reason(err: GatewayError) -> str:
    if isinstance(err, UpstreamError) and err.upstream_status is not None:
        return str(err.upstream_status)
    return type(err).__name__
