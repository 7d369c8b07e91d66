"""The built-in deterministic provider: the quickstart, tests and benchmarks use it.

It echoes the newest user turn (or answers a fixed text), splits it into `chunks`
stream events `chunk_delay_ms` apart, reports usage (configured, or counted in words),
and can be told to fail with a status or to break a stream after k chunks.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import orjson

from gateway.config.schema import MockConfig, ProviderConfig
from gateway.errors import InvalidRequest, UpstreamUnavailable
from gateway.providers.errors import upstream_status_error
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
        text = self._answer(endpoint, body)
        usage = self._usage(endpoint, body, text)
        model = str(body.get("model", ""))
        if stream:
            return Reply(stream=self._stream(endpoint, model, text, usage, body))
        return Reply(body=_complete_body(endpoint, model, text, usage), usage=usage)

    def _answer(self, endpoint: Endpoint, body: dict[str, Any]) -> str:
        if self.options.mode == "fixed":
            return self.options.text
        prompt = _prompt_text(endpoint, body, newest_only=True)
        return prompt or self.options.text

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
    ) -> AsyncIterator[bytes]:
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
    if endpoint == "completions":
        prompt = body.get("prompt")
        return prompt if isinstance(prompt, str) else " ".join(map(str, prompt or []))
    messages = body.get("messages")
    if not isinstance(messages, list):
        return ""
    texts = [_message_text(m) for m in messages if isinstance(m, dict)]
    if newest_only:
        users = [
            _message_text(m) for m in messages if isinstance(m, dict) and m.get("role") == "user"
        ]
        return users[-1] if users else ""
    return " ".join(texts)


def _message_text(message: dict[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return ""


def _count_words(text: str) -> int:
    return max(1, len(text.split())) if text else 0


def _split(text: str, n: int) -> list[str]:
    size = max(1, math.ceil(len(text) / n))
    return [text[i : i + size] for i in range(0, len(text), size)] or [""]


def _ident(endpoint: Endpoint) -> str:
    prefix = "chatcmpl" if endpoint == "chat" else "cmpl"
    return f"{prefix}-mock{uuid.uuid4().hex[:20]}"


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
