"""Pull a stream's first event inside dispatch, so a stream that fails before sending
anything is still a failed attempt that can be retried or fall back. Once the client
has bytes, a failure is the relay's to report.

The stream also carries its deadline: an upstream that never ends (or stalls under its
read timeout) is cut when the request's stream time is up, and the relay reports it."""

from __future__ import annotations

import asyncio

from gateway.errors import UpstreamTimeout
from gateway.types import Reply, Stream


class PrimedStream:
    """The first payload (already read) followed by the rest of the upstream stream,
    each read bounded by the stream's deadline (a loop time).

    A class rather than an async generator: `aclose()` must release the upstream even
    when iteration never started (a client gone before the first byte)."""

    def __init__(self, first: bytes | None, rest: Stream, expires: float, seconds: float) -> None:
        self._first = first
        self._rest = rest
        self._expires = expires
        self._seconds = seconds

    def __aiter__(self) -> PrimedStream:
        return self

    async def __anext__(self) -> bytes:
        if self._first is not None:
            first, self._first = self._first, None
            return first
        try:
            async with asyncio.timeout_at(self._expires):
                return await anext(self._rest)
        except TimeoutError:
            await self.aclose()
            raise stream_expired(self._seconds) from None

    async def aclose(self) -> None:
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
