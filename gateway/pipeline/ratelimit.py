"""RateLimit: requests and tokens per window, per key, user, model alias and globally.

Request limits are taken before the call. Token limits reserve an estimate before the
call (prompt tokens counted with the tokenizer + the capped max_tokens) and settle to the
real usage when the reply completes, streams included: a cut stream or a client that left
settles with the relay's estimate. All rules of a request are decided in one Redis round
trip (gateway/ratelimit/limiter.py). Every answer carries OpenAI's x-ratelimit-* headers.
"""

from __future__ import annotations

from gateway.accounting.caps import planned_output, request_caps
from gateway.accounting.tokens import count_prompt_tokens
from gateway.accounting.usage_bounds import sane_tokens
from gateway.auth.principal import Principal
from gateway.config.access import CapsSection, LimitsConfig
from gateway.context import RequestContext
from gateway.ratelimit.headers import ratelimit_headers, refusal
from gateway.ratelimit.limiter import Decision, Limiter, RatePlan
from gateway.ratelimit.rules import request_rules
from gateway.types import Next, Reply

PLANS_CACHED = 4096


class RateLimit:
    def __init__(self, config: LimitsConfig, caps: CapsSection, limiter: Limiter) -> None:
        self.config = config
        self.caps = caps
        self.limiter = limiter
        # (id(principal), alias) -> (principal, its plan): a request's rules, built once
        # per key and model, not per request. The entry keeps the principal alive, so its
        # id is not reused while it is there.
        self._plans: dict[tuple[int, str], tuple[Principal, RatePlan]] = {}

    def plan(self, ctx: RequestContext) -> RatePlan:
        principal = ctx.principal
        key = (id(principal), ctx.target_alias or ctx.alias)
        found = self._plans.get(key)
        if found is None or found[0] is not principal:
            found = (principal, RatePlan(request_rules(self.config, ctx)))
            if len(self._plans) >= PLANS_CACHED:
                self._plans.clear()
            self._plans[key] = found
        return found[1]

    async def __call__(self, ctx: RequestContext, call_next: Next) -> Reply:
        plan = self.plan(ctx)
        if not plan.rules:
            return await call_next(ctx)
        estimate = self.estimate(ctx) if plan.counts_tokens else 0
        limiter = self.limiter
        decision = limiter.take_now(plan, estimate)  # (no coroutine when it decides here)
        if decision is None:
            on_error = self.config.on_backend_error
            decision = await limiter.acquire(plan.charges(estimate), on_error)
        if not decision.allowed:
            raise refusal(decision)  # its headers are the error's
        ratelimit_headers(decision, ctx.encoded_headers)
        if not plan.counts_tokens:
            return await call_next(ctx)
        try:
            reply = await call_next(ctx)
        except BaseException:
            await self.settle(decision, plan, estimate, 0)
            raise

        async def settle(done: Reply) -> None:
            used = sane_tokens(done.usage.total_tokens) if done.usage is not None else 0
            if not self.settled_here(decision, estimate, used):
                await self.settle(decision, plan, estimate, used)

        reply.on_complete(settle)
        return reply

    def estimate(self, ctx: RequestContext) -> int:
        if not ctx.prompt_tokens_estimate:
            ctx.prompt_tokens_estimate = count_prompt_tokens(ctx.body, ctx.endpoint)
        if ctx.endpoint == "embeddings":
            return ctx.prompt_tokens_estimate
        completion = planned_output(ctx.request, request_caps(self.caps, ctx))
        if completion is None:
            completion = self.config.default_completion_estimate
        return ctx.prompt_tokens_estimate + completion

    def settled_here(self, decision: Decision, reserved: int, used: int) -> bool:
        """Whether the reservation is settled with no await: nothing to settle, or the
        difference taken by the decision's allowance (else `settle`)."""
        return used == reserved or self.limiter.settle_tokens_now(decision, used - reserved)

    async def settle(self, decision: Decision, plan: RatePlan, reserved: int, used: int) -> None:
        """Replace each token rule's reservation by the tokens really used (a positive or
        negative delta), on the windows that took it; queued and retried when Redis
        cannot take it now."""
        if used != reserved:
            await self.limiter.settle_tokens(decision, plan.token_rules, used - reserved)
