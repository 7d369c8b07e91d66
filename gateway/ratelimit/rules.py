"""Rules: which windows apply to a scope (key, user, model, ip, global) and its identity."""

from __future__ import annotations

from functools import lru_cache

from limits import RateLimitItem
from limits import parse as parse_rate

from gateway.config.access import LimitsConfig, ScopeLimits
from gateway.context import RequestContext
from gateway.ratelimit.limiter import Rule


@lru_cache(maxsize=4096)
def rate(text: str) -> RateLimitItem:
    return parse_rate(text)


# (scope, identity, id(limits)) -> (limits, its rules): built once per key and config
# generation, not per request. The entry keeps `limits` alive, so its id is not reused.
_RULES: dict[tuple[str, str, int], tuple[ScopeLimits, tuple[Rule, ...]]] = {}
RULES_CACHED = 4096


def rules_for(scope: str, identity: str, limits: ScopeLimits) -> list[Rule]:
    cached = _RULES.get((scope, identity, id(limits)))
    if cached is not None and cached[0] is limits:
        return list(cached[1])
    out = [Rule(scope, "requests", rate(r), identity) for r in limits.requests]
    out += [Rule(scope, "tokens", rate(r), identity) for r in limits.tokens]
    if len(_RULES) >= RULES_CACHED:
        _RULES.clear()
    _RULES[(scope, identity, id(limits))] = (limits, tuple(out))
    return out


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
