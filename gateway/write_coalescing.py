"""Writes to one client connection made in the same event-loop turn leave in one send.

uvicorn hands every ASGI message to the socket at once: a stream's response head, and each
of its events, is a `send()` system call and a TCP segment of its own. When several upstream
events arrive in one read (a busy gateway lags, and a stream's events queue up in the
socket), the relay passes them on in one task step without waiting; the syscalls were most
of the gateway's time under 500 streams. `CoalescingTransport` keeps what is written to a
connection until the loop's next turn (`call_soon`) and writes it then in one call: a
response head with its body or first event, and a stream's queued events, go out together.
Nothing waits for a timer: the data leaves before the loop next polls for I/O. One callback
per loop turn flushes every connection written to in it (`TurnFlusher`): under a burst of
streams, the events of many connections are relayed in one turn, and a callback per
connection and event was a loop handle each.

Flow control is unchanged: the real transport still tells the protocol when its buffer is
full, and what is kept here is at most what one task step wrote.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Iterable
from typing import Any


class TurnFlusher:
    """Flushes, once at the end of the loop turn, every transport that kept writes in it."""

    __slots__ = ("__weakref__", "_dirty", "_loop", "_scheduled")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._dirty: list[CoalescingTransport] = []
        self._scheduled = False

    def add(self, transport: CoalescingTransport) -> None:
        self._dirty.append(transport)
        if not self._scheduled:
            self._scheduled = True
            self._loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._scheduled = False
        dirty, self._dirty = self._dirty, []
        for transport in dirty:
            transport.flush()  # a connection flushed already this turn has nothing left


_FLUSHERS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, TurnFlusher] = (
    weakref.WeakKeyDictionary()
)


def turn_flusher(loop: asyncio.AbstractEventLoop) -> TurnFlusher:
    flusher = _FLUSHERS.get(loop)
    if flusher is None:
        flusher = _FLUSHERS[loop] = TurnFlusher(loop)
    return flusher


class CoalescingTransport(asyncio.Transport):
    __slots__ = ("_flusher", "_pending", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__()
        self._transport = transport
        self._flusher = turn_flusher(loop)
        self._pending: list[bytes] = []

    # -- writing --------------------------------------------------------------------------
    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not data:
            return
        if not self._pending:
            self._flusher.add(self)
        self._pending.append(bytes(data))

    def writelines(self, list_of_data: Iterable[bytes | bytearray | memoryview]) -> None:
        for data in list_of_data:
            self.write(data)

    def flush(self) -> None:
        """Write what is kept, in one call; dropped if the connection is closing."""
        pending = self._pending
        if not pending:
            return
        self._pending = []
        if self._transport.is_closing():
            return
        self._transport.write(pending[0] if len(pending) == 1 else b"".join(pending))

    def write_eof(self) -> None:
        self.flush()
        self._transport.write_eof()

    def can_write_eof(self) -> bool:
        return self._transport.can_write_eof()

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def abort(self) -> None:
        self._pending = []
        self._transport.abort()

    def get_write_buffer_size(self) -> int:
        return self._transport.get_write_buffer_size() + sum(map(len, self._pending))

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return self._transport.get_write_buffer_limits()

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self._transport.set_write_buffer_limits(high, low)

    # -- everything else is the real transport's ----------------------------------------
    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._transport.get_extra_info(name, default)

    def pause_reading(self) -> None:
        self._transport.pause_reading()

    def resume_reading(self) -> None:
        self._transport.resume_reading()

    def is_reading(self) -> bool:
        return self._transport.is_reading()

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._transport.set_protocol(protocol)

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._transport.get_protocol()
