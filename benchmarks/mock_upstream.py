"""A fast OpenAI-compatible mock upstream for benchmarks.

A raw asyncio ``Protocol`` on uvloop with the httptools parser: HTTP/1.1, keep-alive,
pipelining, every response body prepared once at start-up. It was measured against
uvicorn+httptools serving a raw ASGI app and is several times faster (see README.md).

Endpoints:
  POST /v1/chat/completions  non-stream JSON, or SSE when the body has "stream": true
                             (``--chunks`` chunks ``--chunk-delay-ms`` apart, the first at
                             once; a usage chunk when stream_options.include_usage; [DONE])
  POST /v1/messages          the same in Anthropic's Messages format (JSON, or SSE events
                             message_start ... message_stop with one text delta per chunk)
  POST /v1/embeddings        one fixed vector per input
  GET  /v1/models            the one model
  GET  /health               {"status": "ok"}
The ``/v1`` prefix is optional.

    python benchmarks/mock_upstream.py --port 9001 --chunks 50 --chunk-delay-ms 10
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import math
import time
from dataclasses import dataclass
from typing import cast

import httptools
import orjson

EMBEDDING_DIM = 8
PROMPT_TOKENS = 5


@dataclass(frozen=True)
class Settings:
    chunks: int = 50
    chunk_delay_ms: float = 10.0
    model: str = "bench-model"


def _http_chunk(payload: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(payload), payload)


def _sse(obj: object) -> bytes:
    return _http_chunk(b"data: " + orjson.dumps(obj) + b"\n\n")


def _event(name: str, obj: dict[str, object]) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + orjson.dumps({"type": name, **obj}) + b"\n\n"


def _response(status: bytes, body: bytes, content_type: bytes = b"application/json") -> bytes:
    head = b"HTTP/1.1 %s\r\ncontent-type: %s\r\ncontent-length: %d\r\n\r\n"
    return head % (status, content_type, len(body)) + body


def _error(status: bytes, message: str) -> bytes:
    body = {"error": {"message": message, "type": "invalid_request_error", "code": None}}
    return _response(status, orjson.dumps(body))


class Payloads:
    """Every byte string the server sends, built once."""

    def __init__(self, s: Settings) -> None:
        created = int(time.time())
        base = {"id": "chatcmpl-mock", "created": created, "model": s.model}
        usage = {
            "prompt_tokens": PROMPT_TOKENS,
            "completion_tokens": s.chunks,
            "total_tokens": PROMPT_TOKENS + s.chunks,
        }
        message = {"role": "assistant", "content": "Hello from the mock upstream."}
        choice = {"index": 0, "message": message, "logprobs": None, "finish_reason": "stop"}
        completion = {**base, "object": "chat.completion", "choices": [choice], "usage": usage}
        self.chat = _response(b"200 OK", orjson.dumps(completion))

        def chunk(delta: dict[str, str], finish: str | None) -> bytes:
            c = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
            return _sse({**base, "object": "chat.completion.chunk", "choices": [c]})

        self.stream_head = (
            b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
            b"cache-control: no-cache\r\ntransfer-encoding: chunked\r\n\r\n"
        )
        self.first = chunk({"role": "assistant", "content": "tok"}, None)
        self.token = chunk({"content": " tok"}, None)
        self.finish = chunk({}, "stop")
        self.usage = _sse(
            {**base, "object": "chat.completion.chunk", "choices": [], "usage": usage}
        )
        self.done = _http_chunk(b"data: [DONE]\n\n") + b"0\r\n\r\n"
        self.messages_payloads(s)

        vector = [round(0.1 * (i + 1), 3) for i in range(EMBEDDING_DIM)]
        self.embedding = orjson.dumps({"object": "embedding", "embedding": vector, "index": 0})
        model = {"id": s.model, "object": "model", "created": created, "owned_by": "mock"}
        self.models = _response(b"200 OK", orjson.dumps({"object": "list", "data": [model]}))
        self.health = _response(b"200 OK", b'{"status":"ok"}')
        self.not_found = _error(b"404 Not Found", "no such endpoint")
        self.bad_json = _error(b"400 Bad Request", "request body is not valid JSON")
        self.bad_request = _error(b"400 Bad Request", "malformed HTTP request")

    def messages_payloads(self, s: Settings) -> None:
        """Anthropic Messages: the reply, and a stream's first, per-token and last bytes."""
        usage = {"input_tokens": PROMPT_TOKENS, "output_tokens": s.chunks}
        message = {
            "id": "msg_mock",
            "type": "message",
            "role": "assistant",
            "model": s.model,
            "content": [{"type": "text", "text": "Hello from the mock upstream."}],
            "stop_reason": "end_turn",
            "stop_sequence": None,
            "usage": usage,
        }
        self.message = _response(b"200 OK", orjson.dumps(message))
        start = {
            **message,
            "content": [],
            "stop_reason": None,
            "usage": {**usage, "output_tokens": 1},
        }
        block = {"index": 0, "content_block": {"type": "text", "text": ""}}
        self.msg_first = _http_chunk(
            _event("message_start", {"message": start})
            + _event("content_block_start", block)
            + _event(
                "content_block_delta", {"index": 0, "delta": {"type": "text_delta", "text": "tok"}}
            )
        )
        delta = {"index": 0, "delta": {"type": "text_delta", "text": " tok"}}
        self.msg_token = _http_chunk(_event("content_block_delta", delta))
        end = {"delta": {"stop_reason": "end_turn", "stop_sequence": None}, "usage": usage}
        self.msg_tail = (
            _http_chunk(
                _event("content_block_stop", {"index": 0})
                + _event("message_delta", end)
                + _event("message_stop", {})
            )
            + b"0\r\n\r\n"
        )

    def embeddings(self, count: int, model: str) -> bytes:
        items = [self.embedding.replace(b'"index":0', b'"index":%d' % i) for i in range(count)]
        usage = b'{"prompt_tokens":%d,"total_tokens":%d}' % (count, count)
        body = b'{"object":"list","data":[%s],"model":%s,"usage":%s}' % (
            b",".join(items),
            orjson.dumps(model),
            usage,
        )
        return _response(b"200 OK", body)


@dataclass(slots=True)
class Request:
    method: bytes
    path: bytes
    body: bytes
    keep_alive: bool


def _embedding_count(data: object) -> int:
    inp = data.get("input") if isinstance(data, dict) else None
    if isinstance(inp, list) and inp and not isinstance(inp[0], int):
        return len(inp)
    return 1


class MockProtocol(asyncio.Protocol):
    """One connection: parse requests, answer them in order."""

    def __init__(self, settings: Settings, payloads: Payloads, ticker: Ticker) -> None:
        self.s = settings
        self.p = payloads
        self.ticker = ticker
        self.loop = ticker.loop
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.url = b""
        self.body: list[bytes] = []
        self.pending: collections.deque[Request] = collections.deque()
        self.stream: Stream | None = None

    # asyncio callbacks
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None  # a running Stream sees this on its next tick and stops

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            self.send(self.p.bad_request, keep_alive=False)

    # httptools callbacks
    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        method = self.parser.get_method()
        req = Request(method, self.url, b"".join(self.body), self.parser.should_keep_alive())
        self.url, self.body = b"", []
        self.pending.append(req)
        if self.stream is None:
            self.drain()

    # answering
    def drain(self) -> None:
        while self.pending and self.stream is None and self.transport is not None:
            self._answer(self.pending.popleft())

    def send(self, data: bytes, keep_alive: bool) -> None:
        if self.transport is None:
            return
        self.transport.write(data)
        if not keep_alive:
            self.transport.close()
            self.transport = None

    def _answer(self, req: Request) -> None:
        path = req.path.split(b"?", 1)[0].removeprefix(b"/v1")
        if req.method == b"POST" and path == b"/chat/completions":
            self._chat(req)
        elif req.method == b"POST" and path == b"/messages":
            self._messages(req)
        elif req.method == b"POST" and path == b"/embeddings":
            self._embeddings(req)
        elif path == b"/models":
            self.send(self.p.models, req.keep_alive)
        elif path == b"/health":
            self.send(self.p.health, req.keep_alive)
        else:
            self.send(self.p.not_found, req.keep_alive)

    def _embeddings(self, req: Request) -> None:
        try:
            data = orjson.loads(req.body)
        except orjson.JSONDecodeError:
            self.send(self.p.bad_json, req.keep_alive)
            return
        model = data.get("model", self.s.model) if isinstance(data, dict) else self.s.model
        self.send(self.p.embeddings(_embedding_count(data), str(model)), req.keep_alive)

    def _messages(self, req: Request) -> None:
        if b'"stream":true' not in req.body.replace(b" ", b""):
            self.send(self.p.message, req.keep_alive)
            return
        p = self.p
        self.stream = Stream(self, False, req.keep_alive, (p.msg_first, p.msg_token, p.msg_tail))
        self.stream.start()

    def _chat(self, req: Request) -> None:
        if b'"stream"' not in req.body:  # fast path: skip the JSON parse
            self.send(self.p.chat, req.keep_alive)
            return
        try:
            data = orjson.loads(req.body)
        except orjson.JSONDecodeError:
            self.send(self.p.bad_json, req.keep_alive)
            return
        if not (isinstance(data, dict) and data.get("stream") is True):
            self.send(self.p.chat, req.keep_alive)
            return
        opts = data.get("stream_options")
        usage = isinstance(opts, dict) and opts.get("include_usage") is True
        self.stream = Stream(self, usage, req.keep_alive)
        self.stream.start()


class Ticker:
    """Fires the chunks of many streams from one timer per time slot (1 ms by default).

    One loop timer per chunk costs more than the write it triggers; sharing a timer
    among the streams due in the same slot keeps the mock off the critical path.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, resolution: float = 0.001) -> None:
        self.loop = loop
        self.res = resolution
        self.slots: dict[int, list[Stream]] = {}

    def at(self, due: float, stream: Stream) -> None:
        slot = math.ceil(due / self.res)
        streams = self.slots.get(slot)
        if streams is None:
            self.slots[slot] = [stream]
            self.loop.call_at(slot * self.res, self._fire, slot)
        else:
            streams.append(stream)

    def _fire(self, slot: int) -> None:
        for stream in self.slots.pop(slot):
            stream.tick()


class Stream:
    """Writes one SSE response on a schedule: chunk i at start + i * delay."""

    def __init__(
        self,
        proto: MockProtocol,
        usage: bool,
        keep_alive: bool,
        frames: tuple[bytes, bytes, bytes] | None = None,  # first, token, tail (Messages)
    ) -> None:
        self.proto = proto
        self.frames = frames
        self.usage = usage
        self.keep_alive = keep_alive
        self.delay = proto.s.chunk_delay_ms / 1000
        self.start_at = proto.loop.time()
        self.sent = 0

    def start(self) -> None:
        p = self.proto.p
        if self.proto.s.chunks < 1:
            self.proto.send(p.stream_head, keep_alive=True)
            self._finish()
            return
        first = self.frames[0] if self.frames else p.first
        self.proto.send(p.stream_head + first, keep_alive=True)
        self.sent = 1
        self._schedule()

    def _schedule(self) -> None:
        if self.sent >= self.proto.s.chunks:
            self._finish()
            return
        self.proto.ticker.at(self.start_at + self.sent * self.delay, self)

    def tick(self) -> None:
        if self.proto.transport is None:  # the client went away: stop here
            return
        self.proto.send(self.frames[1] if self.frames else self.proto.p.token, keep_alive=True)
        self.sent += 1
        self._schedule()

    def _finish(self) -> None:
        p = self.proto.p
        tail = p.finish + (p.usage if self.usage else b"") + p.done
        if self.frames:
            tail = self.frames[2]
        self.proto.stream = None
        self.proto.send(tail, self.keep_alive)
        self.proto.drain()


async def serve(host: str, port: int, settings: Settings) -> None:
    loop = asyncio.get_running_loop()
    payloads, ticker = Payloads(settings), Ticker(loop)
    server = await loop.create_server(
        lambda: MockProtocol(settings, payloads, ticker), host, port, backlog=4096
    )
    async with server:
        await server.serve_forever()


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--chunks", type=int, default=Settings.chunks)
    ap.add_argument("--chunk-delay-ms", type=float, default=Settings.chunk_delay_ms)
    ap.add_argument("--model-name", default=Settings.model, help="model id in every response")
    args = ap.parse_args(argv)
    settings = Settings(args.chunks, args.chunk_delay_ms, args.model_name)
    try:
        import uvloop

        runner = uvloop.run
    except ImportError:  # plain asyncio still works, just slower
        runner = asyncio.run
    with contextlib.suppress(KeyboardInterrupt):
        runner(serve(args.host, args.port, settings))


if __name__ == "__main__":
    main()
