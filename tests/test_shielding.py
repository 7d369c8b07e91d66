"""run_shielded: completion work finishes when its task is cancelled, waits or not."""

from __future__ import annotations

import asyncio

import pytest

from gateway.shielding import run_shielded


async def test_work_that_never_waits_runs_to_its_end() -> None:
    done: list[str] = []

    async def work() -> None:
        done.append("settled")

    await run_shielded(work())
    assert done == ["settled"]


async def test_work_that_waits_finishes_though_the_caller_was_cancelled() -> None:
    steps: list[str] = []

    async def work() -> None:
        steps.append("start")
        await asyncio.sleep(0.02)
        steps.append("middle")
        await asyncio.sleep(0)
        steps.append("end")

    async def request() -> None:
        try:
            await asyncio.sleep(10)
        finally:  # as a reply is closed when its client leaves
            await run_shielded(work())
            steps.append("after")

    task = asyncio.create_task(request())
    await asyncio.sleep(0.005)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert steps == ["start", "middle", "end", "after"]


async def test_a_result_sent_into_the_work_reaches_it() -> None:
    loop = asyncio.get_running_loop()
    future: asyncio.Future[str] = loop.create_future()
    got: list[str] = []

    async def work() -> None:
        got.append(await future)

    loop.call_later(0.01, future.set_result, "value")
    await run_shielded(work())
    assert got == ["value"]


@pytest.mark.parametrize("waits", [False, True])
async def test_an_error_of_the_work_reaches_the_caller(waits: bool) -> None:
    async def work() -> None:
        if waits:
            await asyncio.sleep(0)
        raise ValueError("broken")

    with pytest.raises(ValueError, match="broken"):
        await run_shielded(work())
