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
from gateway.ingress.responses.sse import encode_event
from gateway.ingress.responses.store import ResponseStore, StoredResponse
from gateway.streaming.relay import chunks
from gateway.types import Reply

log = logging.getLogger("gateway")
TERMINAL = frozenset({"response.completed", "response.incomplete", "response.failed"})


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

    async def save(self, response: dict[str, Any], ctx: RequestContext) -> bytes:
        """Store `response` (when asked); return it encoded as the client should see it
        (the same bytes the store keeps: encoded once)."""
        encoded = orjson.dumps(response)
        if self.store is None or response.get("status") == "failed":
            return encoded
        record = StoredResponse(response, self.input_items, self.history, encoded)
        try:
            stored = await self.store.put(ctx.principal.key_id, record)
        except Exception:  # the answer is paid for: deliver it, say it was not stored
            log.warning("storing a response failed", exc_info=True)
            stored = False
        if not stored:
            response["store"] = False
            encoded = orjson.dumps(response)
        return encoded


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
        self.prepared = await self.turn.save(response, ctx)

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
                    if started:
                        data = translator.feed_encoded(chunk)
                    else:  # the opening events first: they take the first sequence numbers
                        started = True
                        data = translator.start_encoded() + translator.feed_encoded(chunk)
                    if data:
                        yield data
        except GatewayError as err:
            opening = b"" if started else translator.start_encoded()
            yield opening + encode_event(translator.failed(err))
            return
        final, closing = translator.finish_encoded()
        if closing:
            yield closing
        yield translator.terminal_encoded(final, await self.turn.save(final, ctx))

    async def _native_rest(
        self, parsed: AsyncIterator[tuple[dict[str, Any], bytes]], ctx: RequestContext
    ) -> AsyncGenerator[bytes, None]:
        async for chunk, _ in parsed:
            yield await self._native(chunk, ctx)

    async def _native(self, event: dict[str, Any], ctx: RequestContext) -> bytes:
        """A native event as it came; the terminal one's Response is stored first."""
        if event.get("type") in TERMINAL and isinstance(event.get("response"), dict):
            await self.turn.save(event["response"], ctx)  # marks it `store: false` if not kept
        return encode_event(event)
