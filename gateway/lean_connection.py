"""Smaller stand-ins for the per-connection objects uvicorn's httptools protocol makes.

Every open connection (every open stream) holds them for its whole life. uvicorn makes two
`asyncio.Event`s per connection (its flow control's and each request's `message_event`)
and an empty `deque` for pipelined requests; an Event's waiters are a `deque` too, and an
empty deque takes 760 bytes. These do the same for what uvicorn calls on them, in about a
tenth of the memory: ~2.3 KB less per open stream (benchmarks/stream_memory.py).
`GuardedProtocol` installs them (connection_guard.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any


class Flag:
    """`asyncio.Event` for the calls uvicorn makes (`set`, `clear`, `is_set`, `wait`), on
    a given loop, with its waiters in a list made at the first wait; `listener`, when
    given, is called at each `set` (see `on_disconnect`)."""

    __slots__ = ("_loop", "_set", "_waiters", "listener")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._set = False
        self._waiters: list[asyncio.Future[None]] | None = None
        self.listener: Callable[[], None] | None = None

    def is_set(self) -> bool:
        return self._set

    def set(self) -> None:
        if self._set:
            return
        self._set = True
        for waiter in self._waiters or ():
            if not waiter.done():
                waiter.set_result(None)
        if self.listener is not None:
            self.listener()

    def clear(self) -> None:
        self._set = False

    async def wait(self) -> bool:
        if self._set:
            return True
        waiter = self._loop.create_future()
        if self._waiters is None:
            self._waiters = []
        self._waiters.append(waiter)
        try:
            await waiter
            return True
        finally:
            self._waiters.remove(waiter)


class FlowControl:
    """uvicorn's `FlowControl` (flow_control.py), slotted, its writable event a `Flag`."""

    __slots__ = ("_transport", "_writable", "read_paused", "write_paused")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self.read_paused = False
        self.write_paused = False
        self._writable = Flag(loop)
        self._writable.set()

    async def drain(self) -> None:
        await self._writable.wait()

    def pause_reading(self) -> None:
        if not self.read_paused:
            self.read_paused = True
            self._transport.pause_reading()

    def resume_reading(self) -> None:
        if self.read_paused:
            self.read_paused = False
            self._transport.resume_reading()

    def pause_writing(self) -> None:
        if not self.write_paused:
            self.write_paused = True
            self._writable.clear()

    def resume_writing(self) -> None:
        if self.write_paused:
            self.write_paused = False
            self._writable.set()


class Pipeline(list[Any]):
    """The queue of pipelined requests: uvicorn calls `appendleft`, `pop` and `bool` on it.
    Almost always empty (an empty list is 56 bytes, an empty deque 760)."""

    __slots__ = ()

    def appendleft(self, item: Any) -> None:
        self.insert(0, item)


def on_disconnect(receive: Any, callback: Callable[[], None]) -> Callable[[], None] | None:
    """Have `callback` called, on the event loop, when the client of this request leaves;
    returns what stops that. Only for a request of a `GuardedProtocol` connection (`receive`
    is its uvicorn cycle's, with a `Flag` as the cycle's `message_event`, which uvicorn sets
    when the connection is lost); None otherwise: then wait on `receive()` for
    `http.disconnect`, which a task per request costs (~4 us a request, here none).
    Call it once the request's body is read: what the flag says then is a disconnect."""
    cycle: Any = getattr(receive, "__self__", None)
    flag = getattr(cycle, "message_event", None)
    if type(flag) is not Flag or flag.listener is not None:
        return None

    def heard() -> None:
        if cycle.disconnected:
            flag.listener = None
            callback()

    if cycle.disconnected:
        callback()
        return _nothing
    flag.listener = heard

    def stop() -> None:
        if flag.listener is heard:
            flag.listener = None

    return stop


def _nothing() -> None:
    return None
