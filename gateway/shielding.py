"""Await work that must finish even when its task is cancelled, cheaply when it never waits.

`anyio.CancelScope(shield=True)` costs 4-5 us to enter and leave (it asks sniffio which
event loop runs, a `current_task()` or two). Most completion work (token settlement,
metrics, the access log) never suspends, and a coroutine that does not suspend cannot be
cancelled: its first step runs bare, and only work that does suspend goes on under the
shield, from the point it suspended.

The shield is entered after that first step, so `work` must not suspend inside an anyio
cancel scope of its own (httpx and other anyio code do): anyio requires scopes to exit in
the order they were entered. The gateway's completion callbacks (asyncio, redis-py,
asyncpg) never enter one; a provider stream's close may, and is shielded whole instead.
"""

from __future__ import annotations

import types
from collections.abc import Coroutine, Generator
from typing import Any

import anyio


async def run_shielded(work: Coroutine[Any, Any, None]) -> None:
    """Run `work` to its end; a cancellation of the caller waits until it is done."""
    try:
        waiting_on = work.send(None)
    except StopIteration:
        return  # finished without suspending: nothing could have cancelled it
    except BaseException:
        work.close()
        raise
    with anyio.CancelScope(shield=True):
        await _go_on(work, waiting_on)


@types.coroutine
def _go_on(work: Coroutine[Any, Any, None], waiting_on: Any) -> Generator[Any, Any, None]:
    """Await `work` from where its first step suspended on `waiting_on` (what `await`
    does after its first step, written out)."""
    while True:
        try:
            sent = yield waiting_on
        except GeneratorExit:
            work.close()
            raise
        except BaseException as exc:  # thrown into the awaiting task: passed on to `work`
            try:
                waiting_on = work.throw(exc)
            except StopIteration:
                return
        else:
            try:
                waiting_on = work.send(sent)
            except StopIteration:
                return
