"""Which failures are retried or fall back, and how long to wait before the next try."""

from __future__ import annotations

import random

from gateway.config.routing import FallbackReason, RetryConfig
from gateway.errors import GatewayError, InputTooLarge, UpstreamError

CONTEXT_WINDOW_CODES = frozenset({"context_length_exceeded", "string_above_max_length"})
CONTENT_POLICY_CODES = frozenset({"content_filter", "content_policy_violation"})


def is_retryable(err: GatewayError) -> bool:
    """Connection errors, timeouts, 429 and 5xx (classified by the adapter); never 4xx."""
    return isinstance(err, UpstreamError) and err.retryable


def fallback_reason(err: GatewayError) -> FallbackReason | None:
    """The opt-in reason a non-retryable error may still move on to a fallback alias."""
    if isinstance(err, InputTooLarge) or err.code in CONTEXT_WINDOW_CODES:
        return "context_window"
    if err.code in CONTENT_POLICY_CODES:
        return "content_policy"
    return None


def may_fall_back(err: GatewayError, allowed: list[FallbackReason]) -> bool:
    if is_retryable(err):
        return True
    reason = fallback_reason(err)
    return reason is not None and reason in allowed


def backoff_seconds(
    policy: RetryConfig,
    retry_number: int,
    retry_after: float | None = None,
    rng: random.Random | None = None,
) -> float:
    """Exponential backoff with equal jitter (half fixed, half random), at least the
    upstream's Retry-After when it names one. `retry_number` counts from 1."""
    ceiling = min(policy.backoff_max_ms, policy.backoff_base_ms * 2 ** (retry_number - 1)) / 1000
    delay: float = ceiling / 2 + (rng or random).random() * ceiling / 2
    if retry_after is not None:
        delay = max(delay, retry_after)
    return delay


def retry_after_of(err: GatewayError) -> float | None:
    return err.retry_after if isinstance(err, UpstreamError) else None
