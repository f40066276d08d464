"""A start-up read that JetStream does not answer in time is asked again, not fatal.

Seen in a full-suite run: the ledger, starting against a three-node cluster that every service
had just filled with replicated streams, read its snapshot head, the read timed out after 5 s,
and the ledger exited. The timeouts are staged (a real cluster does not time out on demand);
the bus is real.
"""

from __future__ import annotations

import pytest
from nats.errors import TimeoutError as NatsTimeoutError

from phalanx_common.bus import Bus
from phalanx_common.errors import DependencyUnavailable

pytestmark = pytest.mark.integration


class TimesOut:
    """A read that times out ``times`` times, then answers."""

    def __init__(self, times: int) -> None:
        self.times = times
        self.calls = 0

    async def __call__(self) -> str:
        self.calls += 1
        if self.calls <= self.times:
            raise NatsTimeoutError
        return "answer"


async def test_a_read_that_times_out_is_asked_again_until_it_answers(nats_url: str) -> None:
    bus = await Bus.connect(nats_url, "test")
    try:
        read = TimesOut(times=2)
        assert await bus.answered(read, "a staged read", timeout_s=30) == "answer"
        assert read.calls == 3
    finally:
        await bus.close()


async def test_a_read_never_answered_fails_once_the_time_is_up(nats_url: str) -> None:
    bus = await Bus.connect(nats_url, "test")
    try:
        read = TimesOut(times=1000)
        with pytest.raises(DependencyUnavailable):
            await bus.answered(read, "a staged read", timeout_s=1.0)
        assert 1 < read.calls < 1000
    finally:
        await bus.close()


async def test_other_errors_are_not_asked_again(nats_url: str) -> None:
    bus = await Bus.connect(nats_url, "test")
    calls = 0

    async def broken() -> None:
        nonlocal calls
        calls += 1
        raise ValueError("not a timeout")

    try:
        with pytest.raises(ValueError, match="not a timeout"):
            await bus.answered(broken, "a broken read")
        assert calls == 1
    finally:
        await bus.close()
