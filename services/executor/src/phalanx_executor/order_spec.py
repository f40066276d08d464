"""A signal's order fields as the venue's: order type, prices, trail, time in force, cancels.

:func:`order_fields` is pure and is what the planner puts on every :class:`OrderIntent` of a
signal (ADR-0035). Every price is rounded to the product's tick; a trail (``pegDifference``) is
at least one tick. A field the venue needs but the signal lacks raises :class:`OrderSpecError`
with a sentence the planner records as the signal's rejection.

- entry ``orderType``: market → Market, limit → Limit (``price`` = limitPrice), stop → Stop
  (``stopPrice``), stop_limit → StopLimit (both), trailing_stop → TrailingStop (``stopPrice`` =
  the initial stop, ``pegDifference`` = the trail in price points: ``trailAmount``, or
  ``trailPercent`` x reference / 100). The initial stop is the sent ``stopPrice``, else the
  reference + trail for a Buy and - trail for a Sell.
- the reference price is ``signalPrice``/``price``, else ``limitPrice``, else ``stopPrice``.
- stop-loss leg: stop → Stop, stop_limit → StopLimit (its own ``limitPrice``), trailing_stop →
  TrailingStop (initial stop: the leg's stopPrice/amount/percent, else reference -/+ trail).
- ``timeInForce``: day/gtc/ioc/fok → Day/GTC/IOC/FOK; legs keep Day/GTC and are GTC under an
  IOC/FOK entry; opg/cls have no Tradovate equivalent and reject the signal.
- ``cancel``/``cancelOrderType`` are carried as they are (the worker decides with the live
  orders, :mod:`decisions`); ``quantityType: percent_of_position`` makes an exit a percent.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Literal, TypedDict

from phalanx_common.contracts import ProductSpec
from phalanx_common.events import (
    IntentKind,
    Signal,
    StopLoss,
    VenueAction,
    VenueOrderType,
    VenueTimeInForce,
)

__all__ = ["OrderFields", "OrderSpecError", "exit_percent", "order_fields"]

StopLossType = Literal["Stop", "StopLimit", "TrailingStop"]

_ORDER_TYPES: dict[str, VenueOrderType] = {
    "market": "Market",
    "limit": "Limit",
    "stop": "Stop",
    "stop_limit": "StopLimit",
    "trailing_stop": "TrailingStop",
}
_STOP_LOSS_TYPES: dict[str, StopLossType] = {
    "stop": "Stop",
    "stop_limit": "StopLimit",
    "trailing_stop": "TrailingStop",
}
_TIME_IN_FORCE: dict[str, VenueTimeInForce] = {
    "day": "Day",
    "gtc": "GTC",
    "ioc": "IOC",
    "fok": "FOK",
}


class OrderSpecError(ValueError):
    """The signal lacks something the venue order needs (the message says what)."""


class OrderFields(TypedDict):
    """The order fields of an :class:`OrderIntent` (keyword arguments, checked by mypy)."""

    order_type: VenueOrderType
    limit_price: Decimal | None
    stop_price: Decimal | None
    peg_difference: Decimal | None
    take_profit: Decimal | None
    stop_loss: Decimal | None
    stop_loss_type: StopLossType
    stop_loss_limit: Decimal | None
    stop_loss_peg: Decimal | None
    time_in_force: VenueTimeInForce | None
    bracket_time_in_force: VenueTimeInForce | None
    cancel: bool | None
    cancel_order_type: VenueOrderType | None


def exit_percent(signal: Signal) -> Decimal | None:
    """The percent of the position an exit closes (``quantityType: percent_of_position``)."""
    if signal.quantity_type == "percent_of_position" and signal.quantity is not None:
        return signal.quantity
    return None


def order_fields(
    signal: Signal, kind: IntentKind, action: VenueAction, spec: ProductSpec
) -> OrderFields:
    """The venue order fields of a signal's intents.

    Raises:
        OrderSpecError: a price, trail or time in force the venue order needs is missing or has
            no Tradovate equivalent.
    """
    tif, leg_tif = _time_in_force(signal)
    cancel_type = _ORDER_TYPES.get(signal.cancel_order_type) if signal.cancel_order_type else None
    if signal.cancel_order_type and cancel_type is None:
        raise OrderSpecError(f"cancelOrderType {signal.cancel_order_type!r} is not an order type")
    fields = OrderFields(
        order_type="Market",
        limit_price=None,
        stop_price=None,
        peg_difference=None,
        take_profit=None,
        stop_loss=None,
        stop_loss_type="Stop",
        stop_loss_limit=None,
        stop_loss_peg=None,
        time_in_force=None,
        bracket_time_in_force=None,
        cancel=signal.cancel,
        cancel_order_type=cancel_type,
    )
    if kind not in ("entry", "add"):
        return fields  # exits are market reduces or liquidations; cancels place nothing
    fields["time_in_force"] = tif
    fields["bracket_time_in_force"] = leg_tif
    _entry(signal, action, spec, fields)
    _take_profit(signal, action, spec, fields)
    if signal.stop_loss is not None:
        _stop_loss(signal, signal.stop_loss, action, spec, fields)
    return fields


def _time_in_force(signal: Signal) -> tuple[VenueTimeInForce | None, VenueTimeInForce | None]:
    name = signal.time_in_force
    if name is None:
        return None, None
    tif = _TIME_IN_FORCE.get(name)
    if tif is None:
        raise OrderSpecError(
            f"timeInForce {name!r} has no Tradovate equivalent; use day, gtc, ioc or fok"
        )
    return tif, ("GTC" if tif in ("IOC", "FOK") else tif)


def _tick(spec: ProductSpec, price: Decimal) -> Decimal:
    return spec.round_to_tick(price)


def _peg(spec: ProductSpec, offset: Decimal) -> Decimal:
    """A trail rounded to tick, at least one tick."""
    return max(spec.round_to_tick(offset), spec.tick_size.normalize())


def _trail(
    amount: Decimal | None, percent: Decimal | None, ref: Decimal | None, what: str
) -> Decimal:
    if amount is not None:
        return amount
    if percent is not None:
        if ref is None:
            raise OrderSpecError(
                f"{what} trailPercent needs price/signalPrice, limitPrice or stopPrice"
            )
        return percent * ref / 100
    raise OrderSpecError(f"{what} needs trailAmount or trailPercent")


def _entry(signal: Signal, action: VenueAction, spec: ProductSpec, fields: OrderFields) -> None:
    kind = signal.order_type
    order_type = _ORDER_TYPES[kind]
    fields["order_type"] = order_type
    if order_type in ("Limit", "StopLimit"):
        if signal.limit_price is None:
            raise OrderSpecError(f"a {kind} entry needs limitPrice")
        fields["limit_price"] = _tick(spec, signal.limit_price)
    if order_type in ("Stop", "StopLimit"):
        if signal.stop_price is None:
            raise OrderSpecError(f"a {kind} entry needs stopPrice")
        fields["stop_price"] = _tick(spec, signal.stop_price)
    if order_type == "TrailingStop":
        ref = signal.reference_price()
        offset = _trail(signal.trail_amount, signal.trail_percent, ref, "a trailing_stop entry")
        peg = _peg(spec, offset)
        if signal.stop_price is not None:
            stop = signal.stop_price
        elif ref is not None:
            stop = ref + peg if action == "Buy" else ref - peg
        else:
            raise OrderSpecError(
                "a trailing_stop entry needs stopPrice or a reference price "
                "(price/signalPrice or limitPrice) for its initial stop"
            )
        fields["stop_price"] = _tick(spec, stop)
        fields["peg_difference"] = peg


def _take_profit(
    signal: Signal, action: VenueAction, spec: ProductSpec, fields: OrderFields
) -> None:
    t = signal.take_profit
    if t is None:
        return
    ref = signal.reference_price()
    sign = Decimal(1) if action == "Buy" else Decimal(-1)
    if t.limit_price is not None:
        tp = t.limit_price
    elif ref is not None and t.amount is not None:
        tp = ref + sign * t.amount
    elif ref is not None and t.percent is not None:
        tp = ref * (1 + sign * t.percent / 100)
    else:
        raise OrderSpecError("a relative take-profit needs price/signalPrice or limitPrice")
    fields["take_profit"] = _tick(spec, tp)


def _stop_loss(
    signal: Signal, s: StopLoss, action: VenueAction, spec: ProductSpec, fields: OrderFields
) -> None:
    ref = signal.reference_price()
    sign = Decimal(1) if action == "Buy" else Decimal(-1)
    sl_type = _STOP_LOSS_TYPES[s.type]
    fields["stop_loss_type"] = sl_type
    peg: Decimal | None = None
    if sl_type == "TrailingStop":
        peg = _peg(spec, _trail(s.trail_amount, s.trail_percent, ref, "a trailing_stop stop-loss"))
        fields["stop_loss_peg"] = peg
    if s.stop_price is not None:
        sl = s.stop_price
    elif ref is not None and s.amount is not None:
        sl = ref - sign * s.amount
    elif ref is not None and s.percent is not None:
        sl = ref * (1 - sign * s.percent / 100)
    elif ref is not None and peg is not None:
        sl = ref - sign * peg
    else:
        raise OrderSpecError("a relative stop-loss needs price/signalPrice or limitPrice")
    fields["stop_loss"] = _tick(spec, sl)
    if sl_type == "StopLimit":
        if s.limit_price is None:
            raise OrderSpecError("a stop_limit stop-loss needs its limitPrice")
        fields["stop_loss_limit"] = _tick(spec, s.limit_price)
