"""What a client reads of a limit: the 429 refusal and OpenAI's x-ratelimit-* headers."""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Iterable

from limits import RateLimitItem

from gateway.errors import RateLimited
from gateway.ratelimit.limiter import Decision, Window


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


HEADER_NAMES = {  # (limit, remaining, reset) per kind
    kind: tuple(f"x-ratelimit-{name}-{kind}" for name in ("limit", "remaining", "reset"))
    for kind in ("requests", "tokens")
}
_REQUESTS, _TOKENS = HEADER_NAMES["requests"], HEADER_NAMES["tokens"]


def ratelimit_headers(
    windows: Iterable[Window], into: dict[str, str] | None = None
) -> dict[str, str]:
    """x-ratelimit-{limit,remaining,reset}-{requests,tokens} from the tightest window of
    each kind, written into `into` (a new dict when None). On every limited request:
    no dict of windows, the limit's text built once per rule."""
    headers: dict[str, str] = {} if into is None else into
    requests: Window | None = None
    tokens: Window | None = None
    for window in windows:
        if window.rule.kind == "requests":
            if requests is None or window.remaining < requests.remaining:
                requests = window
        elif tokens is None or window.remaining < tokens.remaining:
            tokens = window
    if requests is None and tokens is None:
        return headers
    now = time.time()
    for tightest, (limit, remaining, reset) in ((requests, _REQUESTS), (tokens, _TOKENS)):
        if tightest is not None:
            headers[limit] = tightest.rule.amount_text
            headers[remaining] = str(tightest.remaining)
            headers[reset] = duration(window_reset_in(tightest, now))
    return headers


def window_reset_in(window: Window, now: float) -> float:
    """Seconds until the window's current period ends (its count then starts to expire);
    0 while nothing is counted. Taken from the rule and the clock alone, not the backend's
    read: both backends align periods to multiples of their length since the epoch."""
    rule = window.rule
    if window.remaining >= rule.amount:
        return 0.0
    period = rule.period
    return period - now % period


def duration(seconds: float) -> str:
    """OpenAI's reset format: `1s`, `6m0s`, `1h2m3s`."""
    return _duration(max(0, math.ceil(seconds)))


@functools.lru_cache(maxsize=4096)
def _duration(total: int) -> str:
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
