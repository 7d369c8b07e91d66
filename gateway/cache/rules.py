"""Which requests may use the semantic cache, and which replies may be stored."""

from __future__ import annotations

from typing import Any

from gateway.config.cache import SemanticCacheConfig
from gateway.context import RequestContext
from gateway.request import text_of

STORABLE_FINISH = frozenset({"stop", "length", "tool_calls", "function_call"})
DEFAULT_TEMPERATURE = 1.0  # OpenAI's default when the request does not say


def qualifies_for_semantic(ctx: RequestContext, config: SemanticCacheConfig) -> bool:
    body = ctx.body
    if ctx.endpoint != "chat":
        return False
    temperature = body.get("temperature", DEFAULT_TEMPERATURE)
    if temperature is None:
        temperature = DEFAULT_TEMPERATURE
    if not isinstance(temperature, int | float) or temperature > config.max_temperature:
        return False
    if body.get("n") not in (None, 1):
        return False
    if not config.allow_tools and (body.get("tools") or body.get("functions")):
        return False
    messages = body.get("messages") or []
    if not messages or len(messages) > config.max_messages:
        return False
    last = messages[-1]
    if not isinstance(last, dict) or last.get("role") != "user":
        return False
    if not all(isinstance(m, dict) and text_of(m.get("content")) is not None for m in messages):
        return False
    text = text_of(last.get("content")) or ""
    return bool(text.strip()) and len(text) <= config.max_prompt_chars


def storable_body(body: dict[str, Any] | None, *, allow_n: bool) -> dict[str, Any] | None:
    """`body` when it is a complete, successful answer worth caching; else None."""
    if not isinstance(body, dict) or "error" in body:
        return None
    choices = body.get("choices")
    if not isinstance(choices, list) or not choices:
        return None
    if len(choices) > 1 and not allow_n:
        return None
    for choice in choices:
        if not isinstance(choice, dict) or choice.get("finish_reason") not in STORABLE_FINISH:
            return None
    return body
