"""RateLimit: requests and tokens per window, per key, user, model alias and globally.

Request limits are taken before the call. Token limits reserve an estimate before the
call (prompt tokens counted with the tokenizer + the capped max_tokens) and settle to the
real usage when the reply completes, streams included: a cut stream or a client that left
settles with the relay's estimate. All rules of a request are decided in one Redis round
trip (gateway/limiter.py). Every answer carries OpenAI's x-ratelimit-* headers.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable
from functools import lru_cache

from limits import RateLimitItem
from limits import parse as parse_rate

from gateway.config.access import CapsSection, LimitsConfig, ScopeLimits
from gateway.context import RequestContext
from gateway.errors import RateLimited
from gateway.limiter import Charge, Decision, Limiter, Rule, Window
from gateway.pipeline.caps import effective_caps, planned_max_tokens
from gateway.tokens import count_prompt_tokens
from gateway.types import Next, Reply


@lru_cache(maxsize=4096)
def rate(text: str) -> RateLimitItem:
    return parse_rate(text)


def rules_for(scope: str, identity: str, limits: ScopeLimits) -> list[Rule]:
    out = [Rule(scope, "requests", rate(r), identity) for r in limits.requests]
    return out + [Rule(scope, "tokens", rate(r), identity) for r in limits.tokens]


class RateLimit:
    def __init__(self, config: LimitsConfig, caps: CapsSection, limiter: Limiter) -> None:
        self.config = config
        self.caps = caps
        self.limiter = limiter

    def rules(self, ctx: RequestContext) -> list[Rule]:
        principal = ctx.principal
        out = rules_for("key", principal.key_id, principal.limits or self.config.default_key)
        if principal.user and not self.config.user.empty:
            out += rules_for("user", principal.user, self.config.user)
        model = self.config.models.get(ctx.alias)
        if model is not None:
            out += rules_for("model", ctx.alias, model)
        return out + rules_for("global", "*", self.config.global_)

    async def __call__(self, ctx: RequestContext, call_next: Next) -> Reply:
        rules = self.rules(ctx)
        if not rules:
            return await call_next(ctx)
        estimate = self.estimate(ctx) if any(r.kind == "tokens" for r in rules) else 0
        charges = [(r, 1 if r.kind == "requests" else estimate) for r in rules]
        decision = await self.limiter.acquire(charges, self.config.on_backend_error)
        ctx.response_headers.update(ratelimit_headers(decision.windows))
        if not decision.allowed:
            raise refusal(decision)
        token_charges = [c for c in charges if c[0].kind == "tokens"]
        if not token_charges:
            return await call_next(ctx)
        try:
            reply = await call_next(ctx)
        except BaseException:
            await self.settle(token_charges, 0)
            raise

        async def settle(done: Reply) -> None:
            used = done.usage.total_tokens if done.usage is not None else 0
            await self.settle(token_charges, used)

        reply.on_complete(settle)
        return reply

    def estimate(self, ctx: RequestContext) -> int:
        if not ctx.prompt_tokens_estimate:
            ctx.prompt_tokens_estimate = count_prompt_tokens(ctx.body, ctx.endpoint)
        if ctx.endpoint == "embeddings":
            return ctx.prompt_tokens_estimate
        caps = effective_caps(self.caps, ctx.alias, ctx.principal.caps)
        completion = planned_max_tokens(ctx.body, caps)
        if completion is None:
            completion = self.config.default_completion_estimate
        return ctx.prompt_tokens_estimate + completion

    async def settle(self, charges: list[Charge], used: int) -> None:
        """Replace each reservation by the tokens really used (positive or negative delta)."""
        await self.limiter.add([(rule, used - reserved) for rule, reserved in charges])


def refusal(decision: Decision) -> RateLimited:
    rule = decision.refused
    assert rule is not None
    retry = int(decision.retry_after())
    limit = f"{rule.item.amount} {rule.kind} per {_per(rule.item)}"
    headers = {"retry-after": str(retry), **ratelimit_headers(decision.windows)}
    return RateLimited(
        f"Rate limit reached for {rule.scope} ({limit}). Try again in {retry}s.",
        code=f"rate_limit_exceeded_{rule.scope}",
        headers=headers,
    )


def ratelimit_headers(windows: Iterable[Window]) -> dict[str, str]:
    """x-ratelimit-{limit,remaining,reset}-{requests,tokens} from the tightest window."""
    tightest: dict[str, Window] = {}
    for window in windows:
        kind: str = window.rule.kind
        if kind not in tightest or window.remaining < tightest[kind].remaining:
            tightest[kind] = window
    now = time.time()
    headers = {}
    for kind, window in tightest.items():
        headers[f"x-ratelimit-limit-{kind}"] = str(window.rule.item.amount)
        headers[f"x-ratelimit-remaining-{kind}"] = str(window.remaining)
        headers[f"x-ratelimit-reset-{kind}"] = duration(window_reset_in(window, now))
    return headers


def window_reset_in(window: Window, now: float) -> float:
    """Seconds until the window's current period ends (its count then starts to expire);
    0 while nothing is counted. Taken from the rule and the clock alone, not the backend's
    read: both backends align periods to multiples of their length since the epoch."""
    if window.remaining >= window.rule.item.amount:
        return 0.0
    period = window.rule.item.get_expiry()
    return period - now % period


def duration(seconds: float) -> str:
    """OpenAI's reset format: `1s`, `6m0s`, `1h2m3s`."""
    total = max(0, math.ceil(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes}m{secs}s"
    if minutes:
        return f"{minutes}m{secs}s"
    return f"{secs}s"


def _per(item: RateLimitItem) -> str:
    unit = item.GRANULARITY.name
    return unit if item.multiples == 1 else f"{item.multiples} {unit}s"
