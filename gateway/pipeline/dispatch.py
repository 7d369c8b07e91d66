"""Dispatch: try the target alias's deployments (load-balanced, retried, guarded by
circuit breakers), then its fallback aliases; one error names every failed attempt.

Policy lives in gateway/dispatch (balancer, retry, breaker, stream); this stage is
the loop that applies it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING

from gateway.config.schema import DeploymentConfig, GatewayConfig, ModelConfig
from gateway.context import RequestContext
from gateway.dispatch.balancer import Balancer
from gateway.dispatch.breaker import Breakers
from gateway.dispatch.deadline import Deadline
from gateway.dispatch.prices import prices_of
from gateway.dispatch.retry import backoff_seconds, is_retryable, may_fall_back, retry_after_of
from gateway.dispatch.stream import prime
from gateway.errors import (
    AllAttemptsFailed,
    ClientDisconnected,
    GatewayError,
    ModelNotFound,
    UpstreamError,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from gateway.observability.metrics import Metrics
from gateway.types import NativeProvider, Next, Provider, Reply

if TYPE_CHECKING:
    from gateway.services import Services

Attempts = list[tuple[str, GatewayError]]


class Dispatch:
    def __init__(
        self,
        models: Mapping[str, ModelConfig],
        providers: Mapping[str, Provider],
        metrics: Metrics,
        *,
        breakers: Breakers,
        balancer: Balancer | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.models = models
        self.providers = providers
        self.metrics = metrics
        self.breakers = breakers
        self.balancer = balancer or Balancer()
        self.sleep = sleep

    @classmethod
    def build(cls, config: GatewayConfig, services: Services) -> Dispatch:
        shared = services.state if services.state.kind == "redis" else None
        prices = prices_of(config, services.prices)

        def price_of(deployment: DeploymentConfig) -> float:
            price = prices.price("", deployment.model)
            return price.input_per_token + price.output_per_token

        return cls(
            config.models,
            services.providers,
            services.metrics,
            breakers=Breakers(config.breakers, services.metrics, shared),
            balancer=Balancer(price_of),
        )

    def health(self) -> dict[str, str]:
        """Each deployment's breaker state (closed, half_open, open), for /ready."""
        states = self.breakers.snapshot()
        names = {d.name for model in self.models.values() for d in model.deployments}
        return {name: states.get(name, "closed") for name in sorted(names)}

    async def __call__(self, ctx: RequestContext, call_next: Next) -> Reply:
        first = self.models.get(ctx.target_alias)
        if first is None:
            raise ModelNotFound(ctx.target_alias)
        deadline = time.monotonic() + first.retry.deadline_seconds
        attempts: Attempts = []
        allowed = [a for a in first.fallbacks if ctx.principal.may_use(a)]  # never call others
        chain = [ctx.target_alias, *allowed]
        for index, alias in enumerate(chain):
            if index:
                self.metrics.fallbacks.labels(chain[0], alias).inc()
                ctx.log_fields["fallback"] = alias
            reply = await self.try_alias(ctx, alias, attempts, deadline)
            if reply is not None:
                if attempts:
                    ctx.log_fields["failed_attempts"] = [name for name, _ in attempts]
                return reply
            if not may_fall_back(attempts[-1][1], self.models[alias].fallback_on):
                break
            if time.monotonic() >= deadline:
                break
        if ctx.client_gone:
            raise ClientDisconnected("The client disconnected before a reply was ready.")
        raise final_error(attempts)

    async def try_alias(
        self, ctx: RequestContext, alias: str, attempts: Attempts, deadline: float
    ) -> Reply | None:
        """The alias's reply, or None after recording why each try failed."""
        model = self.models[alias]
        order = self.balancer.order(model)
        previous: DeploymentConfig | None = None
        for number in range(model.retry.attempts):
            deployment = await self.next_deployment(order, number)
            if deployment is None:
                reason = "no deployment available: every circuit breaker is open"
                attempts.append((alias, UpstreamUnavailable(reason)))
                return None
            if number:
                wait = self.backoff(model, number, attempts[-1][1], deployment is previous)
                if wait is None or time.monotonic() + wait >= deadline:
                    return None
                self.metrics.retries.labels(alias).inc()
                await self.sleep(wait)
            timeout = min(model.retry.attempt_timeout_seconds, deadline - time.monotonic())
            previous = deployment
            try:
                return await self.attempt(ctx, deployment, timeout, stream_deadline(model))
            except GatewayError as err:
                attempts.append((deployment.name, err))
                if not is_retryable(err):
                    return None
        return None

    async def next_deployment(
        self, order: list[DeploymentConfig], number: int
    ) -> DeploymentConfig | None:
        """Rotate through the order from this attempt's place, skipping open breakers."""
        for offset in range(len(order)):
            deployment = order[(number + offset) % len(order)]
            if await self.breakers.allow(deployment.name):
                return deployment
        return None

    def backoff(
        self, model: ModelConfig, number: int, err: GatewayError, same_deployment: bool
    ) -> float | None:
        """Seconds before retry `number`; None when Retry-After asks for too long."""
        retry_after = retry_after_of(err) if same_deployment else None
        if retry_after is not None and retry_after > model.retry.max_retry_after_seconds:
            return None
        return backoff_seconds(model.retry, number, retry_after)

    async def attempt(
        self, ctx: RequestContext, deployment: DeploymentConfig, timeout: float, stream_for: float
    ) -> Reply:
        """One call to one deployment, within `timeout` (a stream: until its first event),
        cut at once when the client leaves (`ctx.client_gone`, see http/disconnect)."""
        if ctx.client_gone:
            raise ClientDisconnected("The client disconnected before the provider was called.")
        ctx.deployment = deployment.name
        ctx.provider = deployment.provider
        provider = self.providers[deployment.provider]
        body = {**ctx.body, "model": deployment.model}
        name = deployment.name
        self.balancer.started(name)
        started = time.perf_counter()
        try:
            async with Deadline(max(timeout, 0.001)) as wait:
                ctx.upstream_wait = wait
                if ctx.raw_body is not None and getattr(provider, "ingress", None) == ctx.ingress:
                    # The deployment speaks the client's format: its raw body goes through.
                    native: NativeProvider = provider  # type: ignore[assignment]
                    reply = await native.send_native(ctx, body, stream=ctx.stream)
                else:
                    reply = await provider.send(ctx.endpoint, body, stream=ctx.stream)
                if reply.stream is not None:
                    await prime(reply, stream_for, ctx.elapsed())
        except (GatewayError, TimeoutError) as exc:
            err = exc if isinstance(exc, GatewayError) else _timeout(timeout)
            if ctx.client_gone:  # the watcher expired the wait: not the provider's failure
                self.balancer.finished(name)
                raise ClientDisconnected("The client disconnected; the call was cut.") from None
            await self.failed(ctx, deployment, err, time.perf_counter() - started)
            raise err from None
        finally:
            ctx.upstream_wait = None
        waited = time.perf_counter() - started
        ctx.upstream_seconds += waited
        self.metrics.upstream_duration.labels(deployment.provider, name).observe(waited)
        await self.breakers.succeeded(name)

        async def settle(done: Reply) -> None:
            self.balancer.finished(name, waited)
            if isinstance(done.error, UpstreamError) and done.error.retryable:
                await self.breakers.failed(name)  # broke mid-stream

        reply.on_complete(settle)
        return reply

    async def failed(
        self, ctx: RequestContext, deployment: DeploymentConfig, err: GatewayError, waited: float
    ) -> None:
        ctx.upstream_seconds += waited
        self.balancer.finished(deployment.name)
        self.metrics.upstream_errors.labels(
            deployment.provider, deployment.name, _reason(err)
        ).inc()
        if is_retryable(err):
            await self.breakers.failed(deployment.name)


def final_error(attempts: Attempts) -> GatewayError:
    """A single client error passes through as the provider said it; otherwise one error
    names every attempt."""
    if len(attempts) == 1 and not is_retryable(attempts[0][1]):
        return attempts[0][1]
    return AllAttemptsFailed(attempts)


def stream_deadline(model: ModelConfig) -> float:
    """Seconds a stream of this alias may run, counted from the request's arrival."""
    return model.retry.stream_deadline_seconds or model.retry.deadline_seconds


def _timeout(seconds: float) -> UpstreamTimeout:
    return UpstreamTimeout(f"The provider did not answer within {seconds:.1f}s.")


def _reason(err: GatewayError) -> str:
    if isinstance(err, UpstreamError) and err.upstream_status is not None:
        return str(err.upstream_status)
    return type(err).__name__
