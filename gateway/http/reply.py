"""Turn a Reply into an HTTP response; the upstream is released whatever happens."""

from __future__ import annotations

import orjson
from starlette.responses import Response, StreamingResponse
from starlette.types import Receive, Scope, Send

from gateway.context import RequestContext
from gateway.streaming.relay import relay
from gateway.types import Reply

STREAM_HEADERS = {"cache-control": "no-cache", "x-accel-buffering": "no"}


class ReplyResponse:
    """An ASGI response that always closes its Reply, even if the client left first."""

    def __init__(self, reply: Reply, ctx: RequestContext) -> None:
        self.reply = reply
        headers = {**reply.headers, **ctx.response_headers, "x-request-id": ctx.request_id}
        self.response: Response
        if reply.stream is not None:
            self.response = StreamingResponse(
                relay(reply, ctx),
                status_code=reply.status,
                media_type="text/event-stream",
                headers={**STREAM_HEADERS, **headers},
            )
        else:
            self.response = Response(
                orjson.dumps(reply.body),
                status_code=reply.status,
                media_type="application/json",
                headers=headers,
            )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await self.response(scope, receive, send)
            if self.reply.stream is None:
                self.reply.completed = True
        finally:
            await self.reply.close()
