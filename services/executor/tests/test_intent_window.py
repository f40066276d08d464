"""The intent window (ADR-0165): batches admitted first come, first served, within a bound of
intents in flight, and no batch holds the others back past its hold."""

from __future__ import annotations

import asyncio

import pytest

from phalanx_executor.intent_window import IntentWindow


async def _settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_batches_beyond_the_bound_wait_and_enter_in_arrival_order() -> None:
    window = IntentWindow(limit=50, hold_s=60.0)
    admitted: list[str] = []
    release = {name: asyncio.Event() for name in ("a", "b", "c", "d")}

    async def batch(name: str, size: int) -> None:
        async with window.admit(size):
            admitted.append(name)
            await release[name].wait()

    tasks = [asyncio.create_task(batch("a", 25)), asyncio.create_task(batch("b", 25))]
    await _settle()
    tasks.append(asyncio.create_task(batch("c", 25)))
    await _settle()
    tasks.append(asyncio.create_task(batch("d", 5)))  # fits, but must not overtake "c"
    await _settle()
    assert admitted == ["a", "b"]
    assert window.in_flight == 50
    assert window.waiting == 2

    release["a"].set()
    await _settle()
    assert admitted == ["a", "b", "c"]
    assert window.waiting == 1  # "d" waits behind "c" until room is free again
    release["b"].set()
    await _settle()
    assert admitted == ["a", "b", "c", "d"]
    for event in release.values():
        event.set()
    await asyncio.gather(*tasks)
    assert window.in_flight == 0


async def test_a_batch_larger_than_the_window_runs_alone() -> None:
    window = IntentWindow(limit=10, hold_s=60.0)
    inside: list[int] = []
    gate = asyncio.Event()

    async def batch(size: int) -> None:
        async with window.admit(size):
            inside.append(size)
            await gate.wait()

    big = asyncio.create_task(batch(40))
    await _settle()
    small = asyncio.create_task(batch(1))
    await _settle()
    assert inside == [40]
    gate.set()
    await asyncio.gather(big, small)
    assert inside == [40, 1]


async def test_a_slow_batch_gives_its_room_back_after_its_hold() -> None:
    window = IntentWindow(limit=25, hold_s=0.05)
    slow_done = asyncio.Event()
    admitted: list[str] = []

    async def slow() -> None:
        async with window.admit(25):
            admitted.append("slow")
            await slow_done.wait()

    async def quick() -> None:
        async with window.admit(25):
            admitted.append("quick")

    first = asyncio.create_task(slow())
    await _settle()
    second = asyncio.create_task(quick())
    await asyncio.wait_for(second, timeout=30)  # admitted while the slow batch still runs
    assert admitted == ["slow", "quick"]
    assert not first.done()
    slow_done.set()
    await first
    assert window.in_flight == 0  # the slow batch's room is not given back twice


async def test_a_waiting_batch_that_is_cancelled_leaves_the_queue() -> None:
    window = IntentWindow(limit=5, hold_s=60.0)
    hold = asyncio.Event()

    async def batch(size: int) -> None:
        async with window.admit(size):
            await hold.wait()

    first = asyncio.create_task(batch(5))
    await _settle()
    waiting = asyncio.create_task(batch(5))
    await _settle()
    assert window.waiting == 1
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert window.waiting == 0
    hold.set()
    await first
    assert window.in_flight == 0


async def test_no_bound_admits_everything_at_once() -> None:
    window = IntentWindow(limit=0, hold_s=60.0)
    hold = asyncio.Event()
    inside = 0

    async def batch() -> None:
        nonlocal inside
        async with window.admit(1000):
            inside += 1
            await hold.wait()

    tasks = [asyncio.create_task(batch()) for _ in range(3)]
    await _settle()
    assert inside == 3
    hold.set()
    await asyncio.gather(*tasks)
