"""What a client reads of a limit: the 429 refusal and OpenAI's x-ratelimit-* headers."""

from __future__ import annotations

import functools
import math
import time

from limits import RateLimitItem

from gateway.errors import RateLimited
from gateway.ratelimit.limiter import Decision, Rule, Window
from gateway.ratelimit.windows import Shown

# ASGI's form of response headers: lower-case latin-1 names and values.
RawHeaders = list[tuple[bytes, bytes]]


def refusal(decision: Decision) -> RateLimited:
    rule = decision.refused
    assert rule is not None
    retry = int(decision.retry_after())
    limit = f"{rule.item.amount} {rule.kind} per {_per(rule.item)}"
    return RateLimited(
        f"Rate limit reached for {rule.scope} ({limit}). Try again in {retry}s.",
        code=f"rate_limit_exceeded_{rule.scope}",
        headers={"retry-after": str(retry), **as_text(ratelimit_headers(decision))},
    )


def as_text(headers: RawHeaders) -> dict[str, str]:
    """Encoded headers as a dict of text (an error's headers, a test's reading)."""
    return {name.decode("latin-1"): value.decode("latin-1") for name, value in headers}


HEADER_NAMES = {  # (limit, remaining, reset) per kind
    kind: tuple(f"x-ratelimit-{name}-{kind}".encode() for name in ("limit", "remaining", "reset"))
    for kind in ("requests", "tokens")
}
_REQUESTS, _TOKENS = HEADER_NAMES["requests"], HEADER_NAMES["tokens"]


def ratelimit_headers(decision: Decision, into: RawHeaders | None = None) -> RawHeaders:
    """x-ratelimit-{limit,remaining,reset}-{requests,tokens} from the tightest window of
    each kind, in ASGI's form, appended to `into` (a new list when None): a reply sends
    them as they are (`RequestContext.encoded_headers`), with no encoding per reply."""
    headers: RawHeaders = [] if into is None else into
    if decision.allowance is not None:
        return _held_headers(decision.allowance.left, decision.shown, headers)
    requests: Window | None = None
    tokens: Window | None = None
    for window in decision.windows:
        if window.rule.kind == "requests":
            if requests is None or window.remaining < requests.remaining:
                requests = window
        elif tokens is None or window.remaining < tokens.remaining:
            tokens = window
    now = time.time()
    if requests is not None:
        _put(headers, _REQUESTS, requests.rule, requests.remaining, now)
    if tokens is not None:
        _put(headers, _TOKENS, tokens.rule, tokens.remaining, now)
    return headers


def _held_headers(left: list[float], shown: Shown, headers: RawHeaders) -> RawHeaders:
    """As `ratelimit_headers`, for a decision taken from an allowance: each shown rule's
    room is its lease's as last read plus what the allowance still holds of its field
    (0: requests, 1: tokens). No window objects per request."""
    requests: Rule | None = None
    tokens: Rule | None = None
    requests_room = tokens_room = 0
    for rule, lease, field in shown:
        room = int(lease.remaining + left[field])
        if field == 0:
            if requests is None or room < requests_room:
                requests, requests_room = rule, room
        elif tokens is None or room < tokens_room:
            tokens, tokens_room = rule, room
    now = time.time()
    if requests is not None:
        _put(headers, _REQUESTS, requests, requests_room if requests_room > 0 else 0, now)
    if tokens is not None:
        _put(headers, _TOKENS, tokens, tokens_room if tokens_room > 0 else 0, now)
    return headers


def _put(
    headers: RawHeaders, names: tuple[bytes, ...], rule: Rule, remaining: int, now: float
) -> None:
    limit, left, reset = names
    headers += (
        (limit, rule.amount_header),
        (left, b"%d" % remaining),
        (reset, _encoded_duration(reset_seconds(rule, remaining, now))),
    )


def reset_seconds(rule: Rule, remaining: int, now: float) -> int:
    """Whole seconds until the window's current period ends (its count then starts to
    expire), rounded up; 0 while nothing is counted. Taken from the rule and the clock
    alone, not the backend's read: both backends align periods to multiples of their
    length since the epoch (`period - now % period`, rounded up, for a whole period)."""
    if remaining >= rule.amount:
        return 0
    period = rule.period
    return period - int(now) % period


def duration(seconds: float) -> str:
    """OpenAI's reset format: `1s`, `6m0s`, `1h2m3s`."""
    return _duration(max(0, math.ceil(seconds)))


@functools.lru_cache(maxsize=4096)
def _encoded_duration(total: int) -> bytes:
    return _duration(total).encode()


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
