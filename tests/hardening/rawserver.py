"""A tiny raw-socket HTTP/1.1 upstream for faults a well-behaved framework cannot produce.

Each connection is handled by `scenario(request, writer)`; the server reads one request
(head + Content-Length body), counts the connections it has open and the bytes it wrote,
and records each request's headers. Scenarios answer with malformed JSON, broken or
truncated SSE, stalls, endless streams … and may wait for the peer to close.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field

import orjson


@dataclass
class RawRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> dict:
        return orjson.loads(self.body)


Scenario = Callable[[RawRequest, "Conn"], Awaitable[None]]


@dataclass
class Conn:
    """The server side of one connection, with what the scenario needs."""

    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    server: RawUpstream

    async def write(self, data: bytes) -> None:
        self.writer.write(data)
        self.server.bytes_sent += len(data)
        await self.writer.drain()

    async def wait_closed_by_peer(self, limit: float = 30.0) -> None:
        """Stall: send nothing more until the client closes the connection."""
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.reader.read(), limit)


@dataclass
class RawUpstream:
    scenario: Scenario
    open_connections: int = 0
    accepted: int = 0  # connections ever opened
    bytes_sent: int = 0
    requests: list[RawRequest] = field(default_factory=list)
    closed_at: list[float] = field(default_factory=list)
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_for_connections(self, count: int, timeout: float = 2.0) -> int:
        deadline = time.monotonic() + timeout
        while self.open_connections > count and time.monotonic() < deadline:
            time.sleep(0.01)
        return self.open_connections

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.open_connections += 1
        self.accepted += 1
        try:
            request = await read_request(reader)
            if request is not None:
                self.requests.append(request)
                await self.scenario(request, Conn(reader, writer, self))
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            with contextlib.suppress(Exception):
                writer.close()
            self.open_connections -= 1
            self.closed_at.append(time.monotonic())


async def read_request(reader: asyncio.StreamReader) -> RawRequest | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return None
    lines = head.decode("latin-1").split("\r\n")
    method, path, _ = lines[0].split(" ", 2)
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            name, value = line.split(":", 1)
            headers[name.strip().lower()] = value.strip()
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return RawRequest(method, path, headers, body)


@contextlib.contextmanager
def raw_upstream(scenario: Scenario) -> Iterator[RawUpstream]:
    """Run a RawUpstream on a free port in its own thread and event loop."""
    upstream = RawUpstream(scenario)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    upstream.port = sock.getsockname()[1]
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    stop = asyncio.Event()

    async def main() -> None:
        server = await asyncio.start_server(upstream._handle, sock=sock)
        ready.set()
        await stop.wait()
        server.close()
        for task in asyncio.all_tasks() - {asyncio.current_task()}:
            task.cancel()

    thread = threading.Thread(target=loop.run_until_complete, args=(main(),), daemon=True)
    thread.start()
    ready.wait(5)
    try:
        yield upstream
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(5)
        loop.close()


# -- the answers scenarios are built from ---------------------------------------------------


def response_head(status: int = 200, content_type: str = "application/json", **extra: str) -> bytes:
    lines = [f"HTTP/1.1 {status} X", f"content-type: {content_type}"]
    lines += [f"{k.replace('_', '-')}: {v}" for k, v in extra.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def chunked(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


def sse_chunk(i: int, text: str = "tok ") -> bytes:
    chunk = {
        "id": "chatcmpl-raw",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "raw",
        "choices": [{"index": 0, "delta": {"content": f"{text}{i}"}, "finish_reason": None}],
    }
    return b"data: " + orjson.dumps(chunk) + b"\n\n"


def json_reply(body: bytes, status: int = 200, **extra: str) -> Scenario:
    async def scenario(request: RawRequest, conn: Conn) -> None:
        head = response_head(status, content_length=str(len(body)), connection="close", **extra)
        await conn.write(head + body)

    return scenario


def sse_reply(events: list[bytes], *, then: str = "done", delay: float = 0.0) -> Scenario:
    """Stream `events` (chunked), then: `done` ([DONE]), `close` (cut), `stall`, `truncate`."""

    async def scenario(request: RawRequest, conn: Conn) -> None:
        head = response_head(200, "text/event-stream", transfer_encoding="chunked")
        await conn.write(head)
        for event in events:
            await conn.write(chunked(event))
            if delay:
                await asyncio.sleep(delay)
        if then == "done":
            await conn.write(chunked(b"data: [DONE]\n\n") + b"0\r\n\r\n")
        elif then == "end":  # a clean HTTP end, but the provider never said [DONE]
            await conn.write(b"0\r\n\r\n")
        elif then == "stall":
            await conn.wait_closed_by_peer()
        elif then == "truncate":
            await conn.write(b'40\r\ndata: {"choi')  # a chunk cut in the middle

    return scenario


def stall_before_headers() -> Scenario:
    async def scenario(request: RawRequest, conn: Conn) -> None:
        await conn.wait_closed_by_peer()

    return scenario


def endless_stream(event_bytes: int = 1024, limit: float = 30.0) -> Scenario:
    """An SSE stream as fast as the reader takes it; `bytes_sent` shows backpressure."""
    padding = "x" * event_bytes

    async def scenario(request: RawRequest, conn: Conn) -> None:
        await conn.write(response_head(200, "text/event-stream", transfer_encoding="chunked"))
        deadline = time.monotonic() + limit
        i = 0
        while time.monotonic() < deadline:
            await conn.write(chunked(sse_chunk(i, padding)))
            i += 1

    return scenario


def always_ok() -> Scenario:
    """A healthy provider: SSE for stream requests, a JSON completion otherwise."""
    reply = orjson.dumps(
        {
            "id": "chatcmpl-ok",
            "object": "chat.completion",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}}],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
        }
    )

    async def scenario(request: RawRequest, conn: Conn) -> None:
        try:
            stream = orjson.loads(request.body).get("stream") is True
        except (orjson.JSONDecodeError, AttributeError):
            stream = False
        if stream:
            await sse_reply([sse_chunk(0)])(request, conn)
        else:
            await json_reply(reply)(request, conn)

    return scenario
