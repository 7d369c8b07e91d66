"""A fake OpenAI-compatible upstream that answers like a model with tools.

Given tools (and no tool result yet) it calls the first tool, with arguments made from
the tool's JSON schema; after a tool result it answers in text quoting the result; with
a `response_format` JSON schema it answers with a JSON object that fits the schema;
otherwise it echoes the newest user text and says how many messages it saw (so history
can be checked). Streams come in many small chunks (text 3 characters, arguments 4).
Every request body is recorded in `requests`.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

EXAMPLES = {"string": "Paris", "integer": 3, "number": 1.5, "boolean": True}


def example_of(schema: dict[str, Any]) -> Any:
    kind = schema.get("type")
    if kind == "object":
        props = schema.get("properties") or {}
        return {name: example_of(prop) for name, prop in props.items()}
    if kind == "array":
        return [example_of(schema.get("items") or {"type": "string"})]
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "string")
    return EXAMPLES.get(kind, "x")


def text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


@dataclass
class ToolUpstream:
    requests: list[dict[str, Any]] = field(default_factory=list)
    ids: itertools.count = field(default_factory=itertools.count)

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/v1/chat/completions", self.chat, methods=["POST"]),
                Route("/v1/responses", self.responses, methods=["POST"]),
            ]
        )

    def answer(self, body: dict[str, Any]) -> dict[str, Any]:
        """The assistant message for `body`: a tool call or text."""
        messages = body["messages"]
        last = messages[-1]
        tools = body.get("tools") or []
        if tools and last.get("role") != "tool" and body.get("tool_choice") != "none":
            function = tools[0]["function"]
            arguments = orjson.dumps(example_of(function.get("parameters") or {})).decode()
            call = {
                "id": f"call_{next(self.ids)}",
                "type": "function",
                "function": {"name": function["name"], "arguments": arguments},
            }
            return {"role": "assistant", "content": None, "tool_calls": [call]}
        fmt = body.get("response_format") or {}
        if fmt.get("type") == "json_schema":
            text = orjson.dumps(example_of(fmt["json_schema"]["schema"])).decode()
        elif fmt.get("type") == "json_object":
            text = '{"answer": "Paris"}'
        elif last.get("role") == "tool":
            text = f"The tool said: {text_of(last.get('content'))}"
        else:
            user = next(m for m in reversed(messages) if m.get("role") == "user")
            text = f"You said: {text_of(user.get('content'))} (messages: {len(messages)})"
        return {"role": "assistant", "content": text}

    async def chat(self, request: Request) -> Response:
        body = orjson.loads(await request.body())
        self.requests.append(body)
        message = self.answer(body)
        finish = "tool_calls" if message.get("tool_calls") else "stop"
        words = sum(len(text_of(m.get("content")).split()) for m in body["messages"])
        usage = {"prompt_tokens": words + 3, "completion_tokens": 7, "total_tokens": words + 10}
        if not body.get("stream"):
            return JSONResponse(
                {
                    "id": "chatcmpl-tool",
                    "object": "chat.completion",
                    "created": 1,
                    "model": body["model"],
                    "usage": usage,
                    "choices": [{"index": 0, "message": message, "finish_reason": finish}],
                }
            )
        include_usage = (body.get("stream_options") or {}).get("include_usage")
        return StreamingResponse(
            self.stream(body["model"], message, finish, usage if include_usage else None),
            media_type="text/event-stream",
        )

    async def stream(
        self, model: str, message: dict[str, Any], finish: str, usage: dict[str, Any] | None
    ) -> Any:
        def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> bytes:
            payload = {
                "id": "chatcmpl-tool",
                "object": "chat.completion.chunk",
                "created": 1,
                "model": model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
            }
            return b"data: " + orjson.dumps(payload) + b"\n\n"

        yield chunk({"role": "assistant", "content": ""})
        text = message.get("content") or ""
        for start in range(0, len(text), 3):
            yield chunk({"content": text[start : start + 3]})
        for index, call in enumerate(message.get("tool_calls") or ()):
            head = {
                "index": index,
                "id": call["id"],
                "type": "function",
                "function": {"name": call["function"]["name"], "arguments": ""},
            }
            yield chunk({"tool_calls": [head]})
            arguments = call["function"]["arguments"]
            for start in range(0, len(arguments), 4):
                piece = {"index": index, "function": {"arguments": arguments[start : start + 4]}}
                yield chunk({"tool_calls": [piece]})
        yield chunk({}, finish)
        if usage is not None:
            payload = {
                "id": "chatcmpl-tool",
                "object": "chat.completion.chunk",
                "created": 1,
                "model": model,
                "choices": [],
                "usage": usage,
            }
            yield b"data: " + orjson.dumps(payload) + b"\n\n"
        yield b"data: [DONE]\n\n"

    async def responses(self, request: Request) -> Response:
        """A native Responses upstream: says how many input items and tools it got."""
        body = orjson.loads(await request.body())
        self.requests.append(body)
        items = body["input"] if isinstance(body["input"], list) else [body["input"]]
        text = f"native: {len(items)} items, {len(body.get('tools') or [])} tools"
        number = next(self.ids)
        message = {
            "type": "message",
            "id": f"msg_up{number}",
            "status": "completed",
            "role": "assistant",
            "content": [{"type": "output_text", "text": text, "annotations": []}],
        }
        usage = {"input_tokens": 11, "output_tokens": 5, "total_tokens": 16}
        final = {
            "id": f"resp_up{number}",
            "object": "response",
            "created_at": 1,
            "status": "completed",
            "model": body["model"],
            "output": [message],
            "usage": usage,
            "max_output_tokens": body.get("max_output_tokens"),
        }
        if not body.get("stream"):
            return JSONResponse(final)

        async def events() -> Any:
            started = {**final, "status": "in_progress", "output": [], "usage": None}
            sequence = [
                {"type": "response.created", "response": started},
                {
                    "type": "response.output_item.added",
                    "output_index": 0,
                    "item": {**message, "status": "in_progress", "content": []},
                },
                {
                    "type": "response.content_part.added",
                    "item_id": message["id"],
                    "output_index": 0,
                    "content_index": 0,
                    "part": {"type": "output_text", "text": "", "annotations": []},
                },
                *(
                    {
                        "type": "response.output_text.delta",
                        "item_id": message["id"],
                        "output_index": 0,
                        "content_index": 0,
                        "delta": text[i : i + 4],
                    }
                    for i in range(0, len(text), 4)
                ),
                {"type": "response.output_item.done", "output_index": 0, "item": message},
                {"type": "response.completed", "response": final},
            ]
            for number, event in enumerate(sequence):
                event["sequence_number"] = number
                yield f"event: {event['type']}\ndata: ".encode() + orjson.dumps(event) + b"\n\n"

        return StreamingResponse(events(), media_type="text/event-stream")
