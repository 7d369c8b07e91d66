"""Usage figures from an upstream, made safe to settle with.

An upstream (or anything pretending to be one) may report usage that is negative, huge,
not a number or not finite. Settlement (token windows, spend) must never break on it, and
a negative count must never give quota back: each count is clamped to 0..MAX_TOKENS and
every clamp is logged with the raw value's type only.
"""

from __future__ import annotations

import logging
import math

log = logging.getLogger("gateway")

MAX_TOKENS = 10_000_000  # far above any model's context: a figure past it is not real


def sane_tokens(value: object, field: str = "tokens") -> int:
    """`value` as a token count in 0..MAX_TOKENS; 0 when it is not a number."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        if value is not None:
            log.warning("usage figure is not a number; counted as 0", extra={"field": field})
        return 0
    if isinstance(value, float) and not math.isfinite(value):
        log.warning("usage figure is not finite; counted as 0", extra={"field": field})
        return 0
    count = int(value)
    if 0 <= count <= MAX_TOKENS:
        return count
    clamped = min(max(count, 0), MAX_TOKENS)
    log.warning(
        "usage figure out of range; clamped",
        extra={"field": field, "clamped_to": clamped, "negative": count < 0},
    )
    return clamped
