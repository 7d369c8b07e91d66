"""Caps: max_tokens defaults and ceilings, the input limit, and budgets (after route).

Ceilings come from the model alias (`caps.models`) and the key (`caps` on a key); the
tighter wins. A request over the ceiling is clamped (and told so in the
`x-gateway-max-tokens-clamped` header) or refused with 400, as configured. Prompts counted
over `max_input_tokens` are refused with 400 before any upstream call. Budgets: the
request's maximum cost is reserved here (429 insufficient_quota when it does not fit) and
settled to the real cost when the reply completes (gateway/accounting/budgets.py has the bound).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from gateway.accounting.budget_cost import MaxCost
from gateway.accounting.budgets import Reservation, Scopes, SpendStore
from gateway.accounting.caps import planned_output, request_caps
from gateway.accounting.pricing import PriceBook
from gateway.accounting.tokens import count_prompt_tokens
from gateway.accounting.usage_bounds import sane_tokens
from gateway.auth.principal import ANONYMOUS
from gateway.config.access import CapsConfig, CapsSection
from gateway.config.schema import ModelConfig
from gateway.context import RequestContext
from gateway.errors import InputTooLarge, InvalidRequest, QuotaExceeded
from gateway.observability.metrics import Metrics
from gateway.request import CanonicalRequest
from gateway.state.health import RedisUnavailable
from gateway.types import Next, Reply

log = logging.getLogger("gateway")
CLAMP_HEADER = "x-gateway-max-tokens-clamped"
COST_SERIES_CACHED = 4096


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
        self.max_cost = MaxCost(prices, models)
        self._cost_series: dict[str, Any] = {}  # alias -> its cost counter (labels() once)

    async def __call__(self, ctx: RequestContext, call_next: Next) -> Reply:
        caps = request_caps(self.section, ctx)
        if caps.max_input_tokens is not None:
            self.check_input(ctx, caps.max_input_tokens)
        if ctx.endpoint != "embeddings":
            self.apply_max_tokens(ctx, caps)
        reservation = None
        spend = self.spend
        if spend.teams.source is None:  # YAML teams only: nothing to refresh, no await
            scopes = spend.known_scopes(ctx.principal)
        else:
            scopes = await spend.scopes(ctx.principal)
        if scopes:
            tokens, usd = self.max_cost_of(ctx, caps)
            reservation = spend.reserve_leased(tokens, usd, scopes)  # no await: the usual
            if reservation is None:
                reservation = await self.reserve_budget(ctx, tokens, usd, scopes)
        try:
            reply = await call_next(ctx)
        except BaseException:
            if reservation is not None:
                await self.spend.release(reservation)
            raise
        reply.on_complete(lambda done: self.debit(ctx, done, reservation))
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
        request = ctx.request
        if caps.max_choices is not None:
            self.check_choices(request, caps)
        if caps.max_tokens is None and caps.default_max_tokens is None:
            if caps.max_output_tokens is not None:
                self.check_total_output(request, caps)
            return  # no bound to set or clamp
        requested = request.output_bound()
        if requested is None:
            if caps.default_max_tokens is not None:
                ctx.body = request.with_output_bound(caps.default_max_tokens)
                request = ctx.request
            self.check_total_output(request, caps)
            return
        ceiling = caps.max_tokens
        if ceiling is not None and requested > ceiling:
            if caps.on_exceed == "reject":
                field = request.output_bound_field()
                raise InvalidRequest(
                    f"'{field}' is {requested}; the limit for this model and key is {ceiling}.",
                    code="max_tokens_exceeded",
                    param=field,
                )
            ctx.body = request.with_output_bound(ceiling)
            request = ctx.request
            ctx.response_headers[CLAMP_HEADER] = f"{requested}->{ceiling}"
        self.check_total_output(request, caps)

    @staticmethod
    def check_choices(request: CanonicalRequest, caps: CapsConfig) -> None:
        choices = request.choices()
        if caps.max_choices is not None and choices > caps.max_choices:
            raise InvalidRequest(
                f"The request asks for {choices} choices; the limit for this model and key is "
                f"{caps.max_choices}.",
                code="too_many_choices",
                param="n",
            )

    @staticmethod
    def check_total_output(request: CanonicalRequest, caps: CapsConfig) -> None:
        """max_tokens x choices against the per-request output ceiling (always refused:
        clamping would have to pick which of the two the client meant to give up)."""
        ceiling = caps.max_output_tokens
        bound = request.output_bound()
        if ceiling is None:
            return
        if bound is None:
            raise InvalidRequest(
                f"Set max_tokens: the output limit for this model and key is {ceiling} tokens "
                "per request.",
                code="max_tokens_required",
                param="max_tokens",
            )
        total = bound * request.choices()
        if total > ceiling:
            raise InvalidRequest(
                f"max_tokens x choices is {total}; the output limit for this model and key is "
                f"{ceiling} tokens per request.",
                code="max_tokens_exceeded",
                param=request.output_bound_field(),
            )

    def max_cost_of(self, ctx: RequestContext, caps: CapsConfig) -> tuple[int, float]:
        """The request's maximum cost, (tokens, usd): what its budgets reserve."""
        if not ctx.prompt_tokens_estimate:
            ctx.prompt_tokens_estimate = count_prompt_tokens(ctx.body, ctx.endpoint)
        request = ctx.request
        output = 0 if ctx.endpoint == "embeddings" else planned_output(request, caps)
        return self.max_cost(
            ctx.target_alias, ctx.prompt_tokens_estimate, output, request.choices()
        )

    async def reserve_budget(
        self, ctx: RequestContext, tokens: int, usd: float, scopes: Scopes
    ) -> Reservation | None:
        """Reserve the request's maximum cost under its budgets (gateway/accounting/budgets.py)."""
        try:
            return await self.spend.reserve(ctx.principal, tokens, usd, scopes)
        except QuotaExceeded as err:
            self.metrics.budget_refusals.labels(err.param or "key").inc()
            raise
        except Exception as exc:  # state unreachable: budgets fail open, limits still apply
            if not isinstance(exc, RedisUnavailable):  # skipped, not failed: Redis is down
                self.metrics.redis_errors.labels("budget").inc()
            log.warning("budget not reserved: state backend unreachable")
            return None

    def cost_series(self, alias: str) -> Any:
        series = self._cost_series.get(alias)
        if series is None:
            if len(self._cost_series) >= COST_SERIES_CACHED:
                self._cost_series.clear()
            series = self._cost_series[alias] = self.metrics.cost_usd.labels(alias)
        return series

    async def debit(
        self, ctx: RequestContext, reply: Reply, reservation: Reservation | None
    ) -> None:
        usage = reply.usage
        prompt = sane_tokens(usage.prompt_tokens, "prompt_tokens") if usage else 0
        completion = sane_tokens(usage.completion_tokens, "completion_tokens") if usage else 0
        if prompt + completion == 0:
            if reservation is not None:
                await self.spend.release(reservation)
            return
        upstream = ctx.deployment.split("/", 1)[-1]
        usd = self.prices.cost(ctx.target_alias, upstream, prompt, completion)
        if usd:
            self.cost_series(ctx.alias).inc(usd)
        if ctx.principal is ANONYMOUS:
            return
        await self.spend.settle(ctx.principal, reservation, prompt + completion, usd)
