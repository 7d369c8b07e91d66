"""Replay a cached reply body as the stream a provider would have sent.

For chat: per choice a role delta, the content (and refusal, tool calls, function call),
then an empty delta with the finish reason; a usage chunk (no choices) only when the
client asked with `stream_options.include_usage`. Legacy completions replay as
`text_completion` chunks. The relay adds the `data: [DONE]` end.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable
from typing import Any

import orjson


async def replay(
    body: dict[str, Any], *, include_usage: bool, on_end: Callable[[], None] | None = None
) -> AsyncGenerator[bytes, None]:
    """Stream payloads for `body`; `on_end` runs when the stream ends or is closed."""
    try:
        for chunk in replay_chunks(body, include_usage=include_usage):
            yield orjson.dumps(chunk)
    finally:
        if on_end is not None:
            on_end()


def replay_chunks(body: dict[str, Any], *, include_usage: bool) -> list[dict[str, Any]]:
    chat = body.get("object") == "chat.completion"
    head: dict[str, Any] = {
        "id": body.get("id"),
        "object": "chat.completion.chunk" if chat else "text_completion",
        "created": body.get("created"),
        "model": body.get("model"),
    }
    if body.get("system_fingerprint"):
        head["system_fingerprint"] = body["system_fingerprint"]
    chunks: list[dict[str, Any]] = []
    for choice in body.get("choices") or ():
        parts = _chat_parts(choice) if chat else _text_parts(choice)
        chunks.extend({**head, "choices": [part]} for part in parts)
    if include_usage and isinstance(body.get("usage"), dict):
        chunks.append({**head, "choices": [], "usage": body["usage"]})
    return chunks


def _chat_parts(choice: dict[str, Any]) -> list[dict[str, Any]]:
    index = choice.get("index", 0)
    message = choice.get("message") or {}

    def part(
        delta: dict[str, Any], finish: str | None = None, logprobs: Any = None
    ) -> dict[str, Any]:
        return {"index": index, "delta": delta, "logprobs": logprobs, "finish_reason": finish}

    parts = [part({"role": message.get("role") or "assistant", "content": ""})]
    if message.get("content"):
        parts.append(part({"content": message["content"]}, logprobs=choice.get("logprobs")))
    if message.get("refusal"):
        parts.append(part({"refusal": message["refusal"]}))
    calls = message.get("tool_calls")
    if calls:
        indexed = [{"index": i, **call} for i, call in enumerate(calls)]
        parts.append(part({"tool_calls": indexed}))
    if message.get("function_call"):
        parts.append(part({"function_call": message["function_call"]}))
    parts.append(part({}, finish=choice.get("finish_reason")))
    return parts


def _text_parts(choice: dict[str, Any]) -> list[dict[str, Any]]:
    index = choice.get("index", 0)
    return [
        {
            "index": index,
            "text": choice.get("text") or "",
            "logprobs": choice.get("logprobs"),
            "finish_reason": None,
        },
        {
            "index": index,
            "text": "",
            "logprobs": None,
            "finish_reason": choice.get("finish_reason"),
        },
    ]
