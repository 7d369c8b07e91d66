"""A fake Anthropic Messages API that answers a script (text, then tool_use blocks), keeps
the raw bytes and headers of every request (for byte-level passthrough checks) and the
exact bytes of every stream it sent (to compare with what the client got)."""

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

from tests.ingress.anthropic.openai_tools import Script


def sse(name: str, data: dict[str, Any]) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + orjson.dumps({"type": name, **data}) + b"\n\n"


@dataclass
class ScriptedAnthropic:
    script: Script = field(default_factory=Script)
    raw: list[bytes] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    sent: list[bytes] = field(default_factory=list)  # each stream's bytes, as sent
    stream_closed_at: list[float] = field(default_factory=list)

    def reset(self, **changes: Any) -> None:
        self.script = Script(**changes)
        self.raw.clear()
        self.headers.clear()
        self.sent.clear()
        self.stream_closed_at.clear()

    @property
    def requests(self) -> list[dict[str, Any]]:
        return [orjson.loads(raw) for raw in self.raw]

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/v1/messages", self.messages, methods=["POST"])])

    async def messages(self, request: Request) -> Response:
        raw = await request.body()
        self.raw.append(raw)
        self.headers.append(dict(request.headers))
        body = orjson.loads(raw)
        if self.script.status != 200:
            error = {"type": "error", "error": {"type": "overloaded_error", "message": "busy"}}
            return JSONResponse(error, status_code=self.script.status)
        raw_reply = self.script.raw_reply
        if raw_reply is not None and body.get("stream"):
            raw = b"event: message_start\ndata: " + raw_reply + b"\n\n"
            return Response(raw, media_type="text/event-stream")
        if raw_reply is not None:
            return Response(raw_reply, media_type="application/json")
        if body.get("stream"):
            return StreamingResponse(self._stream(body), media_type="text/event-stream")
        return JSONResponse(self._message(body, self._blocks(), final=True))

    def _blocks(self) -> list[dict[str, Any]]:
        s = self.script
        blocks: list[dict[str, Any]] = [{"type": "text", "text": s.text}] if s.text else []
        for i, (name, args) in enumerate(s.calls):
            blocks.append({"type": "tool_use", "id": f"toolu_{i}", "name": name, "input": args})
        return blocks

    def _message(self, body: dict[str, Any], content: list, *, final: bool) -> dict[str, Any]:
        s = self.script
        reason = "tool_use" if s.calls else ("stop_sequence" if s.stop_sequence else "end_turn")
        return {
            "id": "msg_scripted",
            "type": "message",
            "role": "assistant",
            "model": body.get("model"),
            "content": content,
            "stop_reason": reason if final else None,
            "stop_sequence": s.stop_sequence if final else None,
            "usage": {
                "input_tokens": s.prompt_tokens - s.cached_tokens,
                "cache_read_input_tokens": s.cached_tokens,
                "cache_creation_input_tokens": 0,
                "output_tokens": s.completion_tokens if final else 1,
            },
        }

    async def _stream(self, body: dict[str, Any]) -> AsyncIterator[bytes]:
        s = self.script
        events = [sse("message_start", {"message": self._message(body, [], final=False)})]
        for index, block in enumerate(self._blocks()):
            start = {**block, "text": ""} if block["type"] == "text" else {**block, "input": {}}
            events.append(sse("content_block_start", {"index": index, "content_block": start}))
            if index == 0:
                events.append(sse("ping", {}))
            if block["type"] == "text":
                text = block["text"]
                for i in range(0, len(text), 4):
                    delta = {"type": "text_delta", "text": text[i : i + 4]}
                    events.append(sse("content_block_delta", {"index": index, "delta": delta}))
            else:
                text = orjson.dumps(block["input"]).decode()
                for i in range(0, len(text), s.piece):
                    delta = {"type": "input_json_delta", "partial_json": text[i : i + s.piece]}
                    events.append(sse("content_block_delta", {"index": index, "delta": delta}))
            events.append(sse("content_block_stop", {"index": index}))
        final = self._message(body, [], final=True)
        delta = {"stop_reason": final["stop_reason"], "stop_sequence": final["stop_sequence"]}
        usage = {"output_tokens": s.completion_tokens}
        events.append(sse("message_delta", {"delta": delta, "usage": usage}))
        events.append(sse("message_stop", {}))
        sent = b""
        try:
            for n, data in enumerate(events):
                if s.cut_after is not None and n >= s.cut_after:
                    return
                if n and s.chunk_delay:
                    await asyncio.sleep(s.chunk_delay)
                sent += data
                yield data
        finally:
            self.sent.append(sent)
            self.stream_closed_at.append(time.monotonic())
