"""Usage figures from an upstream, made safe to settle with.

An upstream (or anything pretending to be one) may report usage that is negative, huge,
not a number or not finite. Settlement (token windows, spend) must never break on it, and
a negative count must never give quota back: each count is clamped to 0..MAX_TOKENS and
every clamp is logged (never the raw value). A figure that is not a number makes the
usage unreadable: a stream's relay then estimates it, as when none was reported.
"""

from __future__ import annotations

import logging
import math

log = logging.getLogger("gateway")

MAX_TOKENS = 10_000_000  # far above any model's context: a figure past it is not real


def token_count(value: object, field: str = "tokens") -> int | None:
    """`value` as a token count clamped to 0..MAX_TOKENS; None when it is not a number
    (the usage is unreadable: the caller estimates instead)."""
    if type(value) is int and 0 <= value <= MAX_TOKENS:  # the usual figure, at once
        return value
    if isinstance(value, bool) or not isinstance(value, int | float):
        log.warning("usage figure is not a number", extra={"field": field})
        return None
    if isinstance(value, float) and not math.isfinite(value):
        log.warning("usage figure is not finite", extra={"field": field})
        return None
    count = int(value)
    if 0 <= count <= MAX_TOKENS:
        return count
    clamped = min(max(count, 0), MAX_TOKENS)
    log.warning(
        "usage figure out of range; clamped",
        extra={"field": field, "clamped_to": clamped, "negative": count < 0},
    )
    return clamped


def sane_tokens(value: object, field: str = "tokens") -> int:
    """A token count to settle with: clamped, 0 when it is not a number."""
    if type(value) is int and 0 <= value <= MAX_TOKENS:  # the usual figure, at once
        return value
    return token_count(value, field) or 0
