"""Exponential backoff with a cap and jitter: one policy for every retry loop (ADR-0175).

A :class:`Backoff` is a frozen value: the first pause, the most any pause may be, the growth
factor and the kind of jitter. It computes pauses and never sleeps, so it is tested without a
clock; :class:`Retrying` carries the count of failures across tries and sleeps through an
injected ``sleep`` (a :class:`~phalanx_common.clock.Clock`'s, in the services).

Jitter spreads the retries of many callers that failed together (a venue blip drops every
socket at once):

- ``"none"``: the pause is the ceiling, ``first_s * factor ** failures`` capped at ``max_s``;
- ``"full"``: uniform between 0 and the ceiling;
- ``"equal"``: uniform between half the ceiling and the ceiling.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Literal

__all__ = ["Backoff", "Jitter", "Retrying"]

Jitter = Literal["none", "full", "equal"]

Draw = Callable[[], float]
"""A uniform draw in [0, 1): :func:`random.random`, or a fixed value in tests."""


@dataclass(frozen=True, slots=True)
class Backoff:
    """How long to pause after a number of failed tries.

    Attributes:
        first_s: the pause after the first failure (before jitter).
        max_s: the longest pause (before jitter).
        jitter: how the pause is spread (see the module's docstring).
        factor: the growth per failure.
    """

    first_s: float
    max_s: float
    jitter: Jitter = "none"
    factor: float = 2.0

    def __post_init__(self) -> None:
        if self.first_s < 0 or self.max_s < 0:
            raise ValueError(f"pauses must not be negative: {self.first_s}, {self.max_s}")
        if self.factor < 1:
            raise ValueError(f"factor must be at least 1: {self.factor}")

    def ceiling(self, failures: int) -> float:
        """The pause before jitter after ``failures`` earlier failures (0 for the first pause)."""
        try:
            grown = self.first_s * self.factor ** max(failures, 0)
        except OverflowError:  # thousands of failures: long past the cap
            return self.max_s
        return min(self.max_s, grown)

    def spread(self, ceiling: float, draw: Draw = random.random) -> float:
        """``ceiling`` with this policy's jitter applied, ``draw`` giving the randomness."""
        if self.jitter == "full":
            return ceiling * draw()
        if self.jitter == "equal":
            return ceiling * (0.5 + draw() / 2)
        return ceiling

    def delay(self, failures: int, draw: Draw = random.random) -> float:
        """The pause after ``failures`` earlier failures, jitter included."""
        return self.spread(self.ceiling(failures), draw)

    def delays(self, draw: Draw = random.random) -> Iterator[float]:
        """The pauses of successive failures, without end: ``delay(0)``, ``delay(1)``, ..."""
        failures = 0
        while True:
            yield self.delay(failures, draw)
            failures += 1


class Retrying:
    """One retry loop's state: failures so far under a :class:`Backoff`, reset on success."""

    def __init__(
        self,
        policy: Backoff,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        draw: Draw = random.random,
    ) -> None:
        self.policy = policy
        self.failures = 0
        self._sleep = sleep
        self._draw = draw

    def next_delay(self) -> float:
        """Count a failure and return the pause it calls for."""
        delay = self.policy.delay(self.failures, self._draw)
        self.failures += 1
        return delay

    async def pause(self) -> float:
        """Count a failure, sleep the pause it calls for and return it."""
        delay = self.next_delay()
        await self._sleep(delay)
        return delay

    def reset(self) -> None:
        """A try succeeded: the next failure pauses ``first_s`` again."""
        self.failures = 0
