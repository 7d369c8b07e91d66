"""Rules: which windows apply to a scope (key, user, model, ip, global) and its identity."""

from __future__ import annotations

from functools import lru_cache

from limits import RateLimitItem
from limits import parse as parse_rate

from gateway.config.access import LimitsConfig, ScopeLimits
from gateway.context import RequestContext
from gateway.limiter import Rule


@lru_cache(maxsize=4096)
def rate(text: str) -> RateLimitItem:
    return parse_rate(text)


def rules_for(scope: str, identity: str, limits: ScopeLimits) -> list[Rule]:
    out = [Rule(scope, "requests", rate(r), identity) for r in limits.requests]
    return out + [Rule(scope, "tokens", rate(r), identity) for r in limits.tokens]


def request_rules(config: LimitsConfig, ctx: RequestContext) -> list[Rule]:
    """Every window a request is counted in: its key, user, target model and global."""
    principal = ctx.principal
    out = rules_for("key", principal.key_id, principal.limits or config.default_key)
    if principal.user and not config.user.empty:
        out += rules_for("user", principal.user, config.user)
    alias = ctx.target_alias or ctx.alias  # limits run after route: the target's
    model = config.models.get(alias)
    if model is not None:
        out += rules_for("model", alias, model)
    return out + rules_for("global", "*", config.global_)
