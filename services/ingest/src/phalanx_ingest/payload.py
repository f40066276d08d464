"""Parse a TradersPost-style webhook body into a :class:`phalanx_common.events.Signal`.

Field names follow TradersPost (``ticker``, ``action``, ``sentiment``, ``quantity``,
``quantityType``, ``orderType``, ``limitPrice``, ``stopPrice``, ``trailAmount``/``trailPercent``,
``timeInForce``, ``price``/``signalPrice``, ``takeProfit``, ``stopLoss``, ``time``, ``interval``,
``cancel``, ``cancelOrderType``, ``delay``, ``ignoreTradingWindows``, ``expiresAt``, ``extras``,
``test``, plus Phalanx's optional ``id``) and are case-sensitive; unknown fields are ignored
(options/stocks fields such as ``extendedHours`` too). Enumerated values are matched
case-insensitively (``"BUY"`` is ``buy``), and ``long``/``short`` are accepted for
``bullish``/``bearish`` as TradersPost's own example does. Numbers keep the exact decimal text
that was sent (``1.10`` stays ``Decimal("1.10")``); a number sent as a string (``"2"``, common
with quoted TradingView placeholders) is accepted too.

Each field group has its own small parser raising
:class:`~phalanx_ingest.responses.WebhookRejectedError` with TradersPost's ``messageCode``:
single fields in :mod:`~phalanx_ingest.payload_fields`, brackets in
:mod:`~phalanx_ingest.payload_brackets`, checks across fields in
:mod:`~phalanx_ingest.payload_checks`, numbers and times in :mod:`~phalanx_ingest.payload_values`;
the echo of an accepted signal is :mod:`~phalanx_ingest.payload_echo`. This module composes them.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import msgspec

from phalanx_common.events import Signal
from phalanx_ingest.payload_brackets import parse_stop_loss, parse_take_profit
from phalanx_ingest.payload_checks import (
    check_add_is_side_free,
    check_entry_prices,
    check_not_for_exits,
    check_prices,
    check_quantity,
    check_reference_price,
)
from phalanx_ingest.payload_echo import signal_to_payload
from phalanx_ingest.payload_fields import (
    JSON_EXAMPLE,
    optional_bool,
    optional_price,
    optional_text,
    parse_action,
    parse_cancel_order_type,
    parse_delay,
    parse_expires_at,
    parse_id,
    parse_order_type,
    parse_quantity,
    parse_quantity_type,
    parse_sentiment,
    parse_ticker,
    parse_time_in_force,
    parse_trail,
)
from phalanx_ingest.payload_values import parse_time_ns
from phalanx_ingest.responses import MessageCode, WebhookRejectedError

__all__ = ["MAX_NESTING", "parse_signal", "parse_time_ns", "signal_to_payload"]

_decoder = msgspec.json.Decoder(float_hook=Decimal)

# How deep a body's objects and arrays may nest (a signal needs 3: body, bracket, extras):
# deeper ones could exhaust the recursion of whoever decodes the signal later (ADR-0115).
MAX_NESTING = 16
_ENTRY_ACTIONS = ("buy", "sell", "add")


def parse_signal(body: bytes) -> Signal:
    """Validate a webhook body and return the normalised signal.

    Args:
        body: The raw request body, exactly as received.

    Raises:
        WebhookRejectedError: with the TradersPost ``messageCode`` of the first problem found.
    """
    if not body.strip():
        raise WebhookRejectedError(
            MessageCode.EMPTY_JSON,
            "Your trade signal was empty. Send a JSON object such as " + JSON_EXAMPLE + ".",
        )
    try:
        data = _decoder.decode(body)
    except RecursionError:
        raise _too_deep() from None
    except msgspec.DecodeError:
        raise WebhookRejectedError(
            MessageCode.MALFORMED_JSON,
            "The body could not be parsed as JSON. If this came from TradingView, the alert "
            "message is plain text: replace it with a JSON object such as "
            + JSON_EXAMPLE
            + " (check for trailing commas and curly quotes).",
        ) from None
    if data is None or data == {}:
        raise WebhookRejectedError(
            MessageCode.EMPTY_JSON,
            "Your trade signal was empty. Send a JSON object such as " + JSON_EXAMPLE + ".",
        )
    if not isinstance(data, dict):
        raise WebhookRejectedError(
            MessageCode.MALFORMED_JSON,
            "The body must be a JSON object such as " + JSON_EXAMPLE + ".",
        )
    if _nesting(data) > MAX_NESTING:
        raise _too_deep()
    return _signal_from(data)


def _too_deep() -> WebhookRejectedError:
    return WebhookRejectedError(
        MessageCode.INVALID_PAYLOAD,
        f"The body nests objects or arrays more than {MAX_NESTING} levels deep; a signal "
        "needs three. Nothing was traded.",
    )


def _nesting(value: Any) -> int:
    """How deep objects and arrays nest in ``value`` (1 for a flat object), without recursion."""
    deepest = 0
    pending: list[tuple[Any, int]] = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        deepest = max(deepest, depth)
        if depth > MAX_NESTING:
            return depth
        pending.extend((child, depth + 1) for child in children)
    return deepest


def _signal_from(data: dict[str, Any]) -> Signal:
    signal = _fields_of(data)
    check_quantity(signal)
    check_prices(signal)
    if signal.action in _ENTRY_ACTIONS and signal.sentiment != "flat":
        check_entry_prices(signal)
        check_reference_price(signal)
        if signal.action == "add":
            check_add_is_side_free(signal)
    else:
        check_not_for_exits(signal, data)
    return signal


def _fields_of(data: dict[str, Any]) -> Signal:
    ticker = parse_ticker(data)
    action = parse_action(data)
    sentiment = parse_sentiment(data, action)
    quantity = parse_quantity(data)
    quantity_type = parse_quantity_type(data, action, quantity)
    order_type = parse_order_type(data)
    trail_amount, trail_percent = parse_trail(data, order_type)
    limit_price = optional_price(data, "limitPrice")
    stop_price = optional_price(data, "stopPrice")
    signal_price = optional_price(data, "signalPrice")
    if signal_price is None:
        signal_price = optional_price(data, "price")
    return Signal(
        ticker=ticker,
        action=action,
        sentiment=sentiment,
        quantity=quantity,
        order_type=order_type,
        limit_price=limit_price,
        stop_price=stop_price,
        signal_price=signal_price,
        take_profit=parse_take_profit(data.get("takeProfit")),
        stop_loss=parse_stop_loss(data.get("stopLoss")),
        time=optional_text(data.get("time")),
        interval=optional_text(data.get("interval")),
        extras=data["extras"] if isinstance(data.get("extras"), dict) else None,
        test=data.get("test") is True,
        id=parse_id(data),
        quantity_type=quantity_type,
        time_in_force=parse_time_in_force(data),
        trail_amount=trail_amount,
        trail_percent=trail_percent,
        cancel=optional_bool(data, "cancel"),
        cancel_order_type=parse_cancel_order_type(data),
        delay_s=parse_delay(data),
        ignore_trading_windows=optional_bool(data, "ignoreTradingWindows"),
        expires_at=parse_expires_at(data),
    )
