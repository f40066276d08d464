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

import sys
from typing import Literal

import msgspec

from phalanx_common.events import OrderAccepted

__all__ = ["OUTSIDE", "Acceptance", "Attribution", "OrderIndex"]

OUTSIDE = "outside"

Leg = Literal["entry", "oso1", "oso2", "outside"]


class Attribution(msgspec.Struct, frozen=True, kw_only=True):
    """Who caused an order: the strategy ``outside`` and empty ids when Phalanx did not."""

    strategy_id: str = OUTSIDE
    signal_id: str = ""
    intent_id: str = ""
    leg: Leg = "outside"


_OUTSIDE = Attribution()


class Acceptance(msgspec.Struct, frozen=True, array_like=True, gc=False):
    """One :class:`OrderAccepted` as the index keeps it, shared by every order it named (its
    entry and bracket legs; 0: none) and stored so in snapshots."""

    strategy_id: str
    signal_id: str
    intent_id: str
    account_id: int
    order_id: int
    oso1_id: int
    oso2_id: int

    def order_ids(self) -> tuple[int, int, int]:
        """Entry, oso1, oso2 (0: none)."""
        return (self.order_id, self.oso1_id, self.oso2_id)

    def of(self, order_id: int) -> Attribution:
        """The attribution of one of its orders (the first of entry, oso1, oso2 it equals)."""
        leg: Leg = (
            "entry" if order_id == self.order_id else "oso1" if order_id == self.oso1_id else "oso2"
        )
        return Attribution(
            strategy_id=self.strategy_id,
            signal_id=self.signal_id,
            intent_id=self.intent_id,
            leg=leg,
        )


_LEG_SLOT: dict[str, int] = {"entry": 0, "oso1": 1, "oso2": 2}


def _interned(record: Acceptance) -> Acceptance:
    """A decoded record with its strategy and signal ids interned (as :meth:`OrderIndex.add`
    makes them)."""
    strategy_id = sys.intern(record.strategy_id)
    signal_id = sys.intern(record.signal_id)
    if strategy_id is record.strategy_id and signal_id is record.signal_id:
        return record
    return msgspec.structs.replace(record, strategy_id=strategy_id, signal_id=signal_id)


class OrderIndex:
    """Venue order id -> attribution and account, from every :class:`OrderAccepted` seen.

    - Attribution: the first acceptance that named an order (a repeat changes nothing).
    - Account: the last acceptance that named it (what the projection's order -> account map
      was): the first one's :class:`Acceptance` holds it, and ``_accounts`` only the orders a
      later acceptance gave another account.

    One record per acceptance serves its entry and legs (the attribution of an order is made
    when asked); strategy and signal ids are interned: a signal's accounts share them
    (ADR-0184).
    """

    def __init__(self) -> None:
        self._orders: dict[int, Acceptance] = {}
        self._accounts: dict[int, int] = {}  # order id -> account, where not its record's
        self._account_ids: dict[int, int] = {}  # one int object per account id

    def add(self, event: OrderAccepted) -> None:
        """Index the entry order and its bracket legs."""
        record: Acceptance | None = None
        for order_id in (event.order_id, event.oso1_id, event.oso2_id):
            if not order_id:
                continue
            known = self._orders.get(order_id)
            if known is None:
                if record is None:
                    record = Acceptance(
                        strategy_id=sys.intern(event.strategy_id),
                        signal_id=sys.intern(event.signal_id),
                        intent_id=event.intent_id,
                        account_id=self._account_ids.setdefault(event.account_id, event.account_id),
                        order_id=event.order_id or 0,
                        oso1_id=event.oso1_id or 0,
                        oso2_id=event.oso2_id or 0,
                    )
                known = self._orders[order_id] = record
            if known.account_id != event.account_id:
                self._accounts[order_id] = event.account_id
            else:
                self._accounts.pop(order_id, None)

    def of(self, order_id: int) -> Attribution:
        """The attribution of an order, ``outside`` when no acceptance named it."""
        record = self._orders.get(order_id)
        return _OUTSIDE if record is None else record.of(order_id)

    def account_of(self, order_id: int) -> int | None:
        """The account the last acceptance naming an order gave (``None``: never named)."""
        account = self._accounts.get(order_id)
        if account is not None:
            return account
        record = self._orders.get(order_id)
        return None if record is None else record.account_id

    def orders_of(self, strategy_id: str) -> set[int]:
        """The venue orders attributed to a strategy (its entries and bracket legs)."""
        return {oid for oid, who in self._orders.items() if who.strategy_id == strategy_id}

    def items(self) -> dict[int, Attribution]:
        """Every indexed order and its attribution (a copy, made now)."""
        return {order_id: record.of(order_id) for order_id, record in self._orders.items()}

    def acceptances(self) -> list[Acceptance]:
        """Every record, in the order they were made (for snapshots, ADR-0122)."""
        records: list[Acceptance] = []
        for record in self._orders.values():
            if not records or records[-1] is not record:  # a record's orders are adjacent
                records.append(record)
        return records

    def other_accounts(self) -> dict[int, int]:
        """The orders whose account is not their record's (a copy; for snapshots)."""
        return dict(self._accounts)

    def restore(self, records: list[Acceptance], accounts: dict[int, int]) -> None:
        """Replace the index with the records and accounts of a snapshot (replayed in order:
        an order named by two records is the first one's, as when they were added)."""
        self._orders = {}
        for decoded in records:
            record = _interned(decoded)
            for order_id in record.order_ids():
                if order_id:
                    self._orders.setdefault(order_id, record)
        self._accounts = dict(accounts)

    def restore_attributions(
        self, orders: dict[int, Attribution], accounts: dict[int, int]
    ) -> None:
        """Replace the index with a format-2 snapshot's maps (order -> attribution, order ->
        account): the orders of one intent share a record again, unless two of them claim the
        same leg (two acceptances)."""
        building: dict[tuple[str, str, str], list[int]] = {}
        named: list[tuple[int, tuple[str, str, str], list[int]]] = []
        for order_id, who in orders.items():
            key = (sys.intern(who.strategy_id), sys.intern(who.signal_id), who.intent_id)
            slot = _LEG_SLOT.get(who.leg, 0)
            ids = building.get(key)
            if ids is None or ids[slot]:
                ids = building[key] = [0, 0, 0]
            ids[slot] = order_id
            named.append((order_id, key, ids))
        made: dict[int, Acceptance] = {}  # by id() of the ids list: one record per list
        self._orders = {}
        for order_id, key, ids in named:
            record = made.get(id(ids))
            if record is None:
                record = made[id(ids)] = Acceptance(
                    strategy_id=key[0],
                    signal_id=key[1],
                    intent_id=key[2],
                    account_id=accounts.get(order_id, 0),
                    order_id=ids[0],
                    oso1_id=ids[1],
                    oso2_id=ids[2],
                )
            self._orders[order_id] = record
        self._accounts = {
            order_id: account
            for order_id, account in accounts.items()
            if order_id not in self._orders or self._orders[order_id].account_id != account
        }
