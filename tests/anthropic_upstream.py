"""A fake Anthropic Messages API (POST /v1/messages) for the litellm provider's tests.

It speaks Anthropic's wire format (JSON replies, SSE streams of message_start …
message_stop events, `{"type": "error", ...}` bodies), records what it receives and
when a stream was closed, and can be told to fail the way Anthropic does.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    404: "not_found_error",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}


@dataclass
class AnthropicBehaviour:
    status: int = 200
    error_message: str = "upstream exploded"
    retry_after: str | None = None
    hang_seconds: float = 0.0
    chunks: int = 3
    chunk_delay: float = 0.0
    cut_after: int | None = None  # end the stream after k text deltas, without message_stop
    text: str = "Hello from Anthropic"
    input_tokens: int = 12
    output_tokens: int = 5


@dataclass
class FakeAnthropic:
    behaviour: AnthropicBehaviour = field(default_factory=AnthropicBehaviour)
    requests: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    stream_closed_at: list[float] = field(default_factory=list)

    def reset(self, **changes: Any) -> None:
        self.behaviour = AnthropicBehaviour(**changes)
        self.requests.clear()
        self.headers.clear()
        self.stream_closed_at.clear()

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/v1/messages", self.messages, methods=["POST"])])

    async def messages(self, request: Request) -> Response:
        body = orjson.loads(await request.body())
        self.requests.append(body)
        self.headers.append(dict(request.headers))
        b = self.behaviour
        if b.hang_seconds:
            await asyncio.sleep(b.hang_seconds)
        if b.status >= 400:
            return self._error()
        if body.get("stream"):
            return StreamingResponse(self._stream(body), media_type="text/event-stream")
        return JSONResponse(
            {
                "id": "msg_fake01",
                "type": "message",
                "role": "assistant",
                "model": body.get("model"),
                "content": [{"type": "text", "text": b.text}],
                "stop_reason": "end_turn",
                "stop_sequence": None,
                "usage": {"input_tokens": b.input_tokens, "output_tokens": b.output_tokens},
            }
        )

    def _error(self) -> Response:
        b = self.behaviour
        headers = {"retry-after": b.retry_after} if b.retry_after else {}
        error_type = ERROR_TYPES.get(b.status, "api_error")
        body = {"type": "error", "error": {"type": error_type, "message": b.error_message}}
        return JSONResponse(body, status_code=b.status, headers=headers)

    async def _stream(self, body: dict[str, Any]) -> AsyncIterator[bytes]:
        b = self.behaviour
        try:
            yield _event(
                "message_start",
                {
                    "message": {
                        "id": "msg_fake01",
                        "type": "message",
                        "role": "assistant",
                        "model": body.get("model"),
                        "content": [],
                        "stop_reason": None,
                        "stop_sequence": None,
                        "usage": {"input_tokens": b.input_tokens, "output_tokens": 1},
                    }
                },
            )
            block = {"type": "text", "text": ""}
            yield _event("content_block_start", {"index": 0, "content_block": block})
            yield _event("ping", {})
            for i in range(b.chunks):
                if b.cut_after is not None and i >= b.cut_after:
                    return
                if i and b.chunk_delay:
                    await asyncio.sleep(b.chunk_delay)
                delta = {"type": "text_delta", "text": f"part{i} "}
                yield _event("content_block_delta", {"index": 0, "delta": delta})
            yield _event("content_block_stop", {"index": 0})
            yield _event(
                "message_delta",
                {
                    "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                    "usage": {"output_tokens": b.chunks},
                },
            )
            yield _event("message_stop", {})
        finally:
            self.stream_closed_at.append(time.monotonic())


def _event(name: str, data: dict[str, Any]) -> bytes:
    payload = orjson.dumps({"type": name, **data})
    return b"event: " + name.encode() + b"\ndata: " + payload + b"\n\n"
