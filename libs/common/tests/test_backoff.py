"""One backoff policy for every retry loop (ADR-0175): growth, cap, jitter, state."""

from __future__ import annotations

import asyncio
import itertools

import pytest

from phalanx_common.backoff import Backoff, Retrying
from phalanx_testing.clock import FakeClock


@pytest.mark.parametrize(
    ("failures", "expected"),
    [(0, 0.2), (1, 0.4), (2, 0.8), (3, 1.6), (4, 2.0), (5, 2.0), (50, 2.0), (5000, 2.0)],
)
def test_the_ceiling_doubles_from_the_first_pause_up_to_the_cap(
    failures: int, expected: float
) -> None:
    assert Backoff(first_s=0.2, max_s=2.0).ceiling(failures) == pytest.approx(expected)


def test_a_factor_other_than_two_grows_by_that_factor() -> None:
    policy = Backoff(first_s=1.0, max_s=100.0, factor=3.0)
    assert [policy.ceiling(n) for n in range(5)] == [1.0, 3.0, 9.0, 27.0, 81.0]


@pytest.mark.parametrize(
    ("jitter", "draw", "expected"),
    [
        ("none", 0.0, 1.6),
        ("none", 0.99, 1.6),
        ("full", 0.0, 0.0),
        ("full", 0.5, 0.8),
        ("full", 0.999, 1.6 * 0.999),
        ("equal", 0.0, 0.8),
        ("equal", 0.5, 1.2),
        ("equal", 0.999, 1.6 * (0.5 + 0.999 / 2)),
    ],
)
def test_jitter_spreads_the_ceiling_by_the_draw(jitter: str, draw: float, expected: float) -> None:
    policy = Backoff(first_s=0.2, max_s=2.0, jitter=jitter)  # type: ignore[arg-type]
    assert policy.delay(3, lambda: draw) == pytest.approx(expected)


def test_delays_follow_the_failures_without_end() -> None:
    policy = Backoff(first_s=0.5, max_s=5.0)
    assert list(itertools.islice(policy.delays(), 7)) == [0.5, 1.0, 2.0, 4.0, 5.0, 5.0, 5.0]


@pytest.mark.parametrize(
    ("first_s", "max_s", "factor"), [(-0.1, 1.0, 2.0), (0.1, -1.0, 2.0), (0.1, 1.0, 0.5)]
)
def test_a_policy_that_would_shrink_or_go_negative_is_refused(
    first_s: float, max_s: float, factor: float
) -> None:
    with pytest.raises(ValueError, match="must"):
        Backoff(first_s=first_s, max_s=max_s, factor=factor)


async def test_retrying_sleeps_on_the_injected_clock_and_starts_over_after_a_reset() -> None:
    clock = FakeClock()
    retrying = Retrying(Backoff(first_s=1.0, max_s=3.0), clock.sleep)
    waited: list[float] = []

    async def fail_three_times() -> None:
        for _ in range(3):
            waited.append(await retrying.pause())

    task = asyncio.create_task(fail_three_times())
    await asyncio.sleep(0)
    await clock.advance(0.9)
    assert not waited  # the first pause is 1 s: not over yet
    await clock.advance(0.1)
    assert waited == [1.0]
    await clock.advance(2.0)
    assert waited == [1.0, 2.0]
    await clock.advance(3.0)
    await task
    assert waited == [1.0, 2.0, 3.0]
    assert retrying.failures == 3
    retrying.reset()
    assert retrying.next_delay() == 1.0
