"""Pull a stream's first event inside dispatch, so a stream that fails before sending
anything is still a failed attempt that can be retried or fall back. Once the client
has bytes, a failure is the relay's to report.

The stream also carries its deadline: an upstream that never ends (or stalls under its
read timeout) is cut when the request's stream time is up, and the relay reports it."""

from __future__ import annotations

import asyncio
from typing import Any

from gateway.errors import UpstreamTimeout
from gateway.types import Reply, Stream


class PrimedStream:
    """The first payload (already read) followed by the rest of the upstream stream,
    each read bounded by the stream's deadline (a loop time).

    A class rather than an async generator: `aclose()` must release the upstream even
    when iteration never started (a client gone before the first byte).

    The deadline is one timer for the whole stream, armed at the first wait: a timeout
    per read (`asyncio.timeout_at`) made and cancelled a loop timer per event, ~11 us each
    on uvloop, a fifth of the gateway's CPU under 500 streams. When it fires during a read
    it cancels the reading task, as `asyncio.timeout` would; between reads it is noticed
    by the next one.
    """

    __slots__ = (
        "_cut",
        "_expired",
        "_expires",
        "_first",
        "_reader",
        "_reading",
        "_rest",
        "_seconds",
        "_timer",
    )

    def __init__(self, first: bytes | None, rest: Stream, expires: float, seconds: float) -> None:
        self._first = first
        self._rest = rest
        self._expires = expires
        self._seconds = seconds
        self._timer: asyncio.TimerHandle | None = None
        self._reader: asyncio.Task[Any] | None = None  # the task that reads the stream
        self._reading = False
        self._expired = False  # the deadline passed
        self._cut = False  # ... and the timer cancelled a read

    def __aiter__(self) -> PrimedStream:
        return self

    async def __anext__(self) -> bytes:
        if self._first is not None:
            first, self._first = self._first, None
            return first
        reader = self._reader
        if reader is None:
            # Once per stream: in Python 3.11 each `current_task()` or `get_running_loop()`
            # is a getpid() system call. A stream is read by the task of its request.
            reader = self._reader = asyncio.current_task()
            assert reader is not None
            self._timer = asyncio.get_running_loop().call_at(self._expires, self._expire)
        if self._expired:
            await self.aclose()
            raise stream_expired(self._seconds)
        cancelling = reader.cancelling()
        self._reading = True
        try:
            return await anext(self._rest)
        except asyncio.CancelledError:
            if not self._cut or reader.uncancel() > cancelling:
                raise  # not (only) ours: the client left, the server is stopping
            await self.aclose()
            raise stream_expired(self._seconds) from None
        except StopAsyncIteration:
            self._stop_timer()
            raise
        finally:
            self._reading = False

    def _expire(self) -> None:
        self._expired = True
        if self._reading and self._reader is not None:
            self._cut = True
            self._reader.cancel()

    def _stop_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()

    async def aclose(self) -> None:
        self._stop_timer()
        aclose = getattr(self._rest, "aclose", None)
        if aclose is not None:
            await aclose()


def stream_expired(seconds: float) -> UpstreamTimeout:
    # Not retryable: a long answer is not a broken deployment (its breaker stays closed).
    return UpstreamTimeout(
        f"The stream passed its deadline of {seconds:g}s and was ended by the gateway.",
        code="stream_deadline_exceeded",
        retryable=False,
    )


async def prime(reply: Reply, seconds: float, elapsed: float) -> None:
    """Read the first event of a stream reply; on any failure release it and re-raise.

    `seconds` is the stream's deadline counted from the request's arrival, `elapsed`
    the time since then."""
    assert reply.stream is not None
    upstream = reply.stream
    try:
        first: bytes | None = await anext(upstream)
    except StopAsyncIteration:
        first = None
    except BaseException:
        await reply.close()
        raise
    expires = asyncio.get_running_loop().time() + seconds - elapsed
    reply.stream = PrimedStream(first, upstream, expires, seconds)
