"""One upstream response: status and headers at once, the body as it arrives.

The connection feeds the body in (`_feed`, `_finish`, `_fail`); the caller reads it whole
(`read()`) or chunk by chunk (`async for chunk in response`: whatever arrived since the
last step, joined). Past `HIGH_WATER` unread bytes the connection stops reading from the
socket until the caller catches up, so a slow consumer slows the upstream down instead of
filling memory. `release()` hands the connection back for reuse only when the body was
read to its end and the upstream keeps the connection alive; anything else closes it.
"""

from __future__ import annotations

import asyncio
import zlib
from typing import Protocol

from gateway.upstream.errors import InvalidResponse

HIGH_WATER = 128 * 1024  # unread bytes before the socket is paused


class Carrier(Protocol):
    """What a response needs of its connection (gateway/upstream/connection.py)."""

    def finish(self, *, reusable: bool) -> None: ...
    def close(self) -> None: ...
    def pause_reading(self) -> None: ...
    def resume_reading(self) -> None: ...


class Response:
    __slots__ = (
        "_chunks",
        "_complete",
        "_connection",
        "_decoder",
        "_done",
        "_error",
        "_keep_alive",
        "_loop",
        "_size",
        "_waiter",
        "headers",
        "status",
    )

    def __init__(
        self,
        connection: Carrier,
        status: int,
        headers: dict[str, str],
        keep_alive: bool,
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        self.status = status
        self.headers = headers  # lower-case names; repeated headers joined by ", "
        self._connection = connection
        self._keep_alive = keep_alive
        # The connection's loop, kept: `get_running_loop()` is a getpid() system call in
        # Python 3.11, and a stream waits once per event.
        self._loop = loop
        self._chunks: list[bytes] = []
        self._size = 0
        self._complete = False
        self._error: BaseException | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._decoder = _decoder(headers.get("content-encoding"))
        self._done = False  # released or closed

    @property
    def content_type(self) -> str:
        """The media type, lower case, without parameters (aiohttp's `content_type`)."""
        value = self.headers.get("content-type")
        if not value:
            return "application/octet-stream"
        return value.split(";", 1)[0].strip().lower()

    async def read(self) -> bytes:
        """The whole (decoded) body."""
        while not self._complete:
            if self._error is not None:
                raise self._error
            await self._wait()
        if self._error is not None:
            raise self._error
        return self._take()

    def __aiter__(self) -> Response:
        return self

    async def __anext__(self) -> bytes:
        while not self._chunks:
            if self._error is not None:  # what arrived before the failure is given first
                raise self._error
            if self._complete:
                raise StopAsyncIteration
            # `_wait()` inlined: a stream waits here between events, a frame less to hold.
            waiter = self._waiter = self._loop.create_future()
            try:
                await waiter
            finally:
                self._waiter = None
        return self._take()

    def release(self) -> None:
        """Done with the response: the connection is reused if the whole body came in (read
        or not) and the upstream keeps it alive, closed otherwise."""
        if self._done:
            return
        self._done = True
        reusable = self._complete and self._keep_alive and self._error is None
        self._connection.finish(reusable=reusable)

    def close(self) -> None:
        """Done with the response, the connection closed whatever was left unread."""
        if not self._done:
            self._done = True
            self._connection.finish(reusable=False)

    # -- fed by the connection -------------------------------------------------------------

    def _feed(self, data: bytes) -> None:
        if self._decoder is not None:
            try:
                data = self._decoder.decompress(data)
            except zlib.error:
                self._undecodable()
                return
            if not data:
                return
        self._chunks.append(data)
        self._size += len(data)
        if self._size > HIGH_WATER:
            self._connection.pause_reading()
        self._wake()

    def _finish(self) -> None:
        if self._complete or self._error is not None:
            return
        if self._decoder is not None:
            try:
                tail = self._decoder.flush()
            except zlib.error:
                self._undecodable()
                return
            if tail:
                self._chunks.append(tail)
        self._complete = True
        self._wake()

    def _fail(self, error: BaseException) -> None:
        if self._complete or self._error is not None:
            return
        self._error = error
        self._wake()

    # -- internals -------------------------------------------------------------------------

    def _undecodable(self) -> None:
        self._fail(InvalidResponse("the body does not match its content-encoding"))
        self._connection.close()

    def _take(self) -> bytes:
        chunks = self._chunks
        data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        self._chunks = []
        self._size = 0
        self._connection.resume_reading()
        return data

    async def _wait(self) -> None:
        waiter = self._waiter = self._loop.create_future()
        try:
            await waiter
        finally:
            self._waiter = None

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)


class _Decoder:
    """gzip, or `deflate` as servers send it: zlib-wrapped (RFC 9110) or, often, raw."""

    def __init__(self, encoding: str) -> None:
        self._encoding = encoding
        self._inner: zlib._Decompress | None = None

    def decompress(self, data: bytes) -> bytes:
        if self._inner is None:
            self._inner = zlib.decompressobj(self._wbits(data))
        return self._inner.decompress(data)

    def flush(self) -> bytes:
        """The rest; raises zlib.error when the body stopped inside the compressed data."""
        if self._inner is None:
            return b""  # an empty body
        tail = self._inner.flush()
        if not self._inner.eof:
            raise zlib.error("the compressed body is cut short")
        return tail

    def _wbits(self, first: bytes) -> int:
        if self._encoding != "deflate":
            return 16 + zlib.MAX_WBITS
        wrapped = len(first) >= 2 and first[0] & 0x0F == 8 and (first[0] << 8 | first[1]) % 31 == 0
        return zlib.MAX_WBITS if wrapped else -zlib.MAX_WBITS


def _decoder(encoding: str | None) -> _Decoder | None:
    if encoding is None:
        return None
    encoding = encoding.strip().lower()
    if encoding in ("", "identity"):
        return None
    if encoding in ("gzip", "x-gzip", "deflate"):
        return _Decoder("deflate" if encoding == "deflate" else "gzip")
    raise InvalidResponse(f"unsupported content-encoding {encoding!r}")
