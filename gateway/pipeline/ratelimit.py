"""RateLimit: requests and tokens per window, per key, user, model alias and globally.

Request limits are taken before the call. Token limits reserve an estimate before the
call (prompt tokens counted with the tokenizer + the capped max_tokens) and settle to the
real usage when the reply completes, streams included: a cut stream or a client that left
settles with the relay's estimate. All rules of a request are decided in one Redis round
trip (gateway/ratelimit/limiter.py). Every answer carries OpenAI's x-ratelimit-* headers.
"""

from __future__ import annotations

from gateway.accounting.caps import effective_caps, planned_output
from gateway.accounting.tokens import count_prompt_tokens
from gateway.accounting.usage_bounds import sane_tokens
from gateway.auth.principal import Principal
from gateway.config.access import CapsSection, LimitsConfig
from gateway.context import RequestContext
from gateway.ratelimit.headers import ratelimit_headers, refusal
from gateway.ratelimit.limiter import Charge, Decision, Limiter, Rule
from gateway.ratelimit.rules import request_rules
from gateway.types import Next, Reply

PLANS_CACHED = 4096


class RateLimit:
    def __init__(self, config: LimitsConfig, caps: CapsSection, limiter: Limiter) -> None:
        self.config = config
        self.caps = caps
        self.limiter = limiter
        # (id(principal), alias) -> (principal, its rules, whether any counts tokens): a
        # request's rules, built once per key and model, not per request. The entry keeps
        # the principal alive, so its id is not reused while it is there.
        self._plans: dict[tuple[int, str], tuple[Principal, list[Rule], bool]] = {}

    def plan(self, ctx: RequestContext) -> tuple[list[Rule], bool]:
        principal = ctx.principal
        key = (id(principal), ctx.target_alias or ctx.alias)
        found = self._plans.get(key)
        if found is None or found[0] is not principal:
            rules = request_rules(self.config, ctx)
            found = (principal, rules, any(r.kind == "tokens" for r in rules))
            if len(self._plans) >= PLANS_CACHED:
                self._plans.clear()
            self._plans[key] = found
        return found[1], found[2]

    async def __call__(self, ctx: RequestContext, call_next: Next) -> Reply:
        rules, counts_tokens = self.plan(ctx)
        if not rules:
            return await call_next(ctx)
        estimate = self.estimate(ctx) if counts_tokens else 0
        charges = [(r, 1 if r.kind == "requests" else estimate) for r in rules]
        decision = await self.limiter.acquire(charges, self.config.on_backend_error)
        ratelimit_headers(decision.windows, ctx.response_headers)
        if not decision.allowed:
            raise refusal(decision)
        if not counts_tokens:
            return await call_next(ctx)
        token_charges = [c for c in charges if c[0].kind == "tokens"]
        try:
            reply = await call_next(ctx)
        except BaseException:
            await self.settle(decision, token_charges, 0)
            raise

        async def settle(done: Reply) -> None:
            used = sane_tokens(done.usage.total_tokens) if done.usage is not None else 0
            await self.settle(decision, token_charges, used)

        reply.on_complete(settle)
        return reply

    def estimate(self, ctx: RequestContext) -> int:
        if not ctx.prompt_tokens_estimate:
            ctx.prompt_tokens_estimate = count_prompt_tokens(ctx.body, ctx.endpoint)
        if ctx.endpoint == "embeddings":
            return ctx.prompt_tokens_estimate
        caps = effective_caps(self.caps, ctx.target_alias or ctx.alias, ctx.principal.caps)
        completion = planned_output(ctx.request, caps)
        if completion is None:
            completion = self.config.default_completion_estimate
        return ctx.prompt_tokens_estimate + completion

    async def settle(self, decision: Decision, charges: list[Charge], used: int) -> None:
        """Replace each reservation by the tokens really used (positive or negative delta),
        on the windows that took it; queued and retried when Redis cannot take it now."""
        deltas = [(rule, used - reserved) for rule, reserved in charges]
        await self.limiter.settle(decision, deltas)
