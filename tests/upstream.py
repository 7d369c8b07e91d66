"""A fake OpenAI-compatible provider for integration tests: records what it receives and
can be told to fail in the ways real providers do."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route


@dataclass
class Behaviour:
    status: int = 200
    error_message: str = "upstream exploded"
    retry_after: str | None = None
    hang_seconds: float = 0.0
    chunks: int = 3
    chunk_delay: float = 0.0
    cut_after: int | None = None  # close a stream after k chunks, without [DONE]
    raw_body: bytes | None = None  # send this instead of a valid reply
    text: str = "Hello from upstream"
    fail_times: int | None = None  # only the first N requests fail/hang/cut; then all succeed


@dataclass
class FakeUpstream:
    behaviour: Behaviour = field(default_factory=Behaviour)
    requests: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    stream_closed_at: list[float] = field(default_factory=list)

    def reset(self, **changes: Any) -> None:
        self.behaviour = Behaviour(**changes)
        self.requests.clear()
        self.headers.clear()
        self.stream_closed_at.clear()

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/v1/chat/completions", self.chat, methods=["POST"]),
                Route("/v1/completions", self.chat, methods=["POST"]),
                Route("/v1/embeddings", self.embeddings, methods=["POST"]),
            ]
        )

    async def _record(self, request: Request) -> dict[str, Any]:
        body = orjson.loads(await request.body())
        self.requests.append(body)
        self.headers.append(dict(request.headers))
        b = self.behaviour
        if b.hang_seconds and self._failing():
            await asyncio.sleep(b.hang_seconds)
        return body

    def _failing(self) -> bool:
        fail_times = self.behaviour.fail_times
        return fail_times is None or len(self.requests) <= fail_times

    def _failure(self) -> Response | None:
        b = self.behaviour
        if b.status >= 400 and self._failing():
            headers = {"retry-after": b.retry_after} if b.retry_after else {}
            body = {"error": {"message": b.error_message, "type": "server_error"}}
            return JSONResponse(body, status_code=b.status, headers=headers)
        if b.raw_body is not None:
            return Response(b.raw_body, media_type="application/json")
        return None

    async def chat(self, request: Request) -> Response:
        body = await self._record(request)
        failure = self._failure()
        if failure is not None:
            return failure
        model = body.get("model", "")
        if body.get("stream"):
            return StreamingResponse(self._stream(body), media_type="text/event-stream")
        return JSONResponse(
            {
                "id": "chatcmpl-up",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": model,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": self.behaviour.text},
                        "finish_reason": "stop",
                    }
                ],
                "usage": {"prompt_tokens": 7, "completion_tokens": 4, "total_tokens": 11},
                "system_fingerprint": "fp_upstream",
            }
        )

    async def _stream(self, body: dict[str, Any]):  # type: ignore[no-untyped-def]
        b = self.behaviour
        cut_after = b.cut_after if self._failing() else None
        try:
            for i in range(b.chunks):
                if cut_after is not None and i >= cut_after:
                    return
                if i and b.chunk_delay:
                    await asyncio.sleep(b.chunk_delay)
                chunk = {
                    "id": "chatcmpl-up",
                    "object": "chat.completion.chunk",
                    "created": 1,
                    "model": body.get("model"),
                    "choices": [
                        {
                            "index": 0,
                            "delta": {"content": f"part{i} "},
                            "finish_reason": "stop" if i == b.chunks - 1 else None,
                        }
                    ],
                }
                yield b"data: " + orjson.dumps(chunk) + b"\n\n"
            if (body.get("stream_options") or {}).get("include_usage"):
                usage = {
                    "prompt_tokens": 7,
                    "completion_tokens": b.chunks,
                    "total_tokens": 7 + b.chunks,
                }
                final = {
                    "id": "chatcmpl-up",
                    "object": "chat.completion.chunk",
                    "created": 1,
                    "model": body.get("model"),
                    "choices": [],
                    "usage": usage,
                }
                yield b"data: " + orjson.dumps(final) + b"\n\n"
            yield b"data: [DONE]\n\n"
        finally:
            self.stream_closed_at.append(time.monotonic())

    async def embeddings(self, request: Request) -> Response:
        body = await self._record(request)
        failure = self._failure()
        if failure is not None:
            return failure
        inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
        data = [
            {"object": "embedding", "index": i, "embedding": [0.1, 0.2, 0.3]}
            for i, _ in enumerate(inputs)
        ]
        return JSONResponse(
            {
                "object": "list",
                "data": data,
                "model": body.get("model"),
                "usage": {"prompt_tokens": 3, "total_tokens": 3},
            }
        )
