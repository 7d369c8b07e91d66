"""What is written to a client connection in one loop turn reaches the socket in one write,
in order, before a close or an EOF; nothing is written once the connection is closing.
A real loopback connection: the server side's transport is recorded, the client reads."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from gateway.config.schema import ServerConfig
from gateway.connection_guard import ConnectionLimits, GuardedHTTP
from gateway.write_coalescing import CoalescingTransport
from tests.servers import serve_in_thread


class Recorded(CoalescingTransport):
    """The real transport's writes, as the coalescing layer makes them."""

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(transport, loop)
        self.writes: list[bytes] = []
        real_write = transport.write

        def write(data: bytes | bytearray | memoryview) -> None:
            self.writes.append(bytes(data))
            real_write(data)

        transport.write = write  # type: ignore[method-assign]


class Server(asyncio.Protocol):
    def __init__(self, accepted: asyncio.Future[Recorded]) -> None:
        self.accepted = accepted

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.accepted.set_result(Recorded(transport, asyncio.get_running_loop()))


@pytest.fixture
async def connection() -> AsyncIterator[tuple[Recorded, asyncio.StreamReader]]:
    loop = asyncio.get_running_loop()
    accepted: asyncio.Future[Recorded] = loop.create_future()
    server = await loop.create_server(lambda: Server(accepted), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    transport = await accepted
    yield transport, reader
    writer.close()
    transport.close()
    server.close()
    await server.wait_closed()


async def test_writes_of_one_loop_turn_reach_the_socket_in_one_write_in_order(
    connection: tuple[Recorded, asyncio.StreamReader],
) -> None:
    transport, reader = connection
    for part in (b"HTTP/1.1 200 OK\r\n\r\n", b"data: 1\n\n", b"", b"data: 2\n\n"):
        transport.write(part)
    assert transport.writes == []  # kept until the loop's next turn
    assert await reader.readexactly(37) == b"HTTP/1.1 200 OK\r\n\r\ndata: 1\n\ndata: 2\n\n"
    assert transport.writes == [b"HTTP/1.1 200 OK\r\n\r\ndata: 1\n\ndata: 2\n\n"]

    transport.write(b"data: 3\n\n")  # a later turn: a write of its own
    assert await reader.readexactly(9) == b"data: 3\n\n"
    assert len(transport.writes) == 2


async def test_a_close_sends_what_was_written_before_it(
    connection: tuple[Recorded, asyncio.StreamReader],
) -> None:
    transport, reader = connection
    transport.writelines([b"last ", b"words"])
    transport.close()
    assert await reader.read() == b"last words"  # then EOF
    assert transport.writes == [b"last words"]


async def test_write_eof_sends_what_was_written_before_it(
    connection: tuple[Recorded, asyncio.StreamReader],
) -> None:
    transport, reader = connection
    transport.write(b"refused")
    transport.write_eof()
    assert await reader.read() == b"refused"


async def test_nothing_is_written_once_the_connection_is_closing(
    connection: tuple[Recorded, asyncio.StreamReader],
) -> None:
    transport, reader = connection
    transport.abort()
    transport.write(b"too late")
    await asyncio.sleep(0.01)
    assert transport.writes == []
    assert await reader.read() == b""


async def _answer_then_work(scope: Any, receive: Any, send: Any) -> None:
    """A complete response, then work after the last send (settlement, metrics, logs)."""
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"done"})
    time.sleep(WORK_SECONDS)  # the same task step: no await before it


WORK_SECONDS = 0.6


def test_a_complete_response_leaves_before_the_app_s_work_after_it() -> None:
    limits = ConnectionLimits.from_config(ServerConfig())
    with serve_in_thread(_answer_then_work, http=GuardedHTTP(limits)) as server:
        started = time.monotonic()
        answer = httpx.get(server.url, timeout=5)
        waited = time.monotonic() - started
    assert answer.text == "done"
    assert waited < WORK_SECONDS / 2  # not kept until the end of the loop turn
