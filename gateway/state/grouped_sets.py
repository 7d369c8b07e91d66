"""`set`s of one event-loop turn in one round trip, each caller awaiting its own write.

A value that must be stored before the request goes on (an experiment's request link:
feedback may name the request the moment its reply arrives, at any instance) cannot wait
for a batch a few ms later. Every request that sets one in the same loop turn joins one
write, made at the end of that turn: under load many requests share one round trip (and
its client CPU); alone, a request pays what a plain `set` costs. A failed write fails
every caller of that turn, as each would have failed alone.
"""

from __future__ import annotations

import asyncio

from gateway.state import StateBackend

Item = tuple[str, bytes, float | None]  # key, value, ttl in seconds


class GroupedSets:
    def __init__(self, state: StateBackend) -> None:
        self.state = state
        self._items: list[Item] = []
        self._written: asyncio.Future[None] | None = None  # the current turn's write
        self._writes: set[asyncio.Task[None]] = set()

    async def set(self, key: str, value: bytes, ttl: float | None = None) -> None:
        written = self._written
        if written is None:
            loop = asyncio.get_running_loop()
            written = self._written = loop.create_future()
            loop.call_soon(self._write_turn)
        self._items.append((key, value, ttl))
        await asyncio.shield(written)  # a caller that leaves does not cancel the others'

    def _write_turn(self) -> None:
        items, written = self._items, self._written
        self._items, self._written = [], None
        assert written is not None
        task = asyncio.get_running_loop().create_task(self._write(items, written))
        self._writes.add(task)
        task.add_done_callback(self._writes.discard)

    async def _write(self, items: list[Item], written: asyncio.Future[None]) -> None:
        try:
            await self.state.set_many(items)
        except Exception as exc:
            written.set_exception(exc)
            written.exception()  # retrieved: callers that left must not leave a warning
        else:
            written.set_result(None)
