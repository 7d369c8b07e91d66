"""Turn a Reply into an HTTP response; the upstream is released whatever happens."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import Any, Protocol

import orjson
from starlette.types import Message, Receive, Scope, Send

from gateway.context import RequestContext
from gateway.lean_connection import on_disconnect
from gateway.streaming.relay import relay, release
from gateway.types import Reply

STREAM_HEADERS = {"cache-control": "no-cache", "x-accel-buffering": "no"}
EVENT_STREAM = b"text/event-stream; charset=utf-8"
JSON = b"application/json"
NAMES_KEPT = 1024
_encoded_names: dict[str, bytes] = {}  # header name -> its lower-case latin-1 bytes


def raw_headers(
    headers: dict[str, str],
    default_type: bytes = b"",
    length: int | None = None,
    first: list[tuple[bytes, bytes]] | None = None,
) -> list[tuple[bytes, bytes]]:
    """ASGI's header list, as Starlette encodes it (names lower-cased; latin-1); a name is
    encoded once, not per reply. Bounded: a provider's header names are not ours to count.
    `default_type`: the content-type when `headers` have none. `length`: the body's
    content-length, in place of any in `headers`. `first`: headers in that form
    already, sent first (`RequestContext.encoded_headers`)."""
    raw = [] if first is None else first.copy()
    typed = False
    for name, value in headers.items():
        encoded = _encoded_names.get(name)
        if encoded is None:
            if len(_encoded_names) >= NAMES_KEPT:
                _encoded_names.clear()
            encoded = _encoded_names[name] = name.lower().encode("latin-1")
        if encoded == b"content-type":
            typed = True
        elif length is not None and encoded == b"content-length":
            continue
        raw.append((encoded, value.encode("latin-1")))
    if length is not None:
        raw.append((b"content-length", str(length).encode()))
    if default_type and not typed:
        raw.append((b"content-type", default_type))
    return raw


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

    __slots__ = ("ctx", "renderer", "reply")

    def __init__(self, reply: Reply, ctx: RequestContext, renderer: Renderer = OPENAI) -> None:
        self.reply = reply
        self.ctx = ctx
        self.renderer = renderer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            if self.reply.stream is None:
                await self._send_body(send)
                self.reply.completed = not self.ctx.client_gone
            else:
                await self._stream(receive, send)
        finally:
            await release(self.reply, self.ctx)

    def _headers(self) -> dict[str, str]:
        reply, ctx = self.reply, self.ctx
        return {**reply.headers, **ctx.response_headers, "x-request-id": ctx.request_id}

    async def _send_body(self, send: Send) -> None:
        """The complete reply, as Starlette's `Response` sends it (content-length, a JSON
        content-type unless the reply has one), without building one per request."""
        body = self.renderer.body(self.reply, self.ctx)
        # this body's length, always
        raw = raw_headers(self._headers(), JSON, len(body), self.ctx.encoded_headers)
        await send({"type": "http.response.start", "status": self.reply.status, "headers": raw})
        await send({"type": "http.response.body", "body": body})

    def _stream_start(self) -> Message:
        """The stream's `http.response.start`, its headers as Starlette's StreamingResponse
        writes them; made when sent, not kept for the stream's life."""
        headers = {**STREAM_HEADERS, **self._headers()}
        raw = raw_headers(headers, EVENT_STREAM, first=self.ctx.encoded_headers)
        return {"type": "http.response.start", "status": self.reply.status, "headers": raw}

    async def _stream(self, receive: Receive, send: Send) -> None:
        """Send the relay's events until the reply ends or the client leaves.

        As in Starlette's StreamingResponse, a watcher cancels the sending when the client
        disconnects: here a `ClientWatch` and one `cancel()`, delivered where the sending
        waits (anyio's task group and cancel scope cost ~10% of the gateway's CPU under a
        burst of new streams). The loop also checks the watcher's flag between events.
        """
        events = self.renderer.events(self.reply, self.ctx)
        sending = asyncio.current_task()
        assert sending is not None
        cancelling = sending.cancelling()
        watch = ClientWatch(receive, sending)
        try:
            await send(self._stream_start())
            self.ctx.response_headers = {}  # sent: not held for the stream's life
            self.ctx.encoded_headers = []
            async for event in events:
                if watch.gone:
                    break
                await send({"type": "http.response.body", "body": event, "more_body": True})
                del event  # not held while the next one is awaited (every open stream would)
            else:
                await send({"type": "http.response.body", "body": b"", "more_body": False})
        except asyncio.CancelledError:
            if not watch.gone or sending.uncancel() > cancelling:
                raise  # not (only) the watcher's: the server is stopping
        finally:
            watch.stop()
            await events.aclose()  # runs the relay's `finally`: upstream released


class ClientWatch:
    """Cancel `task` when the client disconnects (`gone` is then true).

    Told by the connection where it can (`lean_connection.on_disconnect`: nothing per
    stream but a listener); elsewhere a task over `receive()` itself with a done callback,
    not a watcher coroutine: its frame, closure and cells were ~0.4 KB that every open
    stream held."""

    __slots__ = ("_listening", "_receive", "_stop", "_task", "gone")

    def __init__(self, receive: Receive, task: asyncio.Task[Any]) -> None:
        self.gone = False
        self._receive = receive
        self._task = task
        self._stop = on_disconnect(receive, self._left)
        self._listening = None if self._stop is not None else self._listen()

    def stop(self) -> None:
        if self._stop is not None:
            self._stop()
        if self._listening is not None:
            self._listening.cancel()

    def _left(self) -> None:
        self.gone = True
        self._task.cancel()

    def _listen(self) -> asyncio.Future[Message]:
        listening = asyncio.ensure_future(self._receive(), loop=self._task.get_loop())
        listening.add_done_callback(self._heard)
        return listening

    def _heard(self, listening: asyncio.Future[Message]) -> None:
        if listening.cancelled() or listening.exception() is not None:
            return
        if listening.result()["type"] != "http.disconnect":
            self._listening = self._listen()  # the body's last (empty) message: listen on
            return
        self._left()
