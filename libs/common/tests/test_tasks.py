"""A background task that swallows a cancellation still stops (issue 10's chaos stall)."""

from __future__ import annotations

import asyncio
import logging

import pytest

from phalanx_common.tasks import OwnedTasks, cancel_and_wait, every
from phalanx_testing.clock import FakeClock


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


async def test_owned_tasks_are_named_kept_and_all_stopped_together() -> None:
    tasks = OwnedTasks("owner")
    first = tasks.spawn(asyncio.sleep(3600), "first")
    second = tasks.spawn(asyncio.sleep(3600), "second")
    assert tasks.names == ["first", "second"]
    assert len(tasks) == 2
    await asyncio.wait_for(tasks.stop(), 5.0)
    assert first.cancelled()
    assert second.cancelled()
    assert len(tasks) == 0
    await tasks.stop()  # idempotent


async def test_a_task_that_fails_is_logged_when_it_fails_not_when_stopped(
    caplog: pytest.LogCaptureFixture,
) -> None:
    tasks = OwnedTasks("the-owner")

    async def fails() -> None:
        raise RuntimeError("boom")

    task = tasks.spawn(fails(), "failing-loop")
    await asyncio.wait({task})
    await asyncio.sleep(0)  # done callbacks run on the next turn of the loop
    failed = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert [r.getMessage() for r in failed] == ["the-owner: background task failing-loop failed"]
    assert failed[0].exc_info is not None
    assert isinstance(failed[0].exc_info[1], RuntimeError)
    await tasks.stop()  # an ended task is not an error on stop


async def test_a_stopped_task_is_not_logged_as_failed(caplog: pytest.LogCaptureFixture) -> None:
    tasks = OwnedTasks("owner")
    tasks.spawn(asyncio.sleep(3600), "sleeper")
    await asyncio.sleep(0)
    await tasks.stop()
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


async def test_every_runs_the_step_now_and_each_interval_and_survives_a_failure() -> None:
    clock = FakeClock()
    ran: list[float] = []
    failures: list[str] = []

    async def step() -> None:
        ran.append(clock.monotonic())
        if len(ran) == 2:
            raise RuntimeError("NATS away")

    tasks = OwnedTasks("sampler")
    tasks.spawn(every(5.0, step, lambda exc: failures.append(str(exc)), clock.sleep), "every")
    await asyncio.sleep(0)
    assert ran == [0.0]  # at once
    await clock.advance(4.9)
    assert ran == [0.0]
    await clock.advance(0.1)
    assert ran == [0.0, 5.0]
    assert failures == ["NATS away"]
    await clock.advance(5.0)
    assert ran == [0.0, 5.0, 10.0]  # the failure did not end the loop
    await tasks.stop()
