"""Turn a Reply into an HTTP response; the upstream is released whatever happens."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import Protocol

import orjson
from starlette.responses import Response, StreamingResponse
from starlette.types import Receive, Scope, Send

from gateway.context import RequestContext
from gateway.streaming.relay import relay, release
from gateway.types import Reply

STREAM_HEADERS = {"cache-control": "no-cache", "x-accel-buffering": "no"}


class Renderer(Protocol):
    """How one ingress format writes a reply: the JSON body (errors included) and the
    stream's events. The reply's body is canonical (OpenAI-shaped) unless the deployment
    answered in the client's own format."""

    def body(self, reply: Reply, ctx: RequestContext) -> bytes: ...

    def events(self, reply: Reply, ctx: RequestContext) -> AsyncGenerator[bytes, None]: ...


@dataclass(frozen=True)
class OpenAIRenderer:
    def body(self, reply: Reply, ctx: RequestContext) -> bytes:
        return orjson.dumps(reply.body)

    def events(self, reply: Reply, ctx: RequestContext) -> AsyncGenerator[bytes, None]:
        return relay(reply, ctx)


OPENAI = OpenAIRenderer()


class ReplyResponse:
    """An ASGI response that always closes its Reply, even if the client left first."""

    def __init__(self, reply: Reply, ctx: RequestContext, renderer: Renderer = OPENAI) -> None:
        self.reply = reply
        self.ctx = ctx
        self.renderer = renderer
        headers = {**reply.headers, **ctx.response_headers, "x-request-id": ctx.request_id}
        self.response: Response
        if reply.stream is not None:
            # Built for its status and headers; the events are sent by `_stream`.
            self.response = StreamingResponse(
                iter(()),
                status_code=reply.status,
                media_type="text/event-stream",
                headers={**STREAM_HEADERS, **headers},
            )
        else:
            self.response = Response(
                renderer.body(reply, ctx),
                status_code=reply.status,
                media_type="application/json",
                headers=headers,
            )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            if self.reply.stream is None:
                await self.response(scope, receive, send)
                self.reply.completed = not self.ctx.client_gone
            else:
                await self._stream(receive, send)
        finally:
            await release(self.reply, self.ctx)

    async def _stream(self, receive: Receive, send: Send) -> None:
        """Send the relay's events until the reply ends or the client leaves.

        As in Starlette's StreamingResponse, a watcher cancels the sending when the client
        disconnects: here a plain asyncio task and one `cancel()`, delivered where the
        sending waits (anyio's task group and cancel scope cost ~10% of the gateway's CPU
        under a burst of new streams). The loop also checks the watcher's flag between
        events.
        """
        events = self.renderer.events(self.reply, self.ctx)
        sending = asyncio.current_task()
        assert sending is not None
        cancelling = sending.cancelling()
        client_gone = False

        async def watch() -> None:
            nonlocal client_gone
            while (await receive())["type"] != "http.disconnect":
                pass
            client_gone = True
            sending.cancel()

        watcher = asyncio.create_task(watch())
        try:
            start = self.response
            await send(
                {
                    "type": "http.response.start",
                    "status": start.status_code,
                    "headers": start.raw_headers,
                }
            )
            async for event in events:
                if client_gone:
                    break
                await send({"type": "http.response.body", "body": event, "more_body": True})
            else:
                await send({"type": "http.response.body", "body": b"", "more_body": False})
        except asyncio.CancelledError:
            if not client_gone or sending.uncancel() > cancelling:
                raise  # not (only) the watcher's: the server is stopping
        finally:
            watcher.cancel()
            await events.aclose()  # runs the relay's `finally`: upstream released
