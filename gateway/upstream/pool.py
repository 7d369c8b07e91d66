"""The keep-alive connections to one origin, at most `limit` open at once.

`acquire()` takes the most recently used idle connection (LIFO keeps a few connections
warm instead of all of them lukewarm), opens a new one while under the limit, or waits
up to `pool_timeout` seconds for one to come back. A connection handed back goes
straight to the longest waiter; with no waiter it waits idle, at most `max_idle` of
them, each for `idle_seconds` before it is dropped at the next acquire. A connection the
upstream closes leaves the pool at once (its `on_closed`), freeing its place.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Awaitable, Callable

from gateway.upstream.connection import Connection
from gateway.upstream.errors import PoolTimeout, ServerDisconnected

Opener = Callable[["Pool"], Awaitable[Connection]]


class Pool:
    def __init__(
        self,
        opener: Opener,
        *,
        limit: int,
        max_idle: int,
        pool_timeout: float,
        idle_seconds: float,
    ) -> None:
        self._opener = opener
        self._limit = limit
        self._max_idle = max_idle
        self._pool_timeout = pool_timeout
        self._idle_seconds = idle_seconds
        self._idle: list[Connection] = []
        self._open: set[Connection] = set()
        self._connecting = 0
        # A waiter gets a connection handed over, or None: a place came free, open one.
        self._waiters: collections.deque[asyncio.Future[Connection | None]] = collections.deque()
        self._closed = False

    @property
    def in_use(self) -> int:
        """Open connections carrying a request (not idle, not closed)."""
        return len(self._open) - len(self._idle)

    @property
    def idle(self) -> int:
        return len(self._idle)

    async def acquire(self, *, fresh: bool = False) -> Connection:
        """A connection for one request; `fresh`: never an idle one (a retry after a
        stale keep-alive connection failed)."""
        if self._closed:
            raise ServerDisconnected("the upstream client is closed")
        if fresh:
            if self._idle and self._room() == 0:
                self._idle[0].close()  # the oldest idle one makes room
        else:
            idle = self._take_idle()
            if idle is not None:
                return idle
        if self._room() > 0:
            return await self._connect()
        return await self._wait()

    def put(self, connection: Connection) -> None:
        """A connection whose response was read to its end, kept alive."""
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(connection)
                return
        if len(self._idle) < self._max_idle and not self._closed:
            self._idle.append(connection)
        else:
            connection.close()

    def forget(self, connection: Connection) -> None:
        """A connection closed (by either side): its place is free."""
        if connection in self._open:
            self._open.discard(connection)
            if connection in self._idle:
                self._idle.remove(connection)
            self._wake_one()

    def close(self) -> None:
        """Close every connection, busy or idle; waiters fail."""
        self._closed = True
        for connection in list(self._open):
            connection.close()
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_exception(ServerDisconnected("the upstream client is closed"))

    # -- internals -------------------------------------------------------------------------

    def _room(self) -> int:
        return self._limit - len(self._open) - self._connecting

    def _take_idle(self) -> Connection | None:
        idle = self._idle
        if not idle:
            return None
        while idle:
            connection = idle.pop()
            if not connection.closed and connection.idle_for() < self._idle_seconds:
                return connection
            connection.close()
        return None

    async def _connect(self) -> Connection:
        self._connecting += 1
        try:
            connection = await self._opener(self)
        except BaseException:
            self._connecting -= 1
            self._wake_one()
            raise
        self._connecting -= 1
        if self._closed:
            connection.close()
            raise ServerDisconnected("the upstream client is closed")
        self._open.add(connection)
        return connection

    async def _wait(self) -> Connection:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._pool_timeout
        while True:
            waiter: asyncio.Future[Connection | None] = loop.create_future()
            self._waiters.append(waiter)
            timer = loop.call_at(deadline, _expire, waiter, self._pool_timeout)
            try:
                connection = await waiter
            except BaseException:
                self._pass_on(waiter)
                raise
            finally:
                timer.cancel()
            if connection is not None and not connection.closed:
                return connection
            if self._room() > 0:
                return await self._connect()
            idle = self._take_idle()
            if idle is not None:
                return idle

    def _pass_on(self, waiter: asyncio.Future[Connection | None]) -> None:
        """A waiter that gave up (cancelled, timed out) passes on what it was given."""
        if waiter.cancelled() or not waiter.done() or waiter.exception() is not None:
            return
        connection = waiter.result()
        if connection is None:
            self._wake_one()
        else:
            self.put(connection)

    def _wake_one(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return


def _expire(waiter: asyncio.Future[Connection | None], seconds: float) -> None:
    if not waiter.done():
        waiter.set_exception(PoolTimeout(f"no upstream connection came free within {seconds:g} s"))
