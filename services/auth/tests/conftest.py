"""Fixtures of the auth tests: the in-process simulator on the test's fake clock."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest_asyncio

from phalanx_sim import SimSettings, Simulator
from phalanx_sim.times import VenueClock
from phalanx_testing.clock import FakeClock


class FollowingVenueClock(VenueClock):
    """The simulator's clock, reading the test's :class:`FakeClock` (one time for both sides)."""

    def __init__(self, clock: FakeClock) -> None:
        super().__init__()
        self._clock = clock

    def time(self) -> float:
        """The fake epoch seconds."""
        return self._clock.time_ns() / 1e9


@pytest_asyncio.fixture
async def fake_sim(fake_clock: FakeClock) -> AsyncIterator[Simulator]:
    """A simulator whose tokens, limits and logs follow ``fake_clock``."""
    settings = SimSettings(sim_ws_idle_timeout_s=0)
    async with Simulator(
        settings, host="127.0.0.1", port=0, clock=FollowingVenueClock(fake_clock)
    ) as sim:
        yield sim
