"""Notice a client that leaves while the pipeline works on its request.

After the body is read, the only ASGI message left for the request is
`http.disconnect`. A watcher task waits for it and, when it comes, marks the context and
expires the upstream wait dispatch has open, so the provider call is cut within the
event loop's next turn instead of running on (non-stream calls stayed open ~10 s after
their clients left). Streams are watched the same way by ReplyResponse once they start.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from starlette.types import Receive

from gateway.context import RequestContext


async def _watch(receive: Receive, ctx: RequestContext) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
    ctx.client_gone = True
    wait = ctx.upstream_wait
    if wait is not None and not wait.expired():
        wait.reschedule(0)  # a past time: fires on the next loop turn


@contextlib.asynccontextmanager
async def watch_disconnect(receive: Receive, ctx: RequestContext) -> AsyncIterator[None]:
    """Watch for the client leaving while the body of the `async with` runs."""
    watcher = asyncio.get_running_loop().create_task(_watch(receive, ctx))
    try:
        yield
    finally:
        watcher.cancel()
