"""One keep-alive HTTP/1.1 connection to an upstream: an asyncio Protocol whose bytes go
straight into the httptools (llhttp) response parser.

A connection carries one request at a time (no pipelining). `send()` writes a request
and returns a future for the response head; the body then flows into the `Response`.
The read timeout is per read, like aiohttp's `sock_read`: it fires when no byte came
for `read_timeout` seconds while a response is expected and the socket is not paused
for a slow consumer. It is one timer per connection, moved lazily: a read only records
the time, and the timer, when it fires early, sets itself again for the new deadline.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import cast

import httptools

from gateway.upstream.errors import InvalidResponse, ReadTimeout, ServerDisconnected
from gateway.upstream.response import Response

NO_BODY_STATUSES = (204, 304)


class Connection(asyncio.Protocol):
    __slots__ = (
        "_expecting",
        "_head",
        "_informational",
        "_last_read",
        "_loop",
        "_on_closed",
        "_on_idle",
        "_parser",
        "_paused",
        "_raw_headers",
        "_read_timeout",
        "_response",
        "_timer",
        "_transport",
        "_until_close",
        "closed",
        "idle_since",
        "received",
        "reused",
    )

    def __init__(
        self,
        read_timeout: float,
        on_idle: Callable[[Connection], None],
        on_closed: Callable[[Connection], None],
    ) -> None:
        self._loop = asyncio.get_running_loop()
        self._read_timeout = read_timeout
        self._on_idle = on_idle  # the pool takes it back
        self._on_closed = on_closed  # the pool forgets it
        self._parser = httptools.HttpResponseParser(self)
        self._transport: asyncio.Transport | None = None
        self.closed = False
        self.reused = False  # it served a response before the one in flight
        self.received = False  # a byte of the response in flight came in
        self.idle_since = 0.0
        self._head: asyncio.Future[Response] | None = None
        self._response: Response | None = None
        self._expecting = False  # a response (head or body) is still to come
        self._raw_headers: list[tuple[bytes, bytes]] = []
        self._informational = False  # a 1xx head: the real one follows
        self._until_close = False  # no length, not chunked: the body ends with the connection
        self._paused = False
        self._last_read = 0.0
        self._timer: asyncio.TimerHandle | None = None

    def idle_for(self) -> float:
        """Seconds since it went back to the pool (on its loop's clock)."""
        return self._loop.time() - self.idle_since

    def send(self, request: bytes) -> asyncio.Future[Response]:
        """Write a whole request; the future gets the response once its head is in."""
        transport = self._transport
        if self.closed or transport is None or transport.is_closing():
            raise ServerDisconnected("the upstream closed the connection while it was idle")
        self.received = False
        self._expecting = True
        head = self._head = self._loop.create_future()
        transport.write(request)
        self._last_read = self._loop.time()
        if self._timer is None:
            self._timer = self._loop.call_at(
                self._last_read + self._read_timeout, self._check_read_timeout
            )
        return head

    def finish(self, *, reusable: bool) -> None:
        """The response in flight is done with: back to the pool, or closed."""
        self._response = None
        if reusable and not self.closed and not self._expecting:
            self.reused = True
            self.idle_since = self._loop.time()
            self._on_idle(self)
        else:
            self.close()

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self._stop_timer()
        if self._transport is not None:
            self._transport.close()
        self._fail_pending(ServerDisconnected("the connection was closed"))
        self._on_closed(self)

    def pause_reading(self) -> None:
        if not self._paused and not self.closed and self._transport is not None:
            self._paused = True
            self._transport.pause_reading()

    def resume_reading(self) -> None:
        if self._paused:
            self._paused = False
            self._last_read = self._loop.time()  # the wait for the consumer does not count
            if not self.closed and self._transport is not None:
                self._transport.resume_reading()

    # -- asyncio.Protocol ------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self.received = True
        self._last_read = self._loop.time()
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._abort(InvalidResponse("the upstream switched protocols"))
        except httptools.HttpParserError as exc:
            cause = exc.__context__
            if not isinstance(cause, InvalidResponse):
                cause = InvalidResponse(f"malformed HTTP response ({exc})")
            self._abort(cause)

    def connection_lost(self, exc: Exception | None) -> None:
        was_closed, self.closed = self.closed, True
        self._stop_timer()
        if self._until_close and self._expecting and self._response is not None:
            self._expecting = False
            self._response._finish()
        else:
            self._fail_pending(
                ServerDisconnected("the upstream closed the connection before the response ended")
            )
        if not was_closed:
            self._on_closed(self)

    # -- httptools callbacks -----------------------------------------------------------------

    def on_message_begin(self) -> None:
        if self._head is None:
            raise InvalidResponse("the upstream sent a response nobody asked for")
        self._raw_headers = []

    def on_header(self, name: bytes, value: bytes) -> None:
        self._raw_headers.append((name, value))

    def on_headers_complete(self) -> None:
        status = self._parser.get_status_code()
        if status < 200:
            self._informational = True
            return
        headers = _headers(self._raw_headers)
        self._raw_headers.clear()  # kept as long as the connection otherwise
        response = Response(self, status, headers, self._parser.should_keep_alive(), self._loop)
        self._until_close = (
            "content-length" not in headers
            and "chunked" not in headers.get("transfer-encoding", "").lower()
            and status not in NO_BODY_STATUSES
        )
        self._response = response
        head, self._head = self._head, None
        if head is not None and not head.done():
            head.set_result(response)

    def on_body(self, body: bytes) -> None:
        if self._response is not None:
            self._response._feed(body)

    def on_message_complete(self) -> None:
        if self._informational:
            self._informational = False
            return
        self._expecting = False
        if self._response is not None:
            self._response._finish()

    # -- internals -------------------------------------------------------------------------

    def _abort(self, error: BaseException) -> None:
        self._fail_pending(error)
        self.close()

    def _fail_pending(self, error: BaseException) -> None:
        self._expecting = False
        head, self._head = self._head, None
        if head is not None and not head.done():
            head.set_exception(error)
        elif self._response is not None:
            self._response._fail(error)

    def _check_read_timeout(self) -> None:
        self._timer = None
        if self.closed or not self._expecting:
            return
        now = self._loop.time()
        deadline = (now if self._paused else self._last_read) + self._read_timeout
        if now < deadline:
            self._timer = self._loop.call_at(deadline, self._check_read_timeout)
            return
        self._abort(ReadTimeout(f"no data from the upstream for {self._read_timeout:g} s"))

    def _stop_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


def _headers(raw: list[tuple[bytes, bytes]]) -> dict[str, str]:
    headers: dict[str, str] = {}
    for name, value in raw:
        key = name.decode("latin-1").lower()
        text = value.decode("latin-1")
        headers[key] = f"{headers[key]}, {text}" if key in headers else text
    return headers
