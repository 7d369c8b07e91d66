"""Notice a client that leaves while the pipeline works on its request.

After the body is read, the only ASGI message left for the request is
`http.disconnect`. When the connection is lost the context is marked and the upstream wait
dispatch has open is expired, so the provider call is cut within the event loop's next turn
instead of running on (non-stream calls stayed open ~10 s after their clients left). The
connection says so itself where it can (`lean_connection.on_disconnect`); elsewhere a task
waits on `receive()`. Streams are watched by ReplyResponse once they start.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from types import TracebackType

from starlette.types import Receive

from gateway.context import RequestContext
from gateway.lean_connection import on_disconnect


def client_left(ctx: RequestContext) -> None:
    ctx.client_gone = True
    wait = ctx.upstream_wait
    if wait is not None:
        wait.expire_now()


async def _watch(receive: Receive, ctx: RequestContext) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
    client_left(ctx)


class DisconnectWatch:
    """Watch for the client leaving while the body of the `async with` runs: told by the
    connection where it can (`on_disconnect`), else by a task waiting on `receive()`."""

    __slots__ = ("_ctx", "_receive", "_stop", "_watcher")

    def __init__(self, receive: Receive, ctx: RequestContext) -> None:
        self._receive = receive
        self._ctx = ctx
        self._stop: Callable[[], None] | None = None
        self._watcher: asyncio.Task[None] | None = None

    async def __aenter__(self) -> None:
        ctx = self._ctx
        self._stop = on_disconnect(self._receive, lambda: client_left(ctx))
        if self._stop is None:
            self._watcher = asyncio.get_running_loop().create_task(_watch(self._receive, ctx))

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._stop is not None:
            self._stop()
        if self._watcher is not None:
            self._watcher.cancel()
