"""Canonical (Chat Completions) replies and gateway errors, written in Anthropic's format.

`error_type` is the one map from the gateway's error tree to Anthropic's error types;
every Messages error body, before or after the first byte, is built from it.
"""

from __future__ import annotations

import logging
from typing import Any

import orjson

from gateway.errors import AllAttemptsFailed, GatewayError, UpstreamError, UpstreamTimeout

log = logging.getLogger("gateway")
ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    503: "overloaded_error",
    529: "overloaded_error",
}
STOP_REASONS = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "refusal",
}


def error_type(err: GatewayError) -> str:
    """Anthropic's error type for a gateway error, chosen by the status the client gets."""
    if isinstance(err, AllAttemptsFailed):
        return error_type(err.attempts[-1][1]) if err.attempts else "api_error"
    if isinstance(err, UpstreamTimeout):
        return "timeout_error"
    if isinstance(err, UpstreamError) and err.upstream_status in (503, 529):
        return "overloaded_error"  # the client sees 502, but may wait and retry
    status = err.http_status
    if status in ERROR_TYPES:
        return ERROR_TYPES[status]
    return "invalid_request_error" if 400 <= status < 500 else "api_error"


def error_body(err: GatewayError) -> dict[str, Any]:
    return {"type": "error", "error": {"type": error_type(err), "message": err.message}}


def stop_reason(choice: dict[str, Any], stops: Any) -> tuple[str | None, str | None]:
    """(stop_reason, stop_sequence) for a chat choice. vLLM-style upstreams name the stop
    string that ended the reply in `stop_reason`; that is how `stop_sequence` is known."""
    finish = choice.get("finish_reason")
    matched = choice.get("stop_reason")
    if (
        finish == "stop"
        and isinstance(stops, list)
        and isinstance(matched, str)
        and matched in stops
    ):
        return "stop_sequence", matched
    if finish is None:
        return None, None
    return STOP_REASONS.get(finish, "end_turn"), None


def usage_block(usage: Any, fallback_input: int = 0) -> dict[str, int]:
    """Anthropic usage from OpenAI usage: input_tokens excludes the cached prompt tokens,
    which Anthropic reports apart as cache_read_input_tokens."""
    if not isinstance(usage, dict):
        return {"input_tokens": fallback_input, "output_tokens": 0}
    prompt = _int(usage.get("prompt_tokens"))
    details = usage.get("prompt_tokens_details")
    cached = _int(details.get("cached_tokens")) if isinstance(details, dict) else 0
    return {
        "input_tokens": max(prompt - cached, 0),
        "output_tokens": _int(usage.get("completion_tokens")),
        "cache_read_input_tokens": cached,
        "cache_creation_input_tokens": 0,
    }


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def message_body(body: dict[str, Any], request_id: str, stops: Any) -> dict[str, Any]:
    """The Messages reply for a canonical chat completion (its first choice)."""
    choices = body.get("choices")
    choice = choices[0] if isinstance(choices, list) and choices else {}
    choice = choice if isinstance(choice, dict) else {}
    message = choice.get("message")
    message = message if isinstance(message, dict) else {}
    content: list[dict[str, Any]] = []
    for text in (message.get("content"), message.get("refusal")):
        if isinstance(text, str) and text:
            content.append({"type": "text", "text": text})
    calls = message.get("tool_calls")
    for call in calls if isinstance(calls, list) else ():
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict):
            continue
        content.append(
            {
                "type": "tool_use",
                "id": call.get("id") or "",
                "name": function.get("name") or "",
                "input": tool_input(function.get("arguments")),
            }
        )
    reason, sequence = stop_reason(choice, stops)
    return {
        "id": f"msg_{request_id}",
        "type": "message",
        "role": "assistant",
        "model": body.get("model"),
        "content": content,
        "stop_reason": reason or "end_turn",
        "stop_sequence": sequence,
        "usage": usage_block(body.get("usage")),
    }


def tool_input(arguments: Any) -> dict[str, Any]:
    """A tool call's arguments as the object Anthropic clients expect; text that is not a
    JSON object is kept, under one key, rather than lost."""
    if not isinstance(arguments, str) or not arguments.strip():
        return {}
    try:
        value = orjson.loads(arguments)
    except orjson.JSONDecodeError:
        value = None
    if isinstance(value, dict):
        return value
    log.info("tool call arguments are not a JSON object; passed on as raw text")
    return {"_raw_arguments": arguments}
