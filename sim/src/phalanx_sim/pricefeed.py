"""Optional random-walk price feed (``sim_price_walk``), for ``make run`` demos; off in tests."""

from __future__ import annotations

import asyncio
import random

from phalanx_sim.venue import Venue

__all__ = ["random_walk", "walk_once"]


def walk_once(venue: Venue, rng: random.Random, max_ticks: int) -> None:
    """Move every priced contract by a random whole number of ticks (never to or below 0)."""
    engine = venue.engine
    for contract_id, price in list(engine.prices.items()):
        info = venue.contracts.by_id(contract_id)
        if info is None:
            continue
        tick = info.spec.tick_size
        new = round(round(price / tick + rng.randint(-max_ticks, max_ticks)) * tick, 10)
        if new > 0 and new != price:
            engine.set_price(info, new)


async def random_walk(
    venue: Venue, interval_s: float, max_ticks: int, seed: int | None = None
) -> None:
    """Run :func:`walk_once` every ``interval_s`` seconds until cancelled."""
    rng = random.Random(seed)  # noqa: S311 - a demo price feed, not cryptography
    while True:
        await asyncio.sleep(interval_s)
        walk_once(venue, rng, max_ticks)
