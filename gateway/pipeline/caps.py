"""Caps: max_tokens defaults and ceilings, the input limit, and budgets (after route).

Ceilings come from the model alias (`caps.models`) and the key (`caps` on a key); the
tighter wins. A request over the ceiling is clamped (and told so in the
`x-gateway-max-tokens-clamped` header) or refused with 400, as configured. Prompts counted
over `max_input_tokens` are refused with 400 before any upstream call. Budgets are checked
here and debited with the real usage when the reply completes.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from gateway.auth.principal import ANONYMOUS
from gateway.budgets import SpendStore
from gateway.config.access import CapsConfig, CapsSection
from gateway.config.schema import ModelConfig
from gateway.context import RequestContext
from gateway.errors import InputTooLarge, InvalidRequest, QuotaExceeded
from gateway.observability.metrics import Metrics
from gateway.pricing import PriceBook
from gateway.tokens import count_prompt_tokens
from gateway.types import Next, Reply

log = logging.getLogger("gateway")
CLAMP_HEADER = "x-gateway-max-tokens-clamped"
MAX_TOKEN_FIELDS = ("max_completion_tokens", "max_tokens")


def effective_caps(section: CapsSection, alias: str, key_caps: CapsConfig) -> CapsConfig:
    """The alias's caps and the key's, merged: the key's default wins, the lower ceiling wins."""
    model = section.models.get(alias, CapsConfig())
    ceiling = _lowest(model.max_tokens, key_caps.max_tokens)
    default = key_caps.default_max_tokens or model.default_max_tokens
    if default is not None and ceiling is not None:
        default = min(default, ceiling)
    return CapsConfig(
        default_max_tokens=default,
        max_tokens=ceiling,
        on_exceed=key_caps.on_exceed or model.on_exceed or section.on_exceed,
        max_input_tokens=_lowest(model.max_input_tokens, key_caps.max_input_tokens),
    )


def planned_max_tokens(body: Mapping[str, Any], caps: CapsConfig) -> int | None:
    """The max_tokens the request will run with (for token reservations); None if unbounded."""
    requested = requested_max_tokens(body)
    if requested is None:
        return caps.default_max_tokens
    if caps.max_tokens is not None:
        return min(requested, caps.max_tokens)
    return requested


def requested_max_tokens(body: Mapping[str, Any]) -> int | None:
    for name in MAX_TOKEN_FIELDS:
        value = body.get(name)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return None


class Caps:
    def __init__(
        self,
        section: CapsSection,
        models: Mapping[str, ModelConfig],
        spend: SpendStore,
        prices: PriceBook,
        metrics: Metrics,
    ) -> None:
        self.section = section
        self.models = models
        self.spend = spend
        self.prices = prices
        self.metrics = metrics

    async def __call__(self, ctx: RequestContext, call_next: Next) -> Reply:
        caps = effective_caps(self.section, ctx.target_alias, ctx.principal.caps)
        if caps.max_input_tokens is not None:
            self.check_input(ctx, caps.max_input_tokens)
        if ctx.endpoint != "embeddings":
            self.apply_max_tokens(ctx, caps)
        if self.spend.scopes(ctx.principal):
            await self.check_budget(ctx)
        reply = await call_next(ctx)
        reply.on_complete(lambda done: self.debit(ctx, done))
        return reply

    def check_input(self, ctx: RequestContext, limit: int) -> None:
        if not ctx.prompt_tokens_estimate:
            ctx.prompt_tokens_estimate = count_prompt_tokens(ctx.body, ctx.endpoint)
        if ctx.prompt_tokens_estimate > limit:
            raise InputTooLarge(
                f"The input is {ctx.prompt_tokens_estimate} tokens; the limit for this model "
                f"and key is {limit} (max_input_tokens).",
                code="context_length_exceeded",
                param="messages" if ctx.endpoint == "chat" else "input",
            )

    def apply_max_tokens(self, ctx: RequestContext, caps: CapsConfig) -> None:
        requested = requested_max_tokens(ctx.body)
        if requested is None:
            if caps.default_max_tokens is not None:
                ctx.body = {**ctx.body, "max_tokens": caps.default_max_tokens}
            return
        ceiling = caps.max_tokens
        if ceiling is None or requested <= ceiling:
            return
        field = next(name for name in MAX_TOKEN_FIELDS if name in ctx.body)
        if caps.on_exceed == "reject":
            raise InvalidRequest(
                f"'{field}' is {requested}; the limit for this model and key is {ceiling}.",
                code="max_tokens_exceeded",
                param=field,
            )
        ctx.body = {**ctx.body, field: ceiling}
        ctx.response_headers[CLAMP_HEADER] = f"{requested}->{ceiling}"

    async def check_budget(self, ctx: RequestContext) -> None:
        try:
            await self.spend.check(ctx.principal)
        except QuotaExceeded as err:
            self.metrics.budget_refusals.labels(err.param or "key").inc()
            raise
        except Exception:  # state unreachable: budgets fail open, limits still apply
            self.metrics.redis_errors.labels("budget").inc()
            log.warning("budget check skipped: state backend unreachable")

    async def debit(self, ctx: RequestContext, reply: Reply) -> None:
        usage = reply.usage
        if usage is None or usage.total_tokens == 0:
            return
        upstream = ctx.deployment.split("/", 1)[-1]
        usd = self.prices.cost(
            ctx.target_alias, upstream, usage.prompt_tokens, usage.completion_tokens
        )
        if usd:
            self.metrics.cost_usd.labels(ctx.alias).inc(usd)
        if ctx.principal is ANONYMOUS:
            return
        try:
            await self.spend.record(ctx.principal, usage.total_tokens, usd)
        except Exception:
            self.metrics.redis_errors.labels("budget").inc()
            log.warning("spend not recorded: state backend unreachable")


def _lowest(*values: int | None) -> int | None:
    present = [v for v in values if v is not None]
    return min(present) if present else None
