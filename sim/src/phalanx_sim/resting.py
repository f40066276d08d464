"""Resting orders of one contract: two heaps with lazy deletion, compacted as they fill with
stale entries.

Those that fire when the price rises to a level (a Sell Limit, a Buy Stop) and those that fire
when it falls to one. An entry is ``(level, seq, order id, generation)``; an order that was
canceled, filled or modified leaves its entry behind (its generation or state no longer
matches) and a price move skips it. Orders canceled far from the price would otherwise stay
forever: once the heaps hold more than :attr:`RestingBook.limit` entries, the stale ones are
dropped and the limit becomes twice what is left (so compaction is amortized O(1) per order).
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping

from phalanx_sim.state import OrderRecord

__all__ = ["RestingBook"]

_EPS = 1e-9
_FIRST_LIMIT = 1024

_Entry = tuple[float, int, int, int]


class RestingBook:
    """The resting orders of one contract."""

    __slots__ = ("down", "limit", "up")

    def __init__(self) -> None:
        self.up: list[_Entry] = []
        self.down: list[_Entry] = []
        self.limit = _FIRST_LIMIT

    def __len__(self) -> int:
        return len(self.up) + len(self.down)

    def push(
        self,
        level: float,
        rises: bool,
        seq: int,
        rec: OrderRecord,
        orders: Mapping[int, OrderRecord],
    ) -> None:
        """Rest ``rec`` at ``level`` (``rises``: it fires when the price rises to it)."""
        entry = (level if rises else -level, seq, rec.order.id, rec.generation)
        heapq.heappush(self.up if rises else self.down, entry)
        if len(self) > self.limit:
            self.compact(orders)

    def compact(self, orders: Mapping[int, OrderRecord]) -> None:
        """Drop the entries of orders that no longer rest at them."""
        self.up = [e for e in self.up if _rests(e, orders)]
        self.down = [e for e in self.down if _rests(e, orders)]
        heapq.heapify(self.up)
        heapq.heapify(self.down)
        self.limit = max(_FIRST_LIMIT, 2 * len(self))

    def fired(self, price: float, orders: Mapping[int, OrderRecord]) -> list[OrderRecord]:
        """The working resting orders ``price`` crosses, taken off the heaps, oldest first."""
        fired: list[tuple[int, OrderRecord]] = []
        up, down = self.up, self.down
        while up and up[0][0] <= price + _EPS:
            entry = heapq.heappop(up)
            if _rests(entry, orders):
                fired.append((entry[1], orders[entry[2]]))
        while down and -down[0][0] >= price - _EPS:
            entry = heapq.heappop(down)
            if _rests(entry, orders):
                fired.append((entry[1], orders[entry[2]]))
        fired.sort(key=lambda item: item[0])
        return [rec for _, rec in fired]


def _rests(entry: _Entry, orders: Mapping[int, OrderRecord]) -> bool:
    rec = orders.get(entry[2])
    return rec is not None and rec.generation == entry[3] and rec.order.ordStatus == "Working"
