"""The built-in deterministic provider: the quickstart, tests and benchmarks use it.

It echoes the newest user turn (or answers a fixed text), splits it into `chunks`
stream events `chunk_delay_ms` apart, reports usage (configured, or counted in words),
and can be told to fail with a status or to break a stream after k chunks. The `tools`
and `json` modes (mock_agent.py) drive agent loops and structured output offline.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import random
import time
from collections.abc import AsyncGenerator
from typing import Any

import orjson

from gateway.config.schema import MockConfig, ProviderConfig
from gateway.errors import InvalidRequest, UpstreamUnavailable
from gateway.providers.errors import upstream_status_error
from gateway.providers.mock_agent import ToolCall, json_answer, tool_call_for, tool_result_text
from gateway.request import CanonicalRequest
from gateway.types import Endpoint, Reply, Usage


class MockProvider:
    def __init__(self, name: str, config: ProviderConfig) -> None:
        self.name = name
        self.options: MockConfig = config.mock

    async def aclose(self) -> None:
        return None

    async def send(self, endpoint: Endpoint, body: dict[str, Any], *, stream: bool) -> Reply:
        opts = self.options
        if opts.latency_ms:
            await asyncio.sleep(opts.latency_ms / 1000)
        if opts.fail_status is not None:
            error = orjson.dumps({"error": {"message": opts.fail_message}})
            raise upstream_status_error(opts.fail_status, error)
        if endpoint == "embeddings":
            return self._embeddings(body)
        if endpoint == "completions" and not isinstance(body.get("prompt"), str | list):
            raise InvalidRequest("'prompt' must be a string or an array.", param="prompt")
        call = tool_call_for(body) if endpoint == "chat" and opts.mode == "tools" else None
        text = call.arguments if call else self._answer(endpoint, body)
        usage = self._usage(endpoint, body, text)
        model = str(body.get("model", ""))
        if call is not None:
            if stream:
                return Reply(stream=self._tool_stream(model, call, usage, body))
            return Reply(body=_tool_body(model, call, usage), usage=usage)
        if stream:
            return Reply(stream=self._stream(endpoint, model, text, usage, body))
        return Reply(body=_complete_body(endpoint, model, text, usage), usage=usage)

    def _answer(self, endpoint: Endpoint, body: dict[str, Any]) -> str:
        mode = self.options.mode
        if mode == "fixed":
            return self.options.text
        prompt = _prompt_text(endpoint, body, newest_only=True)
        agent = None
        if endpoint == "chat" and mode == "tools":
            agent = tool_result_text(body)
        elif endpoint == "chat" and mode == "json":
            agent = json_answer(body, prompt)
        return agent or prompt or self.options.text

    def _usage(self, endpoint: Endpoint, body: dict[str, Any], text: str) -> Usage:
        prompt = self.options.prompt_tokens
        if prompt is None:
            prompt = _count_words(_prompt_text(endpoint, body, newest_only=False))
        completion = self.options.completion_tokens
        if completion is None:
            completion = _count_words(text)
        return Usage(prompt, completion)

    async def _stream(
        self, endpoint: Endpoint, model: str, text: str, usage: Usage, body: dict[str, Any]
    ) -> AsyncGenerator[bytes, None]:
        opts = self.options
        pieces = _split(text, opts.chunks)
        ident, created = _ident(endpoint), int(time.time())
        for i, piece in enumerate(pieces):
            if opts.fail_after_chunks is not None and i >= opts.fail_after_chunks:
                raise UpstreamUnavailable("The mock provider broke the stream as configured.")
            if i and opts.chunk_delay_ms:
                await asyncio.sleep(opts.chunk_delay_ms / 1000)
            last = i == len(pieces) - 1
            chunk = _chunk(endpoint, ident, created, model, piece, first=i == 0, last=last)
            yield orjson.dumps(chunk)
        options = body.get("stream_options")
        if isinstance(options, dict) and options.get("include_usage"):
            yield orjson.dumps(
                {
                    "id": ident,
                    "object": _chunk_object(endpoint),
                    "created": created,
                    "model": model,
                    "choices": [],
                    "usage": _usage_body(usage),
                }
            )

    async def _tool_stream(
        self, model: str, call: ToolCall, usage: Usage, body: dict[str, Any]
    ) -> AsyncGenerator[bytes, None]:
        """The call as OpenAI streams one: id and name first, then the arguments in pieces."""
        ident, created = _ident("chat"), int(time.time())
        head = {"id": ident, "object": "chat.completion.chunk", "created": created, "model": model}
        opening = {"index": 0, "id": call.ident, "type": "function"}
        opening["function"] = {"name": call.name, "arguments": ""}
        deltas: list[dict[str, Any]] = [
            {"role": "assistant", "content": None, "tool_calls": [opening]}
        ]
        for piece in _split(call.arguments, self.options.chunks):
            deltas.append({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]})
        for i, delta in enumerate(deltas):
            if i and self.options.chunk_delay_ms:
                await asyncio.sleep(self.options.chunk_delay_ms / 1000)
            yield orjson.dumps(
                {**head, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]}
            )
        end = {"index": 0, "delta": {}, "finish_reason": "tool_calls"}
        yield orjson.dumps({**head, "choices": [end]})
        options = body.get("stream_options")
        if isinstance(options, dict) and options.get("include_usage"):
            yield orjson.dumps({**head, "choices": [], "usage": _usage_body(usage)})

    def _embeddings(self, body: dict[str, Any]) -> Reply:
        inputs = body.get("input")
        if isinstance(inputs, str):
            inputs = [inputs]
        if not isinstance(inputs, list) or not inputs:
            raise InvalidRequest("'input' must be a string or a non-empty list.", param="input")
        dim = self.options.embedding_dim
        data = [
            {"object": "embedding", "index": i, "embedding": _vector(str(item), dim)}
            for i, item in enumerate(inputs)
        ]
        tokens = sum(_count_words(str(item)) for item in inputs)
        usage = Usage(tokens, 0)
        body_out = {
            "object": "list",
            "data": data,
            "model": str(body.get("model", "")),
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }
        return Reply(body=body_out, usage=usage)


def _prompt_text(endpoint: Endpoint, body: dict[str, Any], *, newest_only: bool) -> str:
    request = CanonicalRequest(endpoint, body)
    if newest_only and endpoint == "chat":
        return request.newest_user_text()
    return request.prompt_text()


def _count_words(text: str) -> int:
    return max(1, len(text.split())) if text else 0


def _split(text: str, n: int) -> list[str]:
    size = max(1, math.ceil(len(text) / n))
    return [text[i : i + size] for i in range(0, len(text), size)] or [""]


def _ident(endpoint: Endpoint) -> str:
    prefix = "chatcmpl" if endpoint == "chat" else "cmpl"
    return f"{prefix}-mock{random.getrandbits(80):020x}"  # an id, not a secret


def _chunk_object(endpoint: Endpoint) -> str:
    return "chat.completion.chunk" if endpoint == "chat" else "text_completion"


def _chunk(
    endpoint: Endpoint,
    ident: str,
    created: int,
    model: str,
    piece: str,
    *,
    first: bool,
    last: bool,
) -> dict[str, Any]:
    finish = "stop" if last else None
    if endpoint == "chat":
        delta = {"role": "assistant", "content": piece} if first else {"content": piece}
        choice: dict[str, Any] = {"index": 0, "delta": delta, "finish_reason": finish}
    else:
        choice = {"index": 0, "text": piece, "logprobs": None, "finish_reason": finish}
    return {
        "id": ident,
        "object": _chunk_object(endpoint),
        "created": created,
        "model": model,
        "choices": [choice],
    }


def _complete_body(endpoint: Endpoint, model: str, text: str, usage: Usage) -> dict[str, Any]:
    if endpoint == "chat":
        choice: dict[str, Any] = {
            "index": 0,
            "message": {"role": "assistant", "content": text},
            "finish_reason": "stop",
        }
        obj = "chat.completion"
    else:
        choice = {"index": 0, "text": text, "logprobs": None, "finish_reason": "stop"}
        obj = "text_completion"
    return {
        "id": _ident(endpoint),
        "object": obj,
        "created": int(time.time()),
        "model": model,
        "choices": [choice],
        "usage": _usage_body(usage),
    }


def _tool_body(model: str, call: ToolCall, usage: Usage) -> dict[str, Any]:
    function = {"name": call.name, "arguments": call.arguments}
    message = {
        "role": "assistant",
        "content": None,
        "tool_calls": [{"id": call.ident, "type": "function", "function": function}],
    }
    return {
        "id": _ident("chat"),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": "tool_calls"}],
        "usage": _usage_body(usage),
    }


def _usage_body(usage: Usage) -> dict[str, int]:
    return {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.total_tokens,
    }


def _vector(text: str, dim: int) -> list[float]:
    digest = hashlib.sha256(text.encode()).digest()
    raw = [(digest[i % len(digest)] - 127.5) / 127.5 for i in range(dim)]
    norm = math.sqrt(sum(x * x for x in raw)) or 1.0
    return [x / norm for x in raw]
