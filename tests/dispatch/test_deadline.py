"""Deadline: asyncio.timeout's behaviour for one provider call, at less cost."""

from __future__ import annotations

import asyncio

import pytest

from gateway.dispatch.deadline import Deadline


async def test_a_call_past_its_deadline_raises_timeout_error() -> None:
    with pytest.raises(TimeoutError):
        async with Deadline(0.01) as wait:
            await asyncio.sleep(5)
    assert wait.expired()


async def test_a_call_within_its_deadline_is_left_alone() -> None:
    async with Deadline(5) as wait:
        await asyncio.sleep(0)
    assert not wait.expired()
    await asyncio.sleep(0)  # no cancellation is left pending on the task


async def test_expire_now_cuts_the_call_on_the_next_turn() -> None:
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(TimeoutError):
        async with Deadline(30) as wait:
            loop.call_later(0.01, wait.expire_now)
            await asyncio.sleep(5)
    assert loop.time() - started < 1


async def test_a_cancellation_from_outside_stays_a_cancellation() -> None:
    async def call() -> None:
        async with Deadline(30):
            await asyncio.sleep(5)

    task = asyncio.create_task(call())
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_an_outside_cancellation_after_expiry_is_not_swallowed() -> None:
    """As asyncio.timeout: when the task was also cancelled by someone else, the
    cancellation goes on, it does not become a TimeoutError."""

    async def call() -> None:
        async with Deadline(0.01):
            try:
                await asyncio.sleep(5)
            finally:
                await asyncio.sleep(0.05)  # the outside cancel lands here

    task = asyncio.create_task(call())
    await asyncio.sleep(0.03)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
