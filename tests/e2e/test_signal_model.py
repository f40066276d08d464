"""Model-based test of the signal contract: hypothesis drives webhooks through the whole system
and, after every signal, compares each account's venue position and working orders, and each
account's recorded outcome, with a small reference model of the semantics.

The reference model (``Model`` and ``AccountModel`` below) is the field table as code: what a
TradersPost-style body does to one account's position and working orders at the venue, given
the subscription's sizing and permissions. The venue sits at one fixed price, so an order either
fills when it starts working or rests for the rest of the run; the model applies the simulator's
matching rules (marketable at once or resting, OSO legs suspended until the entry fills,
trailing stops tightened when they start working, IOC/FOK canceled when not marketable).

The system runs on its own loop in a thread (:class:`~phalanx_bench.threaded.ThreadedSystem`);
each hypothesis example starts from flat accounts (liquidated at the venue, as a trader would,
and seen flat by the executor).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import json
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import ROUND_FLOOR, Decimal
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    precondition,
    rule,
    run_state_machine_as_test,
)

from phalanx_bench.inprocess import RunningSystem
from phalanx_bench.seed import seed
from phalanx_bench.threaded import ThreadedSystem
from phalanx_common import subjects
from phalanx_common.bus import Bus
from phalanx_common.contracts import ContractBook
from phalanx_sim.matching import Origin

# The system runs in another thread of this process and uses the global ``random`` (reconnect
# jitter) while hypothesis draws, which hypothesis would take for a strategy using ``random``.
pytestmark = [
    pytest.mark.e2e,
    pytest.mark.integration,
    pytest.mark.timeout(420),
    pytest.mark.filterwarnings(
        "ignore:Do not use the `random` module inside strategies"
        ":hypothesis.errors.HypothesisDeprecationWarning"
    ),
]

PRICE = Decimal(21000)
TICKER = "MNQ1!"
REPEAT_WINDOW_S = 2.0
OUTCOME_TIMEOUT_S = 30.0
VENUE_TYPES = {
    "market": "Market",
    "limit": "Limit",
    "stop": "Stop",
    "stop_limit": "StopLimit",
    "trailing_stop": "TrailingStop",
}
TIME_IN_FORCE = {"day": "Day", "gtc": "GTC", "ioc": "IOC", "fok": "FOK"}
# A run sends a few hundred requests per login in a minute or two: far above Tradovate's budget,
# which would make later signals wait minutes for permits. Budgets are not what is tested here.
UNTHROTTLED: dict[str, Any] = {
    "executor_settings": {"login_windows": ((1_000_000, 61.0),)},
    "sim_settings": {"sim_rate_limits": False},
}


# -- the reference model -------------------------------------------------------------------


@dataclass(frozen=True)
class Sub:
    """One account's subscription as the model knows it."""

    account_id: int
    multiplier: int = 1
    allow_add: bool = False
    allow_reversal: bool = True


@dataclass
class _Order:
    key: int
    order_type: str
    action: str
    qty: int
    status: str  # Working | Suspended
    price: Decimal | None = None
    stop: Decimal | None = None
    peg: Decimal | None = None
    tif: str | None = None
    parent: int | None = None
    linked: int | None = None
    children: list[int] = field(default_factory=list)
    triggered: bool = False

    def view(self) -> tuple[str, str, int, str, Decimal | None, Decimal | None]:
        return (self.order_type, self.action, self.qty, self.status, self.price, self.stop)


def _sign(action: str) -> int:
    return 1 if action == "Buy" else -1


def _opposite(action: str) -> str:
    return "Sell" if action == "Buy" else "Buy"


def _dec(value: Any) -> Decimal:
    return Decimal(str(value))


def _floor(value: Decimal) -> int:
    return int(value.to_integral_value(rounding=ROUND_FLOOR))


@dataclass
class AccountModel:
    """One account's position and working orders in the contract, at the fixed price."""

    price: Decimal = PRICE
    position: int = 0
    orders: dict[int, _Order] = field(default_factory=dict)
    _keys: int = 0

    def view(self) -> tuple[int, Counter[tuple[Any, ...]]]:
        return self.position, Counter(o.view() for o in self.orders.values())

    # venue mechanics (the simulator's matching rules at one fixed price)

    def _new(self, **fields: Any) -> _Order:
        self._keys += 1
        order = _Order(key=self._keys, **fields)
        self.orders[order.key] = order
        return order

    def _stop_reached(self, o: _Order) -> bool:
        assert o.stop is not None
        return self.price >= o.stop if o.action == "Buy" else self.price <= o.stop

    def _marketable(self, o: _Order) -> bool:
        if o.order_type == "Market":
            return True
        if o.order_type == "Limit" or (o.order_type == "StopLimit" and o.triggered):
            assert o.price is not None
            return self.price <= o.price if o.action == "Buy" else self.price >= o.price
        return self._stop_reached(o)

    def _work(self, o: _Order) -> None:
        if o.order_type == "TrailingStop":
            assert o.peg is not None
            assert o.stop is not None
            if o.action == "Sell":
                o.stop = max(o.stop, self.price - o.peg)
            else:
                o.stop = min(o.stop, self.price + o.peg)
        if o.order_type == "StopLimit" and not o.triggered and self._stop_reached(o):
            o.triggered = True
        if self._marketable(o):
            self._fill(o)
        elif o.tif in ("IOC", "FOK"):
            self._cancel(o)

    def _fill(self, o: _Order) -> None:
        del self.orders[o.key]
        self.position += _sign(o.action) * o.qty
        if o.linked is not None and o.linked in self.orders:
            self._cancel(self.orders[o.linked])
        for key in o.children:
            child = self.orders.get(key)
            if child is not None and child.status == "Suspended":
                child.status = "Working"
                self._work(child)

    def _cancel(self, o: _Order) -> None:
        self.orders.pop(o.key, None)
        for key in o.children:
            child = self.orders.get(key)
            if child is not None:
                self._cancel(child)

    def reduce(self, action: str, qty: int) -> None:
        """A partial exit or cover: the resting bracket legs first shrink to what will be left,
        newest bracket first, a bracket cut to nothing canceled (ADR-0060); then the market
        order."""
        brackets: dict[int, list[_Order]] = {}
        for o in self.orders.values():
            if o.parent is not None and o.status == "Working":
                brackets.setdefault(o.parent, []).append(o)
        excess = sum(max(o.qty for o in legs) for legs in brackets.values())
        excess -= abs(self.position) - qty
        for parent in sorted(brackets, reverse=True):
            if excess <= 0:
                break
            size = max(o.qty for o in brackets[parent])
            cut = min(size, excess)
            excess -= cut
            for leg in brackets[parent]:
                if size - cut == 0:
                    self._cancel(leg)
                else:
                    leg.qty = size - cut
        self.market(action, qty)

    def market(self, action: str, qty: int) -> None:
        self._work(self._new(order_type="Market", action=action, qty=qty, status="Working"))

    def liquidate(self) -> None:
        for o in list(self.orders.values()):
            if o.key in self.orders:
                self._cancel(o)
        if self.position:
            self.market("Sell" if self.position > 0 else "Buy", abs(self.position))

    def cancel(self, order_type: str | None) -> int:
        """Cancel the working orders (of one type): a suspended leg goes with its parent."""
        wanted = [o for o in self.orders.values() if order_type in (None, o.order_type)]
        keys = {o.key for o in wanted}
        for o in wanted:
            if o.parent not in keys and o.key in self.orders:
                self._cancel(o)
        return len(wanted)

    def enter(self, body: dict[str, Any], action: str, qty: int) -> None:
        """Place the body's entry (with its OSO legs) and work it."""
        ref = _reference(body)
        kind = VENUE_TYPES[str(body.get("orderType", "market"))]
        tif = TIME_IN_FORCE.get(str(body.get("timeInForce")))
        sign = _sign(action)
        entry = self._new(order_type=kind, action=action, qty=qty, status="Working", tif=tif)
        _price_entry(entry, body, kind, ref, sign)
        legs: list[_Order] = []
        tp = body.get("takeProfit")
        if tp is not None:
            legs.append(self._leg("Limit", action, qty, entry, price=_tp_price(tp, ref, sign)))
        sl = body.get("stopLoss")
        if sl is not None:
            sl_kind = VENUE_TYPES[str(sl.get("type", "stop"))]
            peg = _dec(sl["trailAmount"]) if sl_kind == "TrailingStop" else None
            stop = _sl_stop(sl, ref, sign, peg)
            limit = _dec(sl["limitPrice"]) if sl_kind == "StopLimit" else None
            legs.append(self._leg(sl_kind, action, qty, entry, stop=stop, price=limit, peg=peg))
        if len(legs) == 2:
            legs[0].linked, legs[1].linked = legs[1].key, legs[0].key
        entry.children = [leg.key for leg in legs]
        self._work(entry)

    def _leg(self, kind: str, action: str, qty: int, entry: _Order, **prices: Any) -> _Order:
        return self._new(
            order_type=kind,
            action=_opposite(action),
            qty=qty,
            status="Suspended",
            parent=entry.key,
            **prices,
        )


def _price_entry(entry: _Order, body: dict[str, Any], kind: str, ref: Decimal, sign: int) -> None:
    """The entry's limit, stop and trail from the body (a trailing stop without a stop price
    starts one trail away from the reference)."""
    if kind in ("Limit", "StopLimit"):
        entry.price = _dec(body["limitPrice"])
    if kind in ("Stop", "StopLimit"):
        entry.stop = _dec(body["stopPrice"])
    if kind == "TrailingStop":
        entry.peg = _dec(body["trailAmount"])
        entry.stop = _dec(body["stopPrice"]) if "stopPrice" in body else ref + sign * entry.peg


def _tp_price(tp: dict[str, Any], ref: Decimal, sign: int) -> Decimal:
    """The take-profit's limit: absolute, an amount from the reference, or a percent."""
    if "limitPrice" in tp:
        return _dec(tp["limitPrice"])
    if "amount" in tp:
        return ref + sign * _dec(tp["amount"])
    return ref * (1 + sign * _dec(tp["percent"]) / 100)


def _sl_stop(sl: dict[str, Any], ref: Decimal, sign: int, peg: Decimal | None) -> Decimal:
    """The stop-loss's stop: absolute, an amount from the reference, or one trail away."""
    if "stopPrice" in sl:
        return _dec(sl["stopPrice"])
    if "amount" in sl:
        return ref - sign * _dec(sl["amount"])
    assert peg is not None
    return ref - sign * peg


def _reference(body: dict[str, Any]) -> Decimal:
    for name in ("price", "limitPrice", "stopPrice"):
        if name in body:
            return _dec(body[name])
    return PRICE


def expected_outcome(body: dict[str, Any], sub: Sub, account: AccountModel) -> str:
    """What ``body`` does to one account (mutating ``account``); the outcome it records."""
    if body.get("test") is True:
        return "skipped:test-signal"
    action = body["action"]
    sentiment = body.get("sentiment")
    cancel_type = VENUE_TYPES.get(str(body.get("cancelOrderType")))
    quantity = _dec(body.get("quantity", 1))
    position = account.position
    if action == "cancel":
        return "placed" if account.cancel(cancel_type) else "rejected:nothing-to-cancel"
    if action == "exit" or sentiment == "flat":
        return _exit_outcome(body, sub, account, quantity)
    qty = _floor(quantity * sub.multiplier)
    if action == "add":
        if position == 0:
            return "rejected:no-position"
        side = "Buy" if position > 0 else "Sell"
        if body.get("cancel") is True:
            account.cancel(cancel_type)
        account.enter(body, side, qty)
        return "placed"
    return _entry_outcome(body, sub, account, qty, cancel_type)


def _exit_outcome(body: dict[str, Any], sub: Sub, account: AccountModel, quantity: Decimal) -> str:
    """An exit, or a signal with sentiment flat: all, a quantity or a percent of the position."""
    position = account.position
    if position == 0:
        return "rejected:no-position"
    size: int | None = None
    if body["action"] == "exit" and "quantity" in body:
        if body.get("quantityType") == "percent_of_position":
            size = None if quantity >= 100 else _floor(abs(position) * quantity / 100)
            if size == 0:
                return "rejected:quantity-rounds-to-zero"
        else:
            size = _floor(quantity * sub.multiplier)
    if size is None or size >= abs(position):
        account.liquidate()
    else:
        account.reduce("Sell" if position > 0 else "Buy", size)
    return "placed"


def _entry_outcome(
    body: dict[str, Any], sub: Sub, account: AccountModel, qty: int, cancel_type: str | None
) -> str:
    """A buy or sell: a cover (against the sentiment), an add, a reversal or an entry."""
    action = body["action"]
    sentiment = body.get("sentiment")
    position = account.position
    side = "Buy" if action == "buy" else "Sell"
    sign = _sign(side)
    if (side == "Buy" and sentiment == "bearish") or (side == "Sell" and sentiment == "bullish"):
        if position * sign >= 0:
            return "rejected:no-position-to-reduce"
        if body.get("cancel") is True:
            account.cancel(cancel_type)
        account.reduce(side, min(qty, abs(position)))
        return "placed"
    if position * sign > 0 and not sub.allow_add:
        return "rejected:already-in-position"
    if position * sign < 0:
        account.liquidate()
        if not sub.allow_reversal:  # TradersPost: the opposite signal only closes
            return "placed"
    else:
        # from flat an entry cancels first unless cancel: false; an allowed add only with true
        cancel = body.get("cancel") is not False if position == 0 else body.get("cancel") is True
        if cancel:
            account.cancel(cancel_type)
    account.enter(body, side, qty)
    return "placed"


# -- webhook bodies --------------------------------------------------------------------------

_POINTS = st.sampled_from([Decimal(1), Decimal("2.5"), Decimal(5), Decimal(10)])


def _num(value: Decimal) -> float | int:
    """A JSON number for a price on tick (an int when whole, like TradingView sends)."""
    return int(value) if value == value.to_integral_value() else float(value)


@st.composite
def entries(draw: st.DrawFn, actions: tuple[str, ...] = ("buy", "sell")) -> dict[str, Any]:
    """An entry of any order type, filling or resting at the fixed price, with any bracket."""
    action = draw(st.sampled_from(actions))
    s = -1 if action == "sell" else 1
    body: dict[str, Any] = {"ticker": TICKER, "action": action, "price": _num(PRICE)}
    quantity = draw(st.sampled_from([None, 1, 2, 3]))
    if quantity is not None:
        body["quantity"] = quantity
    order_type = draw(st.sampled_from(list(VENUE_TYPES)))
    fills = draw(st.booleans())
    d = draw(_POINTS)
    if order_type != "market":
        body["orderType"] = order_type
    _draw_entry_prices(draw, body, order_type, s, fills, d)
    _draw_bracket(draw, body, s)
    tif = draw(st.sampled_from([None, None, "day", "gtc", "ioc", "fok"]))
    if tif is not None:
        body["timeInForce"] = tif
    cancel = draw(st.sampled_from([None, None, True, False]))
    if cancel is not None:
        body["cancel"] = cancel
    if draw(st.integers(0, 3)) == 0:
        body["cancelOrderType"] = draw(st.sampled_from(list(VENUE_TYPES)))
    if draw(st.integers(0, 3)) == 0:
        body["sentiment"] = "bullish" if action == "buy" else "bearish"
    return body


def _draw_entry_prices(
    draw: st.DrawFn, body: dict[str, Any], order_type: str, s: int, fills: bool, d: Decimal
) -> None:
    """The entry's prices for its type: on the side that fills at once, or that rests."""
    if order_type == "limit":
        body["limitPrice"] = _num(PRICE + s * d if fills else PRICE - s * d)
    elif order_type == "stop":
        body["stopPrice"] = _num(PRICE - s * d if fills else PRICE + s * d)
    elif order_type == "stop_limit":
        mode = draw(st.sampled_from(["untriggered", "fills", "triggered-rests"]))
        if mode == "untriggered":
            stop, limit = PRICE + s * d, PRICE + s * (d + 1)
        elif mode == "fills":
            stop, limit = PRICE - s * d, PRICE + s * 1
        else:
            stop = limit = PRICE - s * d
        body["stopPrice"], body["limitPrice"] = _num(stop), _num(limit)
    elif order_type == "trailing_stop":
        trail = draw(st.sampled_from([Decimal(2), Decimal("7.5")]))
        body["trailAmount"] = _num(trail)
        if fills:
            body["stopPrice"] = _num(PRICE - s * d)
        elif draw(st.booleans()):
            body["stopPrice"] = _num(PRICE + s * (trail + d))  # tightened to price + trail


def _draw_bracket(draw: st.DrawFn, body: dict[str, Any], s: int) -> None:
    """Any take-profit (amount, absolute, percent) and stop-loss (five kinds), or none."""
    a = draw(_POINTS) * 4
    tp = draw(st.sampled_from(["none", "amount", "absolute", "percent"]))
    if tp == "amount":
        body["takeProfit"] = {"amount": _num(a)}
    elif tp == "absolute":
        body["takeProfit"] = {"limitPrice": _num(PRICE + s * a)}
    elif tp == "percent":
        body["takeProfit"] = {"percent": 0.1}
    sl = draw(st.sampled_from(["none", "stop", "stop-absolute", "stop_limit", "trailing_stop"]))
    if sl == "stop":
        body["stopLoss"] = {"type": "stop", "amount": _num(a)}
    elif sl == "stop-absolute":
        body["stopLoss"] = {"stopPrice": _num(PRICE - s * a)}
    elif sl == "stop_limit":
        body["stopLoss"] = {
            "type": "stop_limit",
            "amount": _num(a),
            "limitPrice": _num(PRICE - s * (a + 1)),
        }
    elif sl == "trailing_stop":
        body["stopLoss"] = {"type": "trailing_stop", "trailAmount": _num(a / 2)}


@st.composite
def exits(draw: st.DrawFn) -> dict[str, Any]:
    """exit (all, a quantity, a percent), buy/sell with sentiment flat, a partial cover."""
    kind = draw(st.sampled_from(["all", "quantity", "percent", "flat", "cover"]))
    if kind == "flat":
        return {
            "ticker": TICKER,
            "action": draw(st.sampled_from(["buy", "sell"])),
            "sentiment": "flat",
        }
    if kind == "cover":
        action = draw(st.sampled_from(["buy", "sell"]))
        body: dict[str, Any] = {
            "ticker": TICKER,
            "action": action,
            "sentiment": "bearish" if action == "buy" else "bullish",
            "quantity": draw(st.integers(1, 3)),
            "price": _num(PRICE),
        }
        if draw(st.booleans()):
            body["cancel"] = True
        return body
    body = {"ticker": TICKER, "action": "exit"}
    if kind == "quantity":
        body["quantity"] = draw(st.integers(1, 4))
    elif kind == "percent":
        body["quantity"] = draw(st.sampled_from([10, 34, 50, 100, 66.7]))
        body["quantityType"] = "percent_of_position"
    return body


def cancels() -> st.SearchStrategy[dict[str, Any]]:
    """cancel, optionally only one order type."""
    return st.one_of(
        st.just({"ticker": TICKER, "action": "cancel"}),
        st.sampled_from(list(VENUE_TYPES)).map(
            lambda t: {"ticker": TICKER, "action": "cancel", "cancelOrderType": t}
        ),
    )


def _side_free(body: dict[str, Any]) -> dict[str, Any]:
    """An add takes the side of the position: prices measured from the reference in the
    direction of the trade are refused for it at the door, so leave them out."""
    body = {k: v for k, v in body.items() if k != "sentiment"}
    tp, sl = body.get("takeProfit"), body.get("stopLoss")
    if tp is not None and "limitPrice" not in tp:
        del body["takeProfit"]
    if sl is not None and ("stopPrice" not in sl or sl.get("type") == "trailing_stop"):
        del body["stopLoss"]
    if body.get("orderType") == "trailing_stop" and "stopPrice" not in body:
        body.pop("orderType")
        body.pop("trailAmount", None)
    return body


def adds() -> st.SearchStrategy[dict[str, Any]]:
    """add: TradersPost adds on the side of the open position."""
    return entries(actions=("add",)).map(_side_free)


SIGNALS = st.one_of(entries(), entries(), exits(), cancels())

# Refused at the door (400 with a messageCode); nothing may be stored or traded.
INVALID: list[bytes | dict[str, Any]] = [
    b"",
    b"buy MNQ now",
    b"[1, 2]",
    {"ticker": TICKER},
    {"ticker": TICKER, "action": "hold"},
    {"ticker": TICKER, "action": "buy", "quantity": 0},
    {"ticker": TICKER, "action": "buy", "quantity": -1},
    {"ticker": TICKER, "action": "buy", "quantity": 1.5},
    {"ticker": TICKER, "action": "buy", "quantity": "two"},
    {"ticker": TICKER, "action": "buy", "quantity": 1000},
    {"ticker": TICKER, "action": "buy", "orderType": "iceberg"},
    {"ticker": TICKER, "action": "buy", "orderType": "limit"},
    {"ticker": TICKER, "action": "buy", "trailAmount": 5},
    {
        "ticker": TICKER,
        "action": "buy",
        "price": 21000,
        "stopLoss": {"type": "stop_limit", "amount": 5},
    },
    {"ticker": TICKER, "action": "buy", "takeProfit": {"limitPrice": 21040, "amount": 5}},
    {"ticker": TICKER, "action": "buy", "stopLoss": {"type": "trailing_stop"}},
    {"ticker": TICKER, "action": "buy", "timeInForce": "opg"},
    {"ticker": TICKER, "action": "buy", "timeInForce": "gtd"},
    {"ticker": TICKER, "action": "cancel", "quantity": 1},
    {"ticker": TICKER, "action": "exit", "takeProfit": {"amount": 10}},
    {"ticker": TICKER, "action": "exit", "orderType": "limit", "limitPrice": 21000},
    {"ticker": TICKER, "action": "exit", "sentiment": "flat"},
    {"ticker": TICKER, "action": "exit", "quantity": 150, "quantityType": "percent_of_position"},
    {"ticker": TICKER, "action": "buy", "quantity": 50, "quantityType": "percent_of_position"},
    {"ticker": "ZZZ1!", "action": "buy"},
    {"ticker": "MNQZ2020", "action": "buy"},
    {"ticker": TICKER, "action": "buy", "expiresAt": "2020-01-01T00:00:00Z"},
    {"ticker": TICKER, "action": "buy", "cancel": "maybe"},
]


def _encode(body: bytes | dict[str, Any]) -> bytes:
    return body if isinstance(body, bytes) else json.dumps(body).encode()


# -- the system under test -------------------------------------------------------------------


@dataclass
class Harness:
    """The running system, its seeded accounts and the two strategies the machine uses."""

    threaded: ThreadedSystem
    http: httpx.Client
    webhook_url: str
    stale_url: str
    strategy_id: str
    subs: list[Sub]
    symbol: str

    @property
    def system(self) -> RunningSystem:
        return self.threaded.system

    def admin(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.system.endpoints.admin_token}"}

    def signal(self, signal_id: str) -> dict[str, Any]:
        """The signal log entry, once every account has an outcome (or the plan was refused)."""
        url = f"{self.system.endpoints.ingest}/admin/signals/{signal_id}"
        deadline = time.monotonic() + OUTCOME_TIMEOUT_S
        entry: dict[str, Any] = {}
        while time.monotonic() < deadline:
            resp = self.http.get(url, headers=self.admin())
            if resp.status_code == 200:
                entry = resp.json()
                if entry["status"] == "rejected":
                    return entry
                accounts = entry["accounts"]
                if (
                    entry["status"] == "done"
                    and len(accounts) == len(self.subs)
                    and all(a["outcome"] not in ("pending", "unknown") for a in accounts)
                ):
                    return entry
            time.sleep(0.05)
        raise AssertionError(f"signal {signal_id} has no outcome for every account: {entry}")

    def stored_signals(self) -> int:
        """Messages in the SIGNALS stream."""

        async def count() -> int:
            bus = await Bus.connect(self.system.nats_url, "model-count")
            try:
                info = await bus.js.stream_info(subjects.SIGNALS.name)
                return int(info.state.messages)
            finally:
                await bus.close()

        return self.threaded.run(count())

    def venue(self) -> dict[int, tuple[int, Counter[tuple[Any, ...]]]]:
        """Each account's position and working orders in the contract, read on the loop."""

        async def read() -> dict[int, tuple[int, Counter[tuple[Any, ...]]]]:
            venue = self.system.sim.venue
            info = venue.contracts.resolve(self.symbol)
            assert info is not None
            cid = info.contract.id
            found: dict[int, tuple[int, Counter[tuple[Any, ...]]]] = {}
            for sub in self.subs:
                book = venue.state.books[sub.account_id]
                position = book.positions.get(cid)
                orders: Counter[tuple[Any, ...]] = Counter()
                for rec in book.orders.values():
                    if rec.order.contractId != cid or rec.order.ordStatus not in (
                        "Working",
                        "Suspended",
                    ):
                        continue
                    v = rec.version
                    orders[
                        (
                            v.orderType,
                            rec.order.action,
                            v.orderQty,
                            rec.order.ordStatus,
                            None if v.price is None else _dec(v.price),
                            None if v.stopPrice is None else _dec(v.stopPrice),
                        )
                    ] += 1
                found[sub.account_id] = (position.netPos if position else 0, orders)
            return found

        return self.threaded.run(read())

    def flatten(self) -> None:
        """Liquidate every account at the venue and wait until the executor sees them flat."""

        async def flatten() -> None:
            venue = self.system.sim.venue
            info = venue.contracts.resolve(self.symbol)
            assert info is not None
            for sub in self.subs:
                venue.engine.liquidate(venue.state.books[sub.account_id], info, Origin(0, 0))
            view = self.system.executor.view
            deadline = time.monotonic() + OUTCOME_TIMEOUT_S
            while any(
                view.position(s.account_id, info.contract.id)
                or view.working_orders(s.account_id, info.contract.id)
                for s in self.subs
            ):
                assert time.monotonic() < deadline, "the executor never saw the accounts flat"
                await _sleep(0.02)

        self.threaded.run(flatten())


async def _sleep(seconds: float) -> None:
    await asyncio.sleep(seconds)


def _start(nats_url: str, redis_url: str) -> Harness:
    threaded = ThreadedSystem(nats_url, redis_url, **UNTHROTTLED)
    try:
        return _prepare(threaded)
    except BaseException:
        threaded.close()
        raise


def _prepare(threaded: ThreadedSystem) -> Harness:
    system = threaded.system
    seeded = threaded.run(seed(system.endpoints, logins=2, accounts_per_login=2, prefix="model"))
    a0, a1, b0, b1 = seeded.account_ids
    subs = [
        Sub(a0),
        Sub(a1, multiplier=2, allow_add=True),
        Sub(b0, allow_add=True),
        Sub(b1, allow_reversal=False),
    ]
    today = dt.datetime.now(dt.UTC).date()
    symbol, _ = ContractBook.load().resolve(TICKER, today)
    threaded.run(_set_price(system, symbol))
    http = httpx.Client(timeout=30)
    admin = {"Authorization": f"Bearer {system.endpoints.admin_token}"}
    ingest = system.endpoints.ingest
    limits = {"rate_limit_per_min": 1_000_000, "repeat_window_s": REPEAT_WINDOW_S}
    resp = http.patch(f"{ingest}/admin/strategies/{seeded.strategy_id}", json=limits, headers=admin)
    resp.raise_for_status()
    for sub in subs:
        resp = http.put(
            f"{ingest}/admin/strategies/{seeded.strategy_id}/subscriptions/{sub.account_id}",
            json={
                "multiplier": sub.multiplier,
                "allow_add": sub.allow_add,
                "allow_reversal": sub.allow_reversal,
            },
            headers=admin,
        )
        resp.raise_for_status()
    stale = http.post(
        f"{ingest}/admin/strategies",
        json={"name": "stale", "max_entry_age_s": 1e-6, "max_exit_age_s": 1e-6, **limits},
        headers=admin,
    )
    stale.raise_for_status()
    stale_id = stale.json()["strategy_id"]
    http.post(
        f"{ingest}/admin/strategies/{stale_id}/subscriptions:bulk",
        json={"account_ids": [s.account_id for s in subs]},
        headers=admin,
    ).raise_for_status()
    harness = Harness(
        threaded=threaded,
        http=http,
        webhook_url=seeded.webhook_url,
        stale_url=stale.json()["webhook_url"],
        strategy_id=seeded.strategy_id,
        subs=subs,
        symbol=symbol,
    )
    _wait_until_ready(harness)
    return harness


async def _set_price(system: RunningSystem, symbol: str) -> None:
    pool = system.executor.pool
    assert pool is not None
    deadline = time.monotonic() + 30
    while len(pool) < 2:
        assert time.monotonic() < deadline, "the executor did not connect both logins"
        await _sleep(0.05)
    system.sim.set_price(symbol, float(PRICE))


def _wait_until_ready(h: Harness) -> None:
    """Every subscription reached the planner: a test signal skips all four accounts (and one to
    the stale strategy expires on all four)."""
    deadline = time.monotonic() + 30
    n = 0
    while True:
        n += 1
        for url, outcome in ((h.webhook_url, "skipped"), (h.stale_url, "expired")):
            body = {"ticker": TICKER, "action": "buy", "test": True, "extras": {"ready": n}}
            resp = h.http.post(url, json=body)
            assert resp.status_code == 200, resp.text
            entry = h.signal(resp.json()["id"])
            if [a["outcome"] for a in entry["accounts"]] != [outcome] * 4:
                break
        else:
            return
        assert time.monotonic() < deadline, "subscriptions never reached the planner"


# -- the state machine -----------------------------------------------------------------------


class SignalMachine(RuleBasedStateMachine):
    """Sends webhooks and checks the venue against the model after every one."""

    harness: Harness

    def __init__(self) -> None:
        super().__init__()
        self.accounts = {s.account_id: AccountModel() for s in self.harness.subs}
        self.last: tuple[bytes, float] | None = None  # last id-less body and when it was sent
        self.ids: dict[str, str] = {}  # explicit id -> signal id
        self.waited = False

    @initialize()
    def flat_accounts(self) -> None:
        self.harness.flatten()
        self.check_venue("after flattening")

    # helpers

    def _body(self, body: dict[str, Any]) -> dict[str, Any]:
        """The body made unique (no two examples, nor replays, ever send the same bytes by
        chance: only the repeat rules do, on purpose)."""
        return {**body, "extras": {"model-step": next(_STEPS), "run": RUN}}

    def post(self, body: bytes, url: str | None = None) -> httpx.Response:
        return self.harness.http.post(
            url or self.harness.webhook_url,
            content=body,
            headers={"Content-Type": "application/json"},
        )

    def accepted(self, resp: httpx.Response, duplicate: bool = False) -> str:
        assert resp.status_code == 200, resp.text
        answer = resp.json()
        assert answer.get("duplicate", False) is duplicate, answer
        return str(answer["id"])

    def expect(self, signal_id: str, body: dict[str, Any]) -> None:
        """Apply the body to the model, wait for the outcomes, compare everything."""
        entry = self.harness.signal(signal_id)
        expected = {
            s.account_id: expected_outcome(body, s, self.accounts[s.account_id])
            for s in self.harness.subs
        }
        got = {
            a["account_id"]: a["outcome"] + (f":{a['reason']}" if a["outcome"] != "placed" else "")
            for a in entry["accounts"]
        }
        got = {k: ("expired" if v.startswith("expired") else v) for k, v in got.items()}
        assert entry["status"] == "done", (body, entry)
        assert got == expected, f"outcomes for {body}: got {got}, expected {expected}"
        self.check_venue(f"after {body}")

    def check_venue(self, when: str) -> None:
        venue = self.harness.venue()
        for sub in self.harness.subs:
            position, orders = venue[sub.account_id]
            want_position, want_orders = self.accounts[sub.account_id].view()
            assert (position, orders) == (want_position, want_orders), (
                f"account {sub} {when}: venue {position} {sorted(map(str, orders.elements()))}, "
                f"model {want_position} {sorted(map(str, want_orders.elements()))}"
            )

    # rules

    @rule(body=SIGNALS)
    def send(self, body: dict[str, Any]) -> None:
        body = self._body(body)
        raw = _encode(body)
        signal_id = self.accepted(self.post(raw))
        self.last = (raw, time.monotonic())
        self.expect(signal_id, body)

    @rule(body=adds())
    def add(self, body: dict[str, Any]) -> None:
        body = self._body(body)
        signal_id = self.accepted(self.post(_encode(body)))
        self.expect(signal_id, body)

    @rule(body=SIGNALS)
    def send_twice_inside_the_repeat_window(self, body: dict[str, Any]) -> None:
        body = self._body(body)
        raw = _encode(body)
        sent = time.monotonic()
        signal_id = self.accepted(self.post(raw))
        again = self.post(raw)
        assert time.monotonic() - sent < REPEAT_WINDOW_S, "too slow to test the window"
        assert self.accepted(again, duplicate=True) == signal_id
        self.last = (raw, sent)
        self.expect(signal_id, body)

    # at most once an example: each costs a sleep through the window
    @precondition(lambda self: self.last is not None and not self.waited)
    @rule()
    def send_again_after_the_repeat_window(self) -> None:
        assert self.last is not None
        self.waited = True
        raw, sent = self.last
        time.sleep(max(0.0, sent + REPEAT_WINDOW_S + 0.3 - time.monotonic()))
        signal_id = self.accepted(self.post(raw))
        self.last = (raw, time.monotonic())
        self.expect(signal_id, json.loads(raw))

    @rule(body=SIGNALS)
    def send_with_an_explicit_id(self, body: dict[str, Any]) -> None:
        body = self._body(body)
        body["id"] = f"model-{uuid.uuid4().hex}"
        signal_id = self.accepted(self.post(_encode(body)))
        self.ids[body["id"]] = signal_id
        self.expect(signal_id, body)

    @precondition(lambda self: bool(self.ids))
    @rule(body=SIGNALS, data=st.data())
    def reuse_an_explicit_id(self, body: dict[str, Any], data: st.DataObject) -> None:
        explicit = data.draw(st.sampled_from(sorted(self.ids)))
        body = {**self._body(body), "id": explicit}
        before = self.harness.stored_signals()
        assert self.accepted(self.post(_encode(body)), duplicate=True) == self.ids[explicit]
        assert self.harness.stored_signals() == before
        self.check_venue(f"after the duplicate {body}")

    @rule(body=st.sampled_from(INVALID))
    def send_invalid(self, body: bytes | dict[str, Any]) -> None:
        before = self.harness.stored_signals()
        resp = self.post(_encode(body))
        assert resp.status_code == 400, (body, resp.status_code, resp.text)
        assert resp.json()["messageCode"], resp.text
        assert self.harness.stored_signals() == before
        self.check_venue(f"after the invalid {body!r}")

    @rule(body=SIGNALS)
    def send_a_test_signal(self, body: dict[str, Any]) -> None:
        body = {**self._body(body), "test": True}
        signal_id = self.accepted(self.post(_encode(body)))
        self.expect(signal_id, body)

    @rule(body=SIGNALS)
    def send_a_stale_signal(self, body: dict[str, Any]) -> None:
        body = self._body(body)
        signal_id = self.accepted(self.post(_encode(body), self.harness.stale_url))
        entry = self.harness.signal(signal_id)
        assert entry["status"] == "done", entry
        assert [a["outcome"] for a in entry["accounts"]] == ["expired"] * 4, entry
        self.check_venue(f"after the stale {body}")


RUN = uuid.uuid4().hex[:8]
_STEPS = itertools.count(1)


@pytest.fixture
def harness(nats_url: str, redis_url: str) -> Iterator[Harness]:
    h = _start(nats_url, redis_url)
    try:
        yield h
    finally:
        h.http.close()
        h.threaded.close()


def _machine(harness: Harness) -> type[SignalMachine]:
    return type("BoundSignalMachine", (SignalMachine,), {"harness": harness})


def test_signals_do_to_every_account_what_the_model_says(harness: Harness) -> None:
    run_state_machine_as_test(
        _machine(harness),
        settings=settings(
            max_examples=50,
            stateful_step_count=30,
            deadline=None,
            database=None,
            derandomize=True,
            suppress_health_check=list(HealthCheck),
            print_blob=False,
        ),
    )


def test_an_add_while_long_adds_to_the_long_position(harness: Harness) -> None:
    machine = _machine(harness)()
    machine.flat_accounts()
    machine.send({"ticker": TICKER, "action": "buy", "quantity": 1})
    machine.add({"ticker": TICKER, "action": "add", "quantity": 1, "price": _num(PRICE)})

    # add ignores the subscription's add setting; a1 trades twice the signal's quantity
    assert sorted(a.position for a in machine.accounts.values()) == [2, 2, 2, 4]


def test_a_partial_exit_shrinks_the_resting_bracket_legs(harness: Harness) -> None:
    machine = _machine(harness)()
    machine.flat_accounts()
    entry = {
        "ticker": TICKER,
        "action": "buy",
        "quantity": 2,
        "takeProfit": {"limitPrice": _num(PRICE + 20)},
        "stopLoss": {"stopPrice": _num(PRICE - 20)},
    }
    machine.send(entry)
    machine.send({"ticker": TICKER, "action": "exit", "quantity": 1})

    legs = list(machine.accounts[machine.harness.subs[0].account_id].orders.values())
    assert sorted(o.qty for o in legs) == [1, 1]
