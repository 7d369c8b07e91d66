"""Classify provider failures once: status → error class, retryable or not."""

from __future__ import annotations

import email.utils
import time
from typing import Any

import orjson

from gateway.errors import UpstreamError

RETRYABLE_STATUSES = frozenset({408, 409, 425, 429, 500, 502, 503, 504, 520, 522, 524, 529})
MAX_MESSAGE_CHARS = 500


def upstream_status_error(
    status: int,
    body: bytes,
    *,
    retry_after: str | None = None,
    secrets: tuple[str, ...] = (),
) -> UpstreamError:
    """An UpstreamError for a provider's error answer, with its message and no secrets."""
    message, code, param = _error_fields(body)
    message = scrub(message or f"The provider answered with status {status}.", secrets)
    return UpstreamError(
        message[:MAX_MESSAGE_CHARS],
        upstream_status=status,
        retryable=status in RETRYABLE_STATUSES,
        retry_after=parse_retry_after(retry_after),
        code=code,
        param=param,
    )


def scrub(text: str, secrets: tuple[str, ...]) -> str:
    for secret in secrets:
        if secret and len(secret) >= 6:
            text = text.replace(secret, "***")
    return text


def parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _error_fields(body: bytes) -> tuple[str | None, str | None, str | None]:
    try:
        data: Any = orjson.loads(body)
    except orjson.JSONDecodeError:
        text = body.decode("utf-8", "replace").strip()
        return (text or None), None, None
    error = data.get("error") if isinstance(data, dict) else None
    if isinstance(error, dict):
        return _str(error.get("message")), _str(error.get("code")), _str(error.get("param"))
    if isinstance(error, str):
        return error, None, None
    if isinstance(data, dict) and isinstance(data.get("message"), str):
        return data["message"], None, None
    return None, None, None


def _str(value: Any) -> str | None:
    return None if value is None else str(value)
