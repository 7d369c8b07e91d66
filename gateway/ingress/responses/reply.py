"""A reply in the Responses format: the Response body, or its event stream.

The Response is stored (unless `store: false`) before the client can see its end: before
a complete body is returned, and before the terminal stream event is sent, so a
follow-up sent the moment a reply ends finds it on any instance.

A deployment that speaks Responses natively answers in this format already: its body and
events pass through (re-encoded with `event:` lines and stored the same way).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any

import orjson

from gateway.context import RequestContext
from gateway.errors import GatewayError
from gateway.ingress.responses.events import EventTranslator
from gateway.ingress.responses.render import Draft, response_object
from gateway.ingress.responses.store import ResponseStore, StoredResponse
from gateway.streaming.relay import chunks
from gateway.types import Reply

log = logging.getLogger("gateway")
TERMINAL = frozenset({"response.completed", "response.incomplete", "response.failed"})


EVENT_TYPES = (
    "response.created",
    "response.in_progress",
    "response.output_item.added",
    "response.content_part.added",
    "response.output_text.delta",
    "response.output_text.done",
    "response.content_part.done",
    "response.function_call_arguments.delta",
    "response.function_call_arguments.done",
    "response.output_item.done",
    "response.completed",
    "response.incomplete",
    "response.failed",
)
_HEADS = {kind: f"event: {kind}\ndata: ".encode() for kind in EVENT_TYPES}


def encode_event(event: dict[str, Any]) -> bytes:
    kind = event["type"]
    head = _HEADS.get(kind) if isinstance(kind, str) else None
    if head is None:  # a native upstream's other events: its type on one line
        shown = str(kind).replace("\r", " ").replace("\n", " ")
        head = f"event: {shown}\ndata: ".encode()
    return head + orjson.dumps(event) + b"\n\n"


def is_native(body: dict[str, Any] | None) -> bool:
    return isinstance(body, dict) and body.get("object") == "response"


@dataclass(slots=True)
class Turn:
    """One request's place in its conversation, and where its Response is kept."""

    draft: Draft
    input_items: list[dict[str, Any]]
    history: list[dict[str, Any]]
    store: ResponseStore | None  # None: `store: false`
    native: bool = False  # every deployment of the model speaks Responses itself

    async def save(self, response: dict[str, Any], ctx: RequestContext) -> dict[str, Any]:
        """Store `response` (when asked) and return it as the client should see it."""
        if self.store is None or response.get("status") == "failed":
            return response
        record = StoredResponse(response, self.input_items, self.history)
        try:
            stored = await self.store.put(ctx.principal.key_id, record)
        except Exception:  # the answer is paid for: deliver it, say it was not stored
            log.warning("storing a response failed", exc_info=True)
            stored = False
        if not stored:
            response["store"] = False
        return response


class ResponsesRenderer:
    """The `Renderer` (gateway/http/reply.py) for one Responses request."""

    def __init__(self, turn: Turn) -> None:
        self.turn = turn
        self.prepared: bytes | None = None

    async def prepare(self, reply: Reply, ctx: RequestContext) -> None:
        """Render and store a complete reply (async: the store is written here)."""
        if reply.stream is not None or reply.status != 200 or not isinstance(reply.body, dict):
            return
        body = reply.body
        response = body if is_native(body) else response_object(self.turn.draft, body)
        self.prepared = orjson.dumps(await self.turn.save(response, ctx))

    def body(self, reply: Reply, ctx: RequestContext) -> bytes:
        return self.prepared if self.prepared is not None else orjson.dumps(reply.body)

    async def events(self, reply: Reply, ctx: RequestContext) -> AsyncGenerator[bytes, None]:
        translator = EventTranslator(self.turn.draft)
        started = False
        try:
            parsed = chunks(reply, ctx)
            async with aclosing(parsed):
                async for chunk, _ in parsed:
                    if not started and str(chunk.get("type", "")).startswith("response."):
                        started = True
                        yield await self._native(chunk, ctx)
                        async for data in self._native_rest(parsed, ctx):
                            yield data
                        return
                    if not started:
                        started = True
                        for event in translator.start():
                            yield encode_event(event)
                    for event in translator.feed(chunk):
                        yield encode_event(event)
        except GatewayError as err:
            if not started:
                for event in translator.start():
                    yield encode_event(event)
            yield encode_event(translator.failed(err))
            return
        final, closing = translator.finish()
        for event in closing:
            yield encode_event(event)
        final = await self.turn.save(final, ctx)
        yield encode_event(translator.terminal(final))

    async def _native_rest(
        self, parsed: AsyncIterator[tuple[dict[str, Any], bytes]], ctx: RequestContext
    ) -> AsyncGenerator[bytes, None]:
        async for chunk, _ in parsed:
            yield await self._native(chunk, ctx)

    async def _native(self, event: dict[str, Any], ctx: RequestContext) -> bytes:
        """A native event as it came; the terminal one's Response is stored first."""
        if event.get("type") in TERMINAL and isinstance(event.get("response"), dict):
            event["response"] = await self.turn.save(event["response"], ctx)
        return encode_event(event)
