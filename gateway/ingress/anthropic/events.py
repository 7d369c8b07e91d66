"""Messages stream events, written incrementally from canonical chat chunks.

One `EventWriter` per stream turns each chunk into the events it completes:
`message_start` (with a `ping`) on the first chunk; a text block or a `tool_use` block per
tool call, opened when its first piece arrives and stopped when the next block opens;
`text_delta` / `input_json_delta` as pieces arrive; and at the end `message_delta` (stop
reason and usage) then `message_stop`. Nothing is buffered beyond a tool call whose name
has not arrived yet. A failure after the first byte is an `event: error`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncGenerator
from contextlib import aclosing
from typing import Any

import orjson

from gateway.context import RequestContext
from gateway.errors import GatewayError
from gateway.ingress.anthropic.render import error_body, stop_reason, usage_block
from gateway.streaming.relay import CHARS_PER_TOKEN, chunks
from gateway.types import Reply, Usage

log = logging.getLogger("gateway")


def event(name: str, data: dict[str, Any]) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


PING = event("ping", {"type": "ping"})
MESSAGE_STOP = event("message_stop", {"type": "message_stop"})
# The per-piece events, written without building a dict each time (the hot part of a stream).
TEXT_DELTA = b'event: content_block_delta\ndata: {"type":"content_block_delta","index":%d,"delta":{"type":"text_delta","text":%s}}\n\n'  # noqa: E501
JSON_DELTA = b'event: content_block_delta\ndata: {"type":"content_block_delta","index":%d,"delta":{"type":"input_json_delta","partial_json":%s}}\n\n'  # noqa: E501
BLOCK_STOP = b'event: content_block_stop\ndata: {"type":"content_block_stop","index":%d}\n\n'


def error_event(err: GatewayError) -> bytes:
    return event("error", error_body(err))


class _ToolBlock:
    __slots__ = ("ident", "index", "name", "pending")

    def __init__(self) -> None:
        self.ident = ""
        self.name = ""
        self.index: int | None = None  # the content block, once started
        self.pending = ""  # argument text that came before the name


class EventWriter:
    def __init__(self, request_id: str, stops: Any, prompt_estimate: int) -> None:
        self.request_id = request_id
        self.stops = stops
        self.prompt_estimate = prompt_estimate
        self.started = False
        self.blocks = 0  # content blocks opened so far
        self.open: int | None = None  # the block open now
        self.text_block: int | None = None
        self.tools: dict[int, _ToolBlock] = {}
        self.finish: tuple[str | None, str | None] = (None, None)
        self.usage: Any = None

    def feed(self, chunk: dict[str, Any]) -> list[bytes]:
        out: list[bytes] = []
        if not self.started:
            self.started = True
            out.append(self._message_start(chunk))
            out.append(PING)
        if chunk.get("usage"):
            self.usage = chunk["usage"]
        choices = chunk.get("choices") or ()
        choice = choices[0] if choices and isinstance(choices[0], dict) else None
        if choice is None or choice.get("index", 0) != 0:
            return out  # Messages has one choice; a usage-only chunk ends here
        delta = choice.get("delta")
        if not isinstance(delta, dict):
            return out
        text = delta.get("content")
        if isinstance(text, str) and text:
            out.extend(self._text(text))
        calls = delta.get("tool_calls")
        for call in calls if isinstance(calls, list) else ():
            if isinstance(call, dict) and isinstance(call.get("function") or {}, dict):
                out.extend(self._tool(call))
        if choice.get("finish_reason"):
            self.finish = stop_reason(choice, self.stops)
        return out

    def end(self) -> list[bytes]:
        out = self._close_open()
        if not self.started:
            out.append(self._message_start({}))
        usage = usage_block(self.usage, self.prompt_estimate)
        reason, sequence = self.finish
        delta = {"stop_reason": reason or "end_turn", "stop_sequence": sequence}
        out.append(
            event("message_delta", {"type": "message_delta", "delta": delta, "usage": usage})
        )
        out.append(MESSAGE_STOP)
        return out

    def _message_start(self, chunk: dict[str, Any]) -> bytes:
        message: dict[str, Any] = {
            "id": f"msg_{self.request_id}",
            "type": "message",
            "role": "assistant",
            "model": chunk.get("model"),
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": self.prompt_estimate, "output_tokens": 0},
        }
        return event("message_start", {"type": "message_start", "message": message})

    def _text(self, text: str) -> list[bytes]:
        out: list[bytes] = []
        if self.text_block is None or self.open != self.text_block:
            out.extend(self._start({"type": "text", "text": ""}))
            self.text_block = self.open
        out.append(TEXT_DELTA % (self.text_block, orjson.dumps(text)))
        return out

    def _tool(self, call: dict[str, Any]) -> list[bytes]:
        index = call.get("index")
        tool = self.tools.setdefault(index if isinstance(index, int) else 0, _ToolBlock())
        function = call.get("function") or {}
        tool.ident = tool.ident or str(call.get("id") or "")
        tool.name += str(function.get("name") or "") if tool.index is None else ""
        arguments = function.get("arguments")
        out: list[bytes] = []
        if isinstance(arguments, str):
            tool.pending += arguments
        if tool.index is None:
            if not tool.name:
                return out  # its name is still to come
            block = {"type": "tool_use", "id": tool.ident, "name": tool.name, "input": {}}
            out.extend(self._start(block))
            tool.index = self.open
        if tool.pending:
            # A late piece of an earlier call keeps that call's index (clients join by index).
            out.append(JSON_DELTA % (tool.index, orjson.dumps(tool.pending)))
            tool.pending = ""
        return out

    def _start(self, block: dict[str, Any]) -> list[bytes]:
        out = self._close_open()
        self.open = self.blocks
        self.blocks += 1
        data = {"type": "content_block_start", "index": self.open, "content_block": block}
        out.append(event("content_block_start", data))
        return out

    def _close_open(self) -> list[bytes]:
        if self.open is None:
            return []
        index, self.open = self.open, None
        return [BLOCK_STOP % index]


async def message_events(reply: Reply, ctx: RequestContext) -> AsyncGenerator[bytes, None]:
    """The Messages events of a canonical stream; the relay's `chunks` counts and closes."""
    stops = ctx.raw_body.get("stop_sequences") if ctx.raw_body else None
    writer = EventWriter(ctx.request_id, stops, ctx.prompt_tokens_estimate)
    try:
        async with aclosing(chunks(reply, ctx)) as parsed:
            async for chunk, _ in parsed:
                events = writer.feed(chunk)
                if events:  # one write per upstream chunk, however many events it ends
                    yield b"".join(events)
        yield b"".join(writer.end())
    except GatewayError as err:
        yield error_event(err)
    except Exception:  # a malformed chunk must still end the stream the documented way
        log.exception("rendering Messages events failed", extra={"request_id": ctx.request_id})
        failure = GatewayError("The gateway failed while relaying the stream.")
        reply.error = reply.error or failure
        yield error_event(failure)


async def native_events(reply: Reply, ctx: RequestContext) -> AsyncGenerator[bytes, None]:
    """A native Messages stream, relayed as the provider sent it (whole SSE events; the
    provider reads usage from them as they pass). Same contract as the relay's `chunks`:
    failures become an error event, a cut stream gets estimated usage, the reply closes."""
    assert reply.stream is not None
    sent = 0
    try:
        async for data in reply.stream:
            if ctx.first_byte is None:
                ctx.first_byte = time.perf_counter()
            sent += len(data)
            yield data
        reply.completed = True
    except GatewayError as err:
        reply.error = err
        yield error_event(err)
    except Exception:  # a bug must still end the stream the documented way
        log.exception("native stream relay failed", extra={"request_id": ctx.request_id})
        reply.error = GatewayError("The gateway failed while relaying the stream.")
        yield error_event(reply.error)
    finally:
        if reply.usage is None:
            completion = -(-sent // (CHARS_PER_TOKEN * 4))  # events are mostly framing
            reply.usage = Usage(ctx.prompt_tokens_estimate, completion, estimated=True)
        await reply.close()
