"""Which intent, signal and strategy caused an order (ADR-0120; pure, no I/O).

The executor sends every order with ``clOrdId`` = intent id, and its :class:`OrderAccepted`
names the venue's entry order id and the bracket leg ids (``oso1_id``, ``oso2_id``) together
with ``intent_id``, ``signal_id`` and ``strategy_id``. The ledger indexes those ids:

- a fill of the entry order is attributed to that intent (leg ``entry``);
- a fill of a bracket leg is attributed to the entry that spawned it (leg ``oso1``/``oso2``);
- a fill of an order no :class:`OrderAccepted` named is ``outside`` (a manual trade, an order
  placed by another tool). Attribution is looked up when asked, not when the fill arrives, so a
  fill read before its order's acceptance (two streams) is attributed once the order is known.
"""

from __future__ import annotations

from typing import Literal

import msgspec

from phalanx_common.events import OrderAccepted

__all__ = ["OUTSIDE", "Attribution", "OrderIndex"]

OUTSIDE = "outside"

Leg = Literal["entry", "oso1", "oso2", "outside"]


class Attribution(msgspec.Struct, frozen=True, kw_only=True):
    """Who caused an order: the strategy ``outside`` and empty ids when Phalanx did not."""

    strategy_id: str = OUTSIDE
    signal_id: str = ""
    intent_id: str = ""
    leg: Leg = "outside"


_OUTSIDE = Attribution()


class OrderIndex:
    """Venue order id -> attribution, from every :class:`OrderAccepted` seen."""

    def __init__(self) -> None:
        self._orders: dict[int, Attribution] = {}

    def add(self, event: OrderAccepted) -> None:
        """Index the entry order and its bracket legs (a repeat changes nothing)."""
        legs: tuple[tuple[int | None, Leg], ...] = (
            (event.order_id, "entry"),
            (event.oso1_id, "oso1"),
            (event.oso2_id, "oso2"),
        )
        for order_id, leg in legs:
            if order_id:
                self._orders.setdefault(
                    order_id,
                    Attribution(
                        strategy_id=event.strategy_id,
                        signal_id=event.signal_id,
                        intent_id=event.intent_id,
                        leg=leg,
                    ),
                )

    def of(self, order_id: int) -> Attribution:
        """The attribution of an order, ``outside`` when no acceptance named it."""
        return self._orders.get(order_id, _OUTSIDE)

    def orders_of(self, strategy_id: str) -> set[int]:
        """The venue orders attributed to a strategy (its entries and bracket legs)."""
        return {oid for oid, who in self._orders.items() if who.strategy_id == strategy_id}

    def items(self) -> dict[int, Attribution]:
        """Every indexed order and its attribution (a copy; for snapshots, ADR-0122)."""
        return dict(self._orders)

    def restore(self, orders: dict[int, Attribution]) -> None:
        """Replace the index with ``orders`` (from a snapshot)."""
        self._orders = dict(orders)
