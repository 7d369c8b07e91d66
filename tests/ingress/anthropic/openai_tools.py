"""A fake OpenAI-compatible upstream that answers with tool calls, the way real ones stream
them: text first (optional), then each call with its id and name, its arguments split
into small pieces; parallel calls; usage with cached prompt tokens; a vLLM-style
`stop_reason` naming the stop sequence that ended the reply."""

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


@dataclass
class Script:
    text: str = ""  # said before the calls (or alone when there are no calls)
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # (name, arguments)
    piece: int = 3  # characters of arguments per stream chunk
    prompt_tokens: int = 40
    cached_tokens: int = 30
    completion_tokens: int = 7
    stop_sequence: str | None = None  # reply ended by this stop string (vLLM's stop_reason)
    cut_after: int | None = None  # end the stream after k chunks, without [DONE]
    status: int = 200
    chunk_delay: float = 0.0  # seconds between stream chunks
    raw_reply: bytes | None = None  # sent as the reply (or as a stream's one event) instead


@dataclass
class ToolsUpstream:
    script: Script = field(default_factory=Script)
    requests: list[dict[str, Any]] = field(default_factory=list)
    stream_closed_at: list[float] = field(default_factory=list)

    def reset(self, **changes: Any) -> None:
        self.script = Script(**changes)
        self.requests.clear()
        self.stream_closed_at.clear()

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/v1/chat/completions", self.chat, methods=["POST"])])

    async def chat(self, request: Request) -> Response:
        body = orjson.loads(await request.body())
        self.requests.append(body)
        s = self.script
        if s.status != 200:
            error = {"error": {"message": "scripted failure", "type": "server_error"}}
            return JSONResponse(error, status_code=s.status)
        if s.raw_reply is not None and body.get("stream"):
            raw = b"data: " + s.raw_reply + b"\n\ndata: [DONE]\n\n"
            return Response(raw, media_type="text/event-stream")
        if s.raw_reply is not None:
            return Response(s.raw_reply, media_type="application/json")
        if body.get("stream"):
            return StreamingResponse(self._stream(body), media_type="text/event-stream")
        message: dict[str, Any] = {"role": "assistant", "content": s.text or None}
        if s.calls:
            message["tool_calls"] = [
                {
                    "id": f"call_{i}",
                    "type": "function",
                    "function": {"name": name, "arguments": orjson.dumps(args).decode()},
                }
                for i, (name, args) in enumerate(s.calls)
            ]
        choice = {"index": 0, "message": message, "finish_reason": self._finish()}
        if s.stop_sequence:
            choice["stop_reason"] = s.stop_sequence
        return JSONResponse(
            {**self._head("chat.completion"), "choices": [choice], "usage": self._usage()}
        )

    def _finish(self) -> str:
        return "tool_calls" if self.script.calls else "stop"

    def _head(self, obj: str) -> dict[str, Any]:
        return {"id": "chatcmpl-tools1", "object": obj, "created": 1, "model": "tools-model"}

    def _usage(self) -> dict[str, Any]:
        s = self.script
        return {
            "prompt_tokens": s.prompt_tokens,
            "completion_tokens": s.completion_tokens,
            "total_tokens": s.prompt_tokens + s.completion_tokens,
            "prompt_tokens_details": {"cached_tokens": s.cached_tokens},
        }

    def _deltas(self) -> list[dict[str, Any]]:
        s = self.script
        deltas: list[dict[str, Any]] = [{"role": "assistant", "content": ""}]
        for i in range(0, len(s.text), 4):
            deltas.append({"content": s.text[i : i + 4]})
        for index, (name, args) in enumerate(s.calls):
            opening = {"index": index, "id": f"call_{index}", "type": "function"}
            opening["function"] = {"name": name, "arguments": ""}
            deltas.append({"tool_calls": [opening]})
            text = orjson.dumps(args).decode()
            for i in range(0, len(text), s.piece):
                piece = {"index": index, "function": {"arguments": text[i : i + s.piece]}}
                deltas.append({"tool_calls": [piece]})
        return deltas

    async def _stream(self, body: dict[str, Any]) -> AsyncIterator[bytes]:
        s = self.script
        head = self._head("chat.completion.chunk")
        try:
            for n, delta in enumerate(self._deltas()):
                if s.cut_after is not None and n >= s.cut_after:
                    return
                if n and s.chunk_delay:
                    await asyncio.sleep(s.chunk_delay)
                choice = {"index": 0, "delta": delta, "finish_reason": None}
                yield b"data: " + orjson.dumps({**head, "choices": [choice]}) + b"\n\n"
        finally:
            self.stream_closed_at.append(time.monotonic())
        end: dict[str, Any] = {"index": 0, "delta": {}, "finish_reason": self._finish()}
        if s.stop_sequence:
            end["stop_reason"] = s.stop_sequence
        yield b"data: " + orjson.dumps({**head, "choices": [end]}) + b"\n\n"
        if (body.get("stream_options") or {}).get("include_usage"):
            usage = {**head, "choices": [], "usage": self._usage()}
            yield b"data: " + orjson.dumps(usage) + b"\n\n"
        yield b"data: [DONE]\n\n"
