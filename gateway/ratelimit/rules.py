"""Rules: which windows apply to a scope (key, user, model, ip, global) and its identity."""

from __future__ import annotations

from functools import lru_cache

from limits import RateLimitItem
from limits import parse as parse_rate

from gateway.config.access import ScopeLimits
from gateway.limiter import Rule


@lru_cache(maxsize=4096)
def rate(text: str) -> RateLimitItem:
    return parse_rate(text)


def rules_for(scope: str, identity: str, limits: ScopeLimits) -> list[Rule]:
    out = [Rule(scope, "requests", rate(r), identity) for r in limits.requests]
    return out + [Rule(scope, "tokens", rate(r), identity) for r in limits.tokens]
