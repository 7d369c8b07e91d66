"""Pull a stream's first event inside dispatch, so a stream that fails before sending
anything is still a failed attempt that can be retried or fall back. Once the client
has bytes, a failure is the relay's to report."""

from __future__ import annotations

from collections.abc import AsyncIterator

from gateway.types import Reply


class PrimedStream:
    """The first payload (already read) followed by the rest of the upstream stream.

    A class rather than an async generator: `aclose()` must release the upstream even
    when iteration never started (a client gone before the first byte)."""

    def __init__(self, first: bytes | None, rest: AsyncIterator[bytes]) -> None:
        self._first = first
        self._rest = rest

    def __aiter__(self) -> PrimedStream:
        return self

    async def __anext__(self) -> bytes:
        if self._first is not None:
            first, self._first = self._first, None
            return first
        return await anext(self._rest)

    async def aclose(self) -> None:
        aclose = getattr(self._rest, "aclose", None)
        if aclose is not None:
            await aclose()


async def prime(reply: Reply) -> None:
    """Read the first event of a stream reply; on any failure release it and re-raise."""
    assert reply.stream is not None
    upstream = reply.stream
    try:
        first: bytes | None = await anext(upstream)
    except StopAsyncIteration:
        first = None
    except BaseException:
        await reply.close()
        raise
    reply.stream = PrimedStream(first, upstream)
