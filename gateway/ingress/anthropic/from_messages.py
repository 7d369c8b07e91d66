"""Anthropic Messages replies and stream events, written as canonical chat completions and
chunks: the renderer's translation reversed, for chat clients of `kind: anthropic`."""

from __future__ import annotations

import time
from typing import Any

import orjson

from gateway.errors import UpstreamError
from gateway.types import Usage

FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}


def usage_of(usage: Any) -> Usage | None:
    """Prompt tokens as OpenAI counts them: Anthropic's input plus cache reads and writes."""
    if not isinstance(usage, dict):
        return None
    cached = _int(usage.get("cache_read_input_tokens"))
    written = _int(usage.get("cache_creation_input_tokens"))
    return Usage(
        _int(usage.get("input_tokens")) + cached + written, _int(usage.get("output_tokens"))
    )


def openai_usage(usage: Usage, cached: int) -> dict[str, Any]:
    return {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.total_tokens,
        "prompt_tokens_details": {"cached_tokens": cached},
    }


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def chat_body(message: dict[str, Any]) -> tuple[dict[str, Any], Usage | None]:
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    for block in message.get("content") or ():
        kind = block.get("type") if isinstance(block, dict) else None
        if kind == "text":
            texts.append(str(block.get("text", "")))
        elif kind == "tool_use":
            arguments = orjson.dumps(block.get("input") or {}).decode()
            function = {"name": block.get("name"), "arguments": arguments}
            calls.append({"id": block.get("id"), "type": "function", "function": function})
    reply: dict[str, Any] = {"role": "assistant", "content": "".join(texts) or None}
    if calls:
        reply["tool_calls"] = calls
    usage = usage_of(message.get("usage"))
    raw_usage = message.get("usage")
    raw_usage = raw_usage if isinstance(raw_usage, dict) else {}
    body = {
        "id": f"chatcmpl-{message.get('id', '')}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": message.get("model"),
        "choices": [
            {
                "index": 0,
                "message": reply,
                "finish_reason": FINISH_REASONS.get(message.get("stop_reason") or "", "stop"),
            }
        ],
    }
    if usage is not None:
        body["usage"] = openai_usage(usage, _int(raw_usage.get("cache_read_input_tokens")))
    return body, usage


class ChunkWriter:
    """Feed each Messages event (parsed); get the chat chunks it completes."""

    def __init__(self) -> None:
        self.head: dict[str, Any] = {"object": "chat.completion.chunk"}
        self.tool_index = -1  # chat numbers tool calls from 0, across the turn
        self.block_tool: dict[int, int] = {}  # content block index -> tool call index
        self.usage: dict[str, Any] = {}
        self.finished = False

    def feed(self, data: dict[str, Any]) -> list[bytes]:
        kind = data.get("type")
        if kind == "message_start":
            return self._start(data.get("message") or {})
        if kind == "content_block_start":
            return self._block(data)
        if kind == "content_block_delta":
            return self._delta(data)
        if kind == "message_delta":
            self.usage.update(data.get("usage") or {})
            reason = (data.get("delta") or {}).get("stop_reason")
            return [self._chunk({}, FINISH_REASONS.get(reason or "", "stop"))]
        if kind == "message_stop":
            self.finished = True
            usage = usage_of(self.usage) or Usage()
            cached = _int(self.usage.get("cache_read_input_tokens"))
            return [self._dump({**self.head, "choices": [], "usage": openai_usage(usage, cached)})]
        if kind == "error":
            error = data.get("error") or {}
            message = error.get("message") if isinstance(error, dict) else None
            raise UpstreamError(str(message or "The provider's stream failed."))
        return []  # ping, content_block_stop, thinking: nothing a chat client reads

    def _start(self, message: dict[str, Any]) -> list[bytes]:
        self.head.update(
            id=f"chatcmpl-{message.get('id', '')}",
            created=int(time.time()),
            model=message.get("model"),
        )
        self.usage.update(message.get("usage") or {})
        return [self._chunk({"role": "assistant", "content": ""}, None)]

    def _block(self, data: dict[str, Any]) -> list[bytes]:
        block = data.get("content_block") or {}
        if block.get("type") == "text" and block.get("text"):
            return [self._chunk({"content": block["text"]}, None)]
        if block.get("type") != "tool_use":
            return []
        self.tool_index += 1
        self.block_tool[int(data.get("index") or 0)] = self.tool_index
        call = {
            "index": self.tool_index,
            "id": block.get("id"),
            "type": "function",
            "function": {"name": block.get("name"), "arguments": ""},
        }
        return [self._chunk({"tool_calls": [call]}, None)]

    def _delta(self, data: dict[str, Any]) -> list[bytes]:
        delta = data.get("delta") or {}
        kind = delta.get("type")
        if kind == "text_delta":
            return [self._chunk({"content": delta.get("text", "")}, None)]
        if kind == "input_json_delta":
            index = self.block_tool.get(int(data.get("index") or 0), self.tool_index)
            call = {"index": index, "function": {"arguments": delta.get("partial_json", "")}}
            return [self._chunk({"tool_calls": [call]}, None)]
        return []

    def _chunk(self, delta: dict[str, Any], finish: str | None) -> bytes:
        choice = {"index": 0, "delta": delta, "finish_reason": finish}
        return self._dump({**self.head, "choices": [choice]})

    @staticmethod
    def _dump(chunk: dict[str, Any]) -> bytes:
        return orjson.dumps(chunk)
