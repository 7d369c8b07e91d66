"""Sets of one loop turn in one write (gateway/state/grouped_sets.py)."""

from __future__ import annotations

import asyncio

import pytest

from gateway.state.grouped_sets import GroupedSets, Item
from gateway.state.memory import MemoryState


class CountedState(MemoryState):
    def __init__(self, fail: bool = False) -> None:
        super().__init__()
        self.writes: list[list[Item]] = []
        self.fail = fail

    async def set_many(self, items: list[Item]) -> None:
        self.writes.append(list(items))
        await asyncio.sleep(0.01)  # a round trip
        if self.fail:
            raise ConnectionError("Redis went away")
        await super().set_many(items)


async def test_the_sets_of_one_turn_share_one_write_and_each_waits_for_it() -> None:
    state = CountedState()
    sets = GroupedSets(state)
    await asyncio.gather(*(sets.set(f"k{i}", b"v", 60) for i in range(5)))
    assert len(state.writes) == 1 and len(state.writes[0]) == 5
    assert all([await state.get(f"k{i}") == b"v" for i in range(5)])  # there on return
    await sets.set("later", b"w")
    assert len(state.writes) == 2 and await state.get("later") == b"w"


async def test_a_failed_write_fails_every_caller_and_one_leaving_stops_no_other() -> None:
    state = CountedState(fail=True)
    sets = GroupedSets(state)
    results = await asyncio.gather(sets.set("a", b"1"), sets.set("b", b"2"), return_exceptions=True)
    assert [type(r) for r in results] == [ConnectionError, ConnectionError]
    state.fail = False
    leaving = asyncio.create_task(sets.set("c", b"3"))
    staying = asyncio.create_task(sets.set("d", b"4"))
    await asyncio.sleep(0)  # both joined this turn's write
    leaving.cancel()
    await staying
    with pytest.raises(asyncio.CancelledError):
        await leaving
    assert await state.get("c") == b"3" and await state.get("d") == b"4"  # one write, whole
