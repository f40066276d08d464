"""Checks across a parsed signal's fields: whole contracts, sane prices, what entries need and
what exits, flats and cancels cannot use. Each raises
:class:`~phalanx_ingest.responses.WebhookRejectedError` with TradersPost's ``messageCode``."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from phalanx_common.events import Signal
from phalanx_ingest.responses import MessageCode, WebhookRejectedError

__all__ = [
    "check_add_is_side_free",
    "check_entry_prices",
    "check_not_for_exits",
    "check_prices",
    "check_quantity",
    "check_reference_price",
]

_MAX_PRICE = Decimal(10) ** 8


def check_quantity(signal: Signal) -> None:
    quantity = signal.quantity
    if quantity is None:
        return
    if signal.action == "cancel":
        raise WebhookRejectedError(
            MessageCode.INVALID_QUANTITY,
            "A cancel signal cancels working orders and has no quantity. Remove the quantity "
            "field.",
        )
    if signal.quantity_type == "percent_of_position":
        return  # 0 < percent <= 100, checked with quantityType
    if quantity != quantity.to_integral_value():
        raise WebhookRejectedError(
            MessageCode.INVALID_QUANTITY,
            f"The quantity {quantity} is not a whole number of contracts. Futures trade in "
            "whole contracts: send e.g. 1 or 2 (a subscription's multiplier scales it).",
        )


def check_prices(signal: Signal) -> None:
    named = {
        "limitPrice": signal.limit_price,
        "stopPrice": signal.stop_price,
        "price": signal.signal_price,
        "takeProfit.limitPrice": signal.take_profit.limit_price if signal.take_profit else None,
        "takeProfit.amount": signal.take_profit.amount if signal.take_profit else None,
        "stopLoss.stopPrice": signal.stop_loss.stop_price if signal.stop_loss else None,
        "stopLoss.limitPrice": signal.stop_loss.limit_price if signal.stop_loss else None,
        "stopLoss.amount": signal.stop_loss.amount if signal.stop_loss else None,
        "stopLoss.trailAmount": signal.stop_loss.trail_amount if signal.stop_loss else None,
        "trailAmount": signal.trail_amount,
    }
    for name, value in named.items():
        if value is not None and value >= _MAX_PRICE:
            raise WebhookRejectedError(
                MessageCode.INVALID_PAYLOAD,
                f"The {name} {value} is not a price any futures contract trades at (at most "
                f"{_MAX_PRICE:,}).",
            )
    sl = signal.stop_loss
    if sl is not None and sl.percent is not None and sl.percent >= 100:
        raise WebhookRejectedError(
            MessageCode.INVALID_STOP_LOSS_PERCENT,
            f"stopLoss.percent {sl.percent} would put the stop at or beyond zero. Send a percent "
            "below 100.",
        )
    for percent, code in (
        (sl.trail_percent if sl else None, MessageCode.INVALID_STOP_LOSS_TRAIL_PERCENT),
        (signal.trail_percent, MessageCode.INVALID_TRAILING_STOP),
    ):
        if percent is not None and percent >= 100:
            raise WebhookRejectedError(
                code, f"A trail of {percent} percent is not a trailing stop. Send less than 100."
            )


def check_entry_prices(signal: Signal) -> None:
    needs = {
        "limit": ("limitPrice",),
        "stop": ("stopPrice",),
        "stop_limit": ("limitPrice", "stopPrice"),
    }.get(signal.order_type, ())
    have = {"limitPrice": signal.limit_price, "stopPrice": signal.stop_price}
    missing = [name for name in needs if have[name] is None]
    if missing:
        raise WebhookRejectedError(
            MessageCode.INVALID_ORDER_TYPE,
            f"orderType {signal.order_type} needs {' and '.join(missing)}: Phalanx has no "
            "market data to pick a price for you. Add it, e.g. "
            '"limitPrice": {{close}}.',
        )


def check_reference_price(signal: Signal) -> None:
    if signal.reference_price() is not None:
        return
    tp, sl = signal.take_profit, signal.stop_loss
    relative = [
        (tp is not None and tp.limit_price is None, MessageCode.INVALID_TAKE_PROFIT_VALUE_REQUIRED),
        (
            sl is not None and sl.stop_price is None,
            MessageCode.INVALID_STOP_LOSS_STOP_PRICE_REQUIRED,
        ),
        (
            sl is not None and sl.type == "trailing_stop" and sl.trail_percent is not None,
            MessageCode.INVALID_STOP_LOSS_TRAIL_PERCENT,
        ),
        (
            signal.order_type == "trailing_stop",
            MessageCode.INVALID_TRAILING_STOP,
        ),
    ]
    for is_relative, code in relative:
        if is_relative:
            raise WebhookRejectedError(
                code,
                "A relative take-profit, stop-loss or trailing stop is measured from the "
                "signal's price, and this signal has none (Phalanx has no market data). Add "
                '"price": {{close}} to the alert, or send absolute prices (takeProfit.limitPrice, '
                "stopLoss.stopPrice).",
            )


def check_add_is_side_free(signal: Signal) -> None:
    """An add takes the side of the position, known only when it executes: prices measured
    from the reference in the direction of the trade cannot be computed for it."""
    tp, sl = signal.take_profit, signal.stop_loss
    sided = {
        "a relative takeProfit": tp is not None and tp.limit_price is None,
        "a relative stopLoss": sl is not None and sl.stop_price is None,
        "a trailing_stop stopLoss": sl is not None and sl.type == "trailing_stop",
        "a trailing_stop entry without stopPrice": (
            signal.order_type == "trailing_stop" and signal.stop_price is None
        ),
    }
    found = [name for name, present in sided.items() if present]
    if found:
        raise WebhookRejectedError(
            MessageCode.INVALID_PAYLOAD,
            f"An add takes the side of the open position, so {found[0]} (measured up or down "
            "from the price depending on the side) cannot be priced for it. Send absolute "
            "prices (takeProfit.limitPrice, stopLoss.stopPrice), or send buy/sell with the "
            "subscription allowing adds.",
        )


def check_not_for_exits(signal: Signal, data: dict[str, Any]) -> None:
    """Fields an exit, a flat or a cancel cannot honour are refused, never ignored."""
    what = "A cancel" if signal.action == "cancel" else "An exit (or sentiment flat)"
    entry_only = {
        "takeProfit": signal.take_profit is not None,
        "stopLoss": signal.stop_loss is not None,
        "orderType": signal.order_type != "market",
        "limitPrice": signal.limit_price is not None,
        "stopPrice": signal.stop_price is not None,
        "timeInForce": signal.time_in_force is not None,
        "cancel": signal.cancel is not None,
    }
    if signal.action != "cancel":
        entry_only["cancelOrderType"] = signal.cancel_order_type is not None
    sent = [name for name, present in entry_only.items() if present and name in data]
    if sent:
        how = (
            "cancels the ticker's working orders"
            if signal.action == "cancel"
            else "closes the position at market (liquidation, which also cancels the "
            "contract's working orders)"
        )
        raise WebhookRejectedError(
            MessageCode.INVALID_PAYLOAD,
            f"{what} {how}; {', '.join(sent)} cannot be used with it. Remove "
            f"{'it' if len(sent) == 1 else 'them'}.",
        )
