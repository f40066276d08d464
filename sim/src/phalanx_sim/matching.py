"""Matching engine: order life cycle, fills, positions, cash, OSO brackets and OCO links.

Rules (deterministic, one price per contract, unlimited liquidity):

- A Market order fills at once, in full, at the contract's current price.
- Partial fills on demand (:attr:`MatchingEngine.partial_fill_qty`, per account): a fill takes at
  most that many lots; the order stays ``Working`` with ``cumQty > 0`` and fills further (another
  chunk) at each later price move of its contract that still crosses it. Bracket children start,
  and an OCO sibling is canceled, only when the order is completely filled.
- Late fills on demand (:attr:`MatchingEngine.held_fills`, per account): an order that would
  fill when it starts working (a Market, or one already crossed) stays ``Working`` without a
  fill until the next price move of its contract (even to the same price), as on a real venue
  where the answer and the ``Working`` state can come before the fill. IOC/FOK are not held.
- Limit/Stop orders rest until the price crosses them: a Sell Limit fills when price >= limit, a
  Sell Stop when price <= stop; Buy orders mirror that. An order that is already crossed when it
  starts working fills at once at the current price. A Limit reached by a price move fills at its
  limit price, a Stop at the new price. A StopLimit turns into a Limit when its stop is reached.
- A TrailingStop is a Stop whose ``stopPrice`` follows the price at ``|pegDifference|``: a Sell's
  stop rises to (price - peg) whenever the price makes a new high while it works, and never
  falls; a Buy's mirrors that. It starts from the sent ``stopPrice`` (tightened to the current
  price - peg when that is higher) and triggers, and fills, like a Stop. Each move of the stop
  is a new state of its OrderVersion (``orderVersion`` Updated). As an OSO leg it trails only
  once it works (after the entry filled).
- ``timeInForce``: IOC fills what it can at once and cancels the rest; FOK fills in full at once
  or is canceled without any fill (it fails only when partial fills are on for the account, the
  liquidity being otherwise unlimited); an IOC/FOK order that is not marketable when it starts
  working is canceled. Day and GTC rest; Day orders do not expire at the session end here.
- OSO (``placeoso``): bracket orders are created with the entry as ``Suspended`` children
  (``parentId`` = entry) and start working only after the entry fills, with the entry's quantity.
  Two brackets are linked as an OCO (``linkedId`` = sibling): when one fills the other is
  canceled. Canceling a parent cancels its suspended children.

Resting orders sit in two heaps per contract (those that fire when the price rises to a level,
and those that fire when it falls to one) with lazy deletion, so a price move costs
O(k log n) for k triggered orders, never a scan of all orders (:mod:`phalanx_sim.resting`).

Finished orders are forgotten after a retention (:mod:`phalanx_sim.retention`): the engine
reports each order as it reaches a final state and prunes before it places an order.

The records an order's life creates (orders, versions, commands, reports) are made by
:mod:`phalanx_sim.order_entities`; what a fill does to positions and cash, by
:mod:`phalanx_sim.bookkeeping`. :class:`OrderSpec`, :class:`Origin` (``order_spec``) and the
sinks (``sink``) are re-exported here.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import replace

from phalanx_sim.bookkeeping import Bookkeeping
from phalanx_sim.contracts import ContractInfo
from phalanx_sim.entities import Entity, Fill, OrderVersion
from phalanx_sim.fees import FeeRates, fill_fee
from phalanx_sim.order_entities import OrderEntities
from phalanx_sim.order_spec import OrderSpec, Origin
from phalanx_sim.resting import RestingBook
from phalanx_sim.retention import LIVE_STATUSES, FinishedOrders, RetentionPolicy
from phalanx_sim.sink import EventSink, NullSink
from phalanx_sim.state import AccountBook, CommandRecord, OrderRecord, SimState
from phalanx_sim.times import VenueClock

__all__ = ["EventSink", "MatchingEngine", "NullSink", "OrderSpec", "Origin"]

_EPS = 1e-9
_LIVE = LIVE_STATUSES


class MatchingEngine:
    """Applies trading commands to :class:`SimState` and publishes every change to a sink."""

    def __init__(
        self,
        state: SimState,
        clock: VenueClock,
        sink: EventSink | None = None,
        retention: RetentionPolicy | None = None,
    ) -> None:
        self.state = state
        self.clock = clock
        self.sink: EventSink = sink or NullSink()
        self.prices: dict[int, float] = {}
        self._resting: dict[int, RestingBook] = {}
        self._seq = itertools.count()
        #: account id -> most lots one fill may take (partial fills on demand)
        self.partial_fill_qty: dict[int, int] = {}
        #: product name -> fees per contract filled (``PUT /admin/fees``; none: zero fees)
        self.fee_rates: dict[str, FeeRates] = {}
        #: accounts whose marketable orders wait for the next price move (late fills on demand)
        self.held_fills: set[int] = set()
        # contract id -> partly filled Working orders, filled further on the next price move
        self._partial: dict[int, dict[int, OrderRecord]] = {}
        # contract id -> working TrailingStop orders, whose stops follow each price move
        self._trailing: dict[int, dict[int, OrderRecord]] = {}
        self._entities = OrderEntities(state, clock, self._emit)
        self._books = Bookkeeping(state, clock, self._emit)
        #: finished orders, forgotten after the retention (retention.py)
        self.finished = FinishedOrders(state, clock, retention or RetentionPolicy(), self._forget)

    # ----------------------------------------------------------------- prices

    def price(self, info: ContractInfo) -> float:
        """Current price of a contract (the product's default until set)."""
        price = self.prices.get(info.contract.id)
        if price is None:
            price = info.spec.default_price
            self.prices[info.contract.id] = price
        return price

    def set_price(self, info: ContractInfo, price: float) -> list[int]:
        """Move the price and fill every resting order it crosses; returns the filled order ids."""
        cid = info.contract.id
        self.prices[cid] = price
        filled = self._fill_partials(cid, price)
        self._trail(cid, price)
        resting = self._resting.get(cid)
        if resting is None:
            return filled
        for rec in resting.fired(price, self.state.orders):
            if rec.order.ordStatus == "Working" and self._on_trigger(rec, price):
                filled.append(rec.order.id)
        return filled

    def resting_entries(self, contract_id: int) -> int:
        """Entries in the contract's resting heaps, stale ones included (for inspection)."""
        resting = self._resting.get(contract_id)
        return 0 if resting is None else len(resting)

    def partly_filled(self, contract_id: int) -> frozenset[int]:
        """Ids of the contract's orders held for a later price move to fill (further)."""
        return frozenset(self._partial.get(contract_id, ()))

    def _fill_partials(self, cid: int, price: float) -> list[int]:
        """Fill the partly filled working orders of ``cid`` the price reaches; keep the rest."""
        filled: list[int] = []
        partial = self._partial.pop(cid, None)
        if not partial:
            return filled
        for part in partial.values():
            if part.order.ordStatus != "Working":
                continue
            if part.version.orderType == "Market" or self._crossed(part, price):
                limit = part.version.price if self._limit_kind(part) else None
                self._fill(part, price if limit is None else limit)
                filled.append(part.order.id)
            else:
                self._partial.setdefault(cid, {})[part.order.id] = part
        return filled

    # ----------------------------------------------------------------- commands

    def place(
        self,
        book: AccountBook,
        info: ContractInfo,
        spec: OrderSpec,
        origin: Origin,
        brackets: Sequence[OrderSpec] = (),
    ) -> tuple[OrderRecord, list[OrderRecord]]:
        """Place an order (with OSO brackets, if any) and work it at once.

        Returns:
            The entry order and its bracket orders, in the order given.
        """
        self.finished.prune()
        ts = self.clock.now_iso()
        entry_id = self.state.next_id()
        child_ids = [self.state.next_id() for _ in brackets]
        entry = self._entities.new_order(book, info, spec, origin, ts, entry_id, "Working")
        children: list[OrderRecord] = []
        for index, bracket in enumerate(brackets):
            linked = None
            if len(child_ids) == 2:
                linked = child_ids[1 - index]
            leg = bracket if bracket.qty == spec.qty else replace(bracket, qty=spec.qty)
            child = self._entities.new_order(
                book, info, leg, origin, ts, child_ids[index], "Suspended", entry_id, linked
            )
            children.append(child)
        entry.children = child_ids
        self._work(entry)
        return entry, children

    def cancel(
        self, rec: OrderRecord, origin: Origin, cl_ord_id: str | None = None
    ) -> CommandRecord | None:
        """Cancel a live order (and its suspended children).

        Returns:
            The Cancel command, or ``None`` if the order is no longer live (too late).
        """
        if rec.order.ordStatus not in _LIVE:
            return None
        ts = self.clock.now_iso()
        command = self._entities.new_command(rec, "Cancel", origin, cl_ord_id, ts)
        self._cancel(rec, command, ts, "Canceled by user")
        return command

    def liquidate(
        self, book: AccountBook, info: ContractInfo, origin: Origin
    ) -> tuple[OrderRecord | None, int]:
        """Cancel the account's live orders in a contract and close its position at market.

        Returns:
            The closing order (``None`` if the position was flat) and how many orders were
            canceled.
        """
        cid = info.contract.id
        live = [rec for rec in book.live.values() if rec.info.contract.id == cid]
        canceled = 0
        for rec in live:
            if rec.order.ordStatus in _LIVE and self.cancel(rec, origin) is not None:
                canceled += 1
        position = book.positions.get(cid)
        if position is None or position.netPos == 0:
            return None, canceled
        action = "Sell" if position.netPos > 0 else "Buy"
        spec = OrderSpec(action=action, order_type="Market", qty=abs(position.netPos))
        closing, _ = self.place(book, info, spec, origin)
        return closing, canceled

    def modify(self, rec: OrderRecord, spec: OrderSpec, origin: Origin) -> CommandRecord | None:
        """Replace quantity, type and prices of a live order (a new OrderVersion).

        Returns:
            The Modify command, or ``None`` if the order is no longer live (too late).
        """
        if rec.order.ordStatus not in _LIVE:
            return None
        ts = self.clock.now_iso()
        version = OrderVersion(
            id=self.state.next_id(),
            orderId=rec.order.id,
            orderQty=spec.qty,
            orderType=spec.order_type,
            price=spec.price,
            stopPrice=spec.stop_price,
            maxShow=spec.max_show,
            pegDifference=spec.peg_difference,
            timeInForce=spec.time_in_force or rec.version.timeInForce,
            expireTime=spec.expire_time,
            text=spec.text,
        )
        rec.version = version
        rec.versions.append(version)
        rec.generation += 1
        rec.triggered = False
        account_id = rec.account.id
        self.state.register(version)
        command = self._entities.new_command(rec, "Modify", origin, spec.cl_ord_id, ts)
        self._emit(account_id, "orderVersion", "Created", version)
        self._entities.execution(rec, command, ts, "Replaced")
        if rec.order.ordStatus == "Working":
            self._work(rec)
        return command

    # ----------------------------------------------------------------- internals

    def _emit(self, account_id: int, entity_type: str, event_type: str, entity: Entity) -> None:
        self.sink.publish(account_id, entity_type, event_type, entity)

    def _work(self, rec: OrderRecord) -> None:
        """Start working a Working order: fill it if marketable, else let it rest.

        IOC/FOK orders never rest: what is not filled at once is canceled.
        """
        price = self.price(rec.info)
        version = rec.version
        kind = version.orderType
        tif = version.timeInForce
        if kind == "TrailingStop":
            self._trailing.setdefault(rec.info.contract.id, {})[rec.order.id] = rec
            self._follow(rec, price)
        if kind == "StopLimit" and not rec.triggered and self._stop_reached(rec, price):
            rec.triggered = True
        marketable = kind == "Market" or self._crossed(rec, price)
        if tif in ("IOC", "FOK"):
            chunk = self.partial_fill_qty.get(rec.order.accountId, 0)
            whole = not 0 < chunk < version.orderQty - rec.cum_qty
            if not marketable or (tif == "FOK" and not whole):
                why = "not marketable" if not marketable else "cannot be filled in full"
                self._expire(rec, f"{tif} order {why}: canceled")
                return
            self._fill(rec, price)
            if rec.order.ordStatus == "Working":
                self._expire(rec, "IOC order partly filled: the rest is canceled")
            return
        if marketable and rec.order.accountId in self.held_fills:
            # a late fill: Working now, filled at the next price move of its contract
            self._partial.setdefault(rec.info.contract.id, {})[rec.order.id] = rec
            return
        if marketable:
            self._fill(rec, price)
            return
        self._rest(rec)

    def _expire(self, rec: OrderRecord, text: str) -> None:
        """Cancel what an IOC/FOK order could not fill at once."""
        self._cancel(rec, rec.new_command, self.clock.now_iso(), text)

    def _trail(self, cid: int, price: float) -> None:
        """Move the stops of the contract's working TrailingStop orders after the price."""
        trailing = self._trailing.get(cid)
        if not trailing:
            return
        for oid, rec in list(trailing.items()):
            if rec.order.ordStatus != "Working" or rec.version.orderType != "TrailingStop":
                del trailing[oid]
            elif self._follow(rec, price):
                rec.generation += 1  # its old resting level is stale
                self._rest(rec)

    def _follow(self, rec: OrderRecord, price: float) -> bool:
        """Tighten a TrailingStop's stop to ``price`` -/+ its peg; True if it moved."""
        version = rec.version
        peg = abs(version.pegDifference or 0.0)
        stop = version.stopPrice
        tick = rec.info.spec.tick_size
        if rec.order.action == "Sell":
            level = price - peg
            moved = stop is None or level > stop + _EPS
        else:
            level = price + peg
            moved = stop is None or level < stop - _EPS
        if not moved:
            return False
        version.stopPrice = round(round(level / tick) * tick, 10)
        self._emit(rec.account.id, "orderVersion", "Updated", version)
        return True

    def _limit_kind(self, rec: OrderRecord) -> bool:
        kind = rec.version.orderType
        return kind == "Limit" or (kind == "StopLimit" and rec.triggered)

    def _stop_reached(self, rec: OrderRecord, price: float) -> bool:
        stop = rec.version.stopPrice
        if stop is None:
            return False
        if rec.order.action == "Buy":
            return price >= stop - _EPS
        return price <= stop + _EPS

    def _crossed(self, rec: OrderRecord, price: float) -> bool:
        if self._limit_kind(rec):
            limit = rec.version.price
            if limit is None:
                return False
            if rec.order.action == "Buy":
                return price <= limit + _EPS
            return price >= limit - _EPS
        return self._stop_reached(rec, price)

    def _forget(self, rec: OrderRecord) -> None:
        """Let go of a forgotten order (retention.py) in the engine's own indexes."""
        cid = rec.info.contract.id
        for by_contract in (self._partial, self._trailing):
            orders = by_contract.get(cid)
            if orders is not None:
                orders.pop(rec.order.id, None)

    def _rest(self, rec: OrderRecord) -> None:
        cid = rec.info.contract.id
        resting = self._resting.get(cid)
        if resting is None:
            resting = self._resting[cid] = RestingBook()
        if self._limit_kind(rec):
            level = rec.version.price
            rises = rec.order.action == "Sell"  # a Sell limit fires when the price rises to it
        else:
            level = rec.version.stopPrice
            rises = rec.order.action == "Buy"  # a Buy stop fires when the price rises to it
        assert level is not None
        resting.push(level, rises, next(self._seq), rec, self.state.orders)

    def _on_trigger(self, rec: OrderRecord, price: float) -> bool:
        if rec.version.orderType == "StopLimit" and not rec.triggered:
            rec.triggered = True
            if self._crossed(rec, price):
                self._fill(rec, price)
                return True
            self._rest(rec)
            return False
        if self._limit_kind(rec):
            limit = rec.version.price
            assert limit is not None
            self._fill(rec, limit)
        else:
            self._fill(rec, price)
        return True

    def _fill(self, rec: OrderRecord, price: float) -> None:
        state = self.state
        order = rec.order
        book = state.books[order.accountId]
        ts = self.clock.now_iso()
        trade_date = self.clock.trade_date()
        qty = rec.version.orderQty - rec.cum_qty
        chunk = self.partial_fill_qty.get(order.accountId, 0)
        if 0 < chunk < qty:
            qty = chunk
        before = rec.cum_qty
        rec.cum_qty += qty
        rec.avg_px = (
            price
            if before == 0 or rec.avg_px is None
            else (rec.avg_px * before + price * qty) / rec.cum_qty
        )
        complete = rec.cum_qty >= rec.version.orderQty
        if complete:
            order.ordStatus = "Filled"
            book.live.pop(order.id, None)
            self.finished.finished(rec)
        else:
            # a partial fill: still Working with cumQty > 0; the rest fills on a later price
            self._partial.setdefault(order.contractId, {})[order.id] = rec
        self._entities.execution(rec, rec.new_command, ts, "Trade", qty, price)
        fill = Fill(
            id=state.next_id(),
            orderId=order.id,
            contractId=order.contractId,
            timestamp=ts,
            tradeDate=trade_date,
            action=order.action,
            qty=qty,
            price=price,
            active=True,
            finallyPaired=0,
        )
        rec.fills.append(fill)
        book.fills[fill.id] = fill
        state.register(fill)
        state.counters["fills"] += 1
        self._emit(order.accountId, "fill", "Created", fill)
        self._books.charge(book, fill_fee(fill.id, qty, self.fee_rates.get(rec.info.spec.name)), ts)
        self._emit(order.accountId, "order", "Updated", order)
        self._books.apply_to_position(book, rec, qty, price, ts)
        if not complete:
            return
        if order.linkedId is not None:
            sibling = state.orders.get(order.linkedId)
            if sibling is not None and sibling.order.ordStatus in _LIVE:
                self._cancel(sibling, sibling.new_command, ts, "OCO sibling filled")
        for child_id in rec.children:
            child = state.orders.get(child_id)
            if child is not None and child.order.ordStatus == "Suspended":
                self._activate(child, ts)

    def _activate(self, rec: OrderRecord, ts: str) -> None:
        rec.order.ordStatus = "Working"
        self._emit(rec.account.id, "order", "Updated", rec.order)
        self._entities.execution(rec, rec.new_command, ts, "New")
        self._work(rec)

    def _cancel(self, rec: OrderRecord, command: CommandRecord, ts: str, text: str) -> None:
        order = rec.order
        order.ordStatus = "Canceled"
        rec.generation += 1
        self.state.books[order.accountId].live.pop(order.id, None)
        self.finished.finished(rec)
        self._entities.execution(rec, command, ts, "Canceled", text=text)
        self._emit(order.accountId, "order", "Updated", order)
        for child_id in rec.children:
            child = self.state.orders.get(child_id)
            if child is not None and child.order.ordStatus in _LIVE:
                self._cancel(child, child.new_command, ts, "Parent order canceled")
