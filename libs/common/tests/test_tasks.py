"""A background task that swallows a cancellation still stops (issue 10's chaos stall)."""

from __future__ import annotations

import asyncio

from phalanx_common.tasks import cancel_and_wait


async def _swallows_one_cancel(swallowed: list[int]) -> None:
    """Like a loop around a Python 3.11 ``wait_for`` that lost a cancellation."""
    while True:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            if swallowed:
                raise
            swallowed.append(1)  # lost once; the loop carries on


async def test_a_task_that_swallows_a_cancellation_is_cancelled_again_until_it_ends() -> None:
    swallowed: list[int] = []
    task = asyncio.create_task(_swallows_one_cancel(swallowed))
    await asyncio.sleep(0)
    await asyncio.wait_for(cancel_and_wait(task, retry_s=0.05), 5.0)
    assert task.cancelled()
    assert swallowed == [1]


async def test_an_ended_task_is_left_alone_and_its_exception_consumed() -> None:
    async def fails() -> None:
        raise RuntimeError("boom")

    task = asyncio.create_task(fails())
    await asyncio.wait({task})
    await cancel_and_wait(task)
    assert not task.cancelled()
    await cancel_and_wait(None)
