"""The stand-ins for uvicorn's per-connection objects behave as what they replace."""

from __future__ import annotations

import asyncio
import collections
from typing import Any

from gateway.lean_connection import Flag, FlowControl, Pipeline, on_disconnect


async def test_flag_wakes_every_waiter_and_stays_set_until_cleared() -> None:
    flag = Flag(asyncio.get_running_loop())
    waiters = [asyncio.ensure_future(flag.wait()) for _ in range(3)]
    await asyncio.sleep(0)
    assert not any(w.done() for w in waiters)
    flag.set()
    assert await asyncio.gather(*waiters) == [True, True, True]
    assert flag.is_set()
    assert await flag.wait() is True  # set: no wait
    flag.clear()
    assert not flag.is_set()
    late = asyncio.ensure_future(flag.wait())
    await asyncio.sleep(0)
    assert not late.done()
    flag.set()
    assert await late is True


async def test_a_cancelled_wait_leaves_no_waiter_behind() -> None:
    flag = Flag(asyncio.get_running_loop())
    waiter = asyncio.ensure_future(flag.wait())
    await asyncio.sleep(0)
    waiter.cancel()
    await asyncio.gather(waiter, return_exceptions=True)
    assert flag._waiters == []
    flag.set()  # nothing left to wake


class Transport:
    def __init__(self) -> None:
        self.calls: list[str] = []

    def pause_reading(self) -> None:
        self.calls.append("pause")

    def resume_reading(self) -> None:
        self.calls.append("resume")


async def test_flow_control_drains_once_writing_resumes() -> None:
    transport = Transport()
    flow = FlowControl(transport, asyncio.get_running_loop())  # type: ignore[arg-type]
    await flow.drain()  # writable from the start
    flow.pause_writing()
    draining = asyncio.ensure_future(flow.drain())
    await asyncio.sleep(0)
    assert flow.write_paused and not draining.done()
    flow.resume_writing()
    await draining
    flow.pause_reading()
    flow.pause_reading()
    flow.resume_reading()
    assert transport.calls == ["pause", "resume"]


def test_pipeline_queues_as_uvicorns_deque_does() -> None:
    pipeline, deque = Pipeline(), collections.deque[Any]()
    for queue in (pipeline, deque):
        assert not queue
        queue.appendleft("first")
        queue.appendleft("second")
    assert [pipeline.pop(), pipeline.pop()] == [deque.pop(), deque.pop()] == ["first", "second"]
    assert not pipeline


def test_on_disconnect_needs_the_guarded_connection_s_receive() -> None:
    async def receive() -> dict[str, str]:
        return {"type": "http.disconnect"}

    assert on_disconnect(receive, lambda: None) is None  # a task must watch instead
