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
:class:`~phalanx_ingest.responses.WebhookRejectedError` with TradersPost's ``messageCode``.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, cast, get_args

import msgspec

from phalanx_common.events import (
    MAX_DELAY_S,
    QuantityType,
    Sentiment,
    Signal,
    SignalAction,
    SignalOrderType,
    SignalTimeInForce,
    StopLoss,
    StopLossType,
    TakeProfit,
)
from phalanx_ingest.responses import MessageCode, WebhookRejectedError

__all__ = ["parse_signal", "parse_time_ns", "signal_to_payload"]

_ACTIONS: tuple[str, ...] = get_args(SignalAction)
_ORDER_TYPES: tuple[str, ...] = get_args(SignalOrderType)
_STOP_LOSS_TYPES: tuple[str, ...] = get_args(StopLossType)
_SENTIMENTS: dict[str, Sentiment] = {
    "bullish": "bullish",
    "long": "bullish",
    "bearish": "bearish",
    "short": "bearish",
    "flat": "flat",
}
_SENTIMENT_ACTIONS = ("buy", "sell")
_JSON_EXAMPLE = '{"ticker": "MNQ1!", "action": "buy", "quantity": 1}'

_decoder = msgspec.json.Decoder(float_hook=Decimal)

# Symbols as TradingView and brokers write them: MNQ1!, MNQ1!, CME_MINI:MNQ1!, ES.c.0, 6E/M.
_TICKER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9!._:/&-]{0,39}$")
_QUANTITY_TYPES: tuple[str, ...] = get_args(QuantityType)
# Known to TradersPost, but sized from equity or risk, which it does not support for futures.
_DYNAMIC_QUANTITY_TYPES = (
    "dollar_amount",
    "risk_dollar_amount",
    "risk_percent",
    "percent_of_equity",
    "amount_per_position",
    "risk_per_position",
)
_RISK_QUANTITY_TYPES = ("risk_dollar_amount", "risk_percent", "risk_per_position")
_TIME_IN_FORCE: tuple[str, ...] = get_args(SignalTimeInForce)
_MAX_DELAY_S = Decimal(MAX_DELAY_S)
_MAX_ID_LENGTH = 128
# How deep a body's objects and arrays may nest (a signal needs 3: body, bracket, extras):
# deeper ones could exhaust the recursion of whoever decodes the signal later (ADR-0115).
MAX_NESTING = 16
# Numbers on a sane scale only: 1e-9 .. 1e12 (a 6J tick is 5e-7; nothing trades in 1e12s), so
# no later arithmetic can overflow or lose the value.
_MIN_EXPONENT = -9
_MAX_EXPONENT = 12
_MAX_PRICE = Decimal(10) ** 8
_NOT_TRADOVATE_TIF = ("opg", "cls")
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
            "Your trade signal was empty. Send a JSON object such as " + _JSON_EXAMPLE + ".",
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
            + _JSON_EXAMPLE
            + " (check for trailing commas and curly quotes).",
        ) from None
    if data is None or data == {}:
        raise WebhookRejectedError(
            MessageCode.EMPTY_JSON,
            "Your trade signal was empty. Send a JSON object such as " + _JSON_EXAMPLE + ".",
        )
    if not isinstance(data, dict):
        raise WebhookRejectedError(
            MessageCode.MALFORMED_JSON,
            "The body must be a JSON object such as " + _JSON_EXAMPLE + ".",
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
    _check_quantity(signal)
    _check_prices(signal)
    if signal.action in _ENTRY_ACTIONS and signal.sentiment != "flat":
        _check_entry_prices(signal)
        _check_reference_price(signal)
        if signal.action == "add":
            _check_add_is_side_free(signal)
    else:
        _check_not_for_exits(signal, data)
    return signal


def _fields_of(data: dict[str, Any]) -> Signal:
    ticker = _parse_ticker(data)
    action = _parse_action(data)
    sentiment = _parse_sentiment(data, action)
    quantity = _parse_quantity(data)
    quantity_type = _parse_quantity_type(data, action, quantity)
    order_type = _parse_order_type(data)
    trail_amount, trail_percent = _parse_trail(data, order_type)
    limit_price = _optional_price(data, "limitPrice")
    stop_price = _optional_price(data, "stopPrice")
    signal_price = _optional_price(data, "signalPrice")
    if signal_price is None:
        signal_price = _optional_price(data, "price")
    return Signal(
        ticker=ticker,
        action=action,
        sentiment=sentiment,
        quantity=quantity,
        order_type=order_type,
        limit_price=limit_price,
        stop_price=stop_price,
        signal_price=signal_price,
        take_profit=_parse_take_profit(data.get("takeProfit")),
        stop_loss=_parse_stop_loss(data.get("stopLoss")),
        time=_optional_text(data.get("time")),
        interval=_optional_text(data.get("interval")),
        extras=data["extras"] if isinstance(data.get("extras"), dict) else None,
        test=data.get("test") is True,
        id=_parse_id(data),
        quantity_type=quantity_type,
        time_in_force=_parse_time_in_force(data),
        trail_amount=trail_amount,
        trail_percent=trail_percent,
        cancel=_optional_bool(data, "cancel"),
        cancel_order_type=_parse_cancel_order_type(data),
        delay_s=_parse_delay(data),
        ignore_trading_windows=_optional_bool(data, "ignoreTradingWindows"),
        expires_at=_parse_expires_at(data),
    )


# -- required fields ---------------------------------------------------------------------------


def _parse_ticker(data: dict[str, Any]) -> str:
    if "ticker" not in data or "action" not in data:
        raise WebhookRejectedError(
            MessageCode.INVALID_PAYLOAD,
            "The payload is invalid: both the ticker and action fields are required, e.g. "
            + _JSON_EXAMPLE
            + ".",
        )
    ticker = data["ticker"]
    if not isinstance(ticker, str):
        raise WebhookRejectedError(
            MessageCode.INVALID_PAYLOAD,
            'The ticker field must be a string such as "MNQ1!".',
        )
    ticker = ticker.strip()
    if not ticker:
        raise WebhookRejectedError(
            MessageCode.EMPTY_TICKER_NAME,
            'The ticker field is empty. Send a contract symbol such as "MNQ1!" '
            "(in TradingView, {{ticker}}).",
        )
    if not _TICKER.match(ticker):
        raise WebhookRejectedError(
            MessageCode.TICKER_DOES_NOT_EXIST,
            f"The ticker {ticker[:40]!r} cannot be a futures symbol. Send a contract symbol such "
            'as "MNQ1!" or "MNQ1!" (an unreplaced {{placeholder}} means the alert message '
            "was not filled in by TradingView).",
        )
    return ticker


def _parse_action(data: dict[str, Any]) -> SignalAction:
    value = data["action"]
    action = value.strip().lower() if isinstance(value, str) else None
    if action not in _ACTIONS:
        raise WebhookRejectedError(
            MessageCode.INVALID_ACTION,
            f"The action {value!r} is invalid. The action field must be one of: buy, sell, exit, "
            "cancel, add.",
        )
    return cast("SignalAction", action)


# -- optional fields ---------------------------------------------------------------------------


def _parse_sentiment(data: dict[str, Any], action: SignalAction) -> Sentiment | None:
    value = data.get("sentiment")
    if value is None:
        return None
    sentiment = _SENTIMENTS.get(value.strip().lower()) if isinstance(value, str) else None
    if sentiment is None:
        raise WebhookRejectedError(
            MessageCode.INVALID_SENTIMENT,
            f"The sentiment {value!r} is invalid. The sentiment field must be one of: bullish "
            "(or long), bearish (or short), flat.",
        )
    if action not in _SENTIMENT_ACTIONS:
        raise WebhookRejectedError(
            MessageCode.INVALID_SENTIMENT_ACTION,
            f"A sentiment can only be sent with action buy or sell, not {action}. Remove the "
            "sentiment field from this signal.",
        )
    return sentiment


def _parse_quantity(data: dict[str, Any]) -> Decimal | None:
    if data.get("quantity") is None:
        return None
    quantity = _decimal(data["quantity"])
    if quantity is None or quantity <= 0:
        raise WebhookRejectedError(
            MessageCode.INVALID_QUANTITY,
            f"The quantity {data['quantity']!r} is invalid. The quantity field must be a positive "
            "number (or left out to use the subscription's sizing).",
        )
    return quantity


def _parse_order_type(data: dict[str, Any]) -> SignalOrderType:
    value = data.get("orderType")
    if value is None:
        return "market"
    order_type = value.strip().lower() if isinstance(value, str) else None
    if order_type not in _ORDER_TYPES:
        raise WebhookRejectedError(
            MessageCode.INVALID_ORDER_TYPE,
            f"The orderType {value!r} is invalid. The orderType field must be one of: market, "
            "limit, stop, stop_limit, trailing_stop.",
        )
    return cast("SignalOrderType", order_type)


def _optional_price(data: dict[str, Any], name: str) -> Decimal | None:
    value = data.get(name)
    if value is None:
        return None
    price = _decimal(value)
    if price is None or price <= 0:
        raise WebhookRejectedError(
            MessageCode.INVALID_PAYLOAD,
            f"The {name} {value!r} is invalid. It must be a positive number.",
        )
    return price


def _optional_text(value: Any) -> str | None:
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, str | int | Decimal):
        return str(value)
    return None


def _parse_id(data: dict[str, Any]) -> str | None:
    value = data.get("id")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | Decimal):
        raise WebhookRejectedError(
            MessageCode.INVALID_PAYLOAD,
            "The id field must be a string (or a number) that identifies this alert, e.g. "
            '"{{strategy.order.id}}-{{timenow}}".',
        )
    text = str(value).strip()
    if not text or len(text) > _MAX_ID_LENGTH:
        raise WebhookRejectedError(
            MessageCode.INVALID_PAYLOAD,
            f"The id field must be 1 to {_MAX_ID_LENGTH} characters long (or left out).",
        )
    return text


def _parse_quantity_type(
    data: dict[str, Any], action: SignalAction, quantity: Decimal | None
) -> QuantityType | None:
    value = data.get("quantityType")
    if value is None:
        return None
    name = value.strip().lower() if isinstance(value, str) else None
    if name not in _QUANTITY_TYPES and name not in _DYNAMIC_QUANTITY_TYPES:
        raise WebhookRejectedError(
            MessageCode.INVALID_QUANTITY_TYPE,
            f"The quantityType {value!r} is invalid. For futures it must be fixed_quantity or "
            "percent_of_position.",
        )
    if action == "cancel":
        raise WebhookRejectedError(
            MessageCode.INVALID_QUANTITY_TYPE_ACTION,
            "A cancel signal has no quantity, so quantityType cannot be used with it. Remove "
            "quantityType.",
        )
    if quantity is None:
        raise WebhookRejectedError(
            MessageCode.QUANTITY_TYPE_REQUIRES_QUANTITY,
            f"quantityType {name} needs a quantity. Add a quantity field or remove quantityType.",
        )
    if name in _RISK_QUANTITY_TYPES and action == "exit":
        raise WebhookRejectedError(
            MessageCode.INVALID_RISK_DOLLAR_AMOUNT_ACTION,
            f"quantityType {name} sizes an entry by its risk; it cannot be used with an exit. "
            "Use percent_of_position or a fixed quantity.",
        )
    if name == "percent_of_position" and action != "exit":
        raise WebhookRejectedError(
            MessageCode.INVALID_PERCENT_OF_POSITION_ACTION,
            f"quantityType percent_of_position can only be used with action exit, not {action}.",
        )
    if name in _DYNAMIC_QUANTITY_TYPES:
        raise WebhookRejectedError(
            MessageCode.INVALID_QUANTITY_TYPE_FOR_ASSET_CLASS,
            f"quantityType {name} is not supported for futures (sizing from equity or risk). "
            "Send a number of contracts with fixed_quantity.",
        )
    if name == "percent_of_position" and quantity > 100:
        raise WebhookRejectedError(
            MessageCode.INVALID_QUANTITY,
            "With quantityType percent_of_position the quantity is a percent from 0 to 100.",
        )
    return cast("QuantityType", name)


def _parse_trail(
    data: dict[str, Any], order_type: SignalOrderType
) -> tuple[Decimal | None, Decimal | None]:
    raw_amount, raw_percent = data.get("trailAmount"), data.get("trailPercent")
    if order_type != "trailing_stop":
        if raw_amount is not None or raw_percent is not None:
            raise WebhookRejectedError(
                MessageCode.INVALID_TRAILING_STOP,
                'trailAmount and trailPercent are only used with "orderType": "trailing_stop".',
            )
        return None, None
    amount = None if raw_amount is None else _decimal(raw_amount)
    percent = None if raw_percent is None else _decimal(raw_percent)
    bad = (raw_amount is not None and (amount is None or amount <= 0)) or (
        raw_percent is not None and (percent is None or percent <= 0)
    )
    if bad or (amount is None) == (percent is None):
        raise WebhookRejectedError(
            MessageCode.INVALID_TRAILING_STOP,
            "A trailing_stop order needs exactly one of trailAmount or trailPercent, a "
            "positive number.",
        )
    return amount, percent


def _parse_time_in_force(data: dict[str, Any]) -> SignalTimeInForce | None:
    value = data.get("timeInForce")
    if value is None:
        return None
    name = value.strip().lower() if isinstance(value, str) else None
    if name not in _TIME_IN_FORCE:
        raise WebhookRejectedError(
            MessageCode.INVALID_TIME_IN_FORCE,
            f"The timeInForce {value!r} is invalid. It must be one of: day, gtc, opg, cls, ioc, "
            "fok.",
        )
    if name in _NOT_TRADOVATE_TIF:
        raise WebhookRejectedError(
            MessageCode.INVALID_TIME_IN_FORCE,
            f"timeInForce {name} (at the open/close auction) does not exist on Tradovate "
            "futures. Use day, gtc, ioc or fok.",
        )
    return cast("SignalTimeInForce", name)


def _optional_bool(data: dict[str, Any], name: str) -> bool | None:
    value = data.get(name)
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise WebhookRejectedError(
        MessageCode.INVALID_PAYLOAD,
        f"The {name} field must be true or false, not {value!r}.",
    )


def _parse_cancel_order_type(data: dict[str, Any]) -> str | None:
    value = data.get("cancelOrderType")
    if value is None:
        return None
    name = value.strip().lower() if isinstance(value, str) else None
    if name not in _ORDER_TYPES:
        raise WebhookRejectedError(
            MessageCode.INVALID_ORDER_TYPE,
            f"The cancelOrderType {value!r} is invalid. It must be one of: market, limit, stop, "
            "stop_limit, trailing_stop.",
        )
    return name


def _parse_delay(data: dict[str, Any]) -> Decimal | None:
    value = data.get("delay")
    if value is None:
        return None
    delay = _decimal(value)
    if delay is None or delay < 0 or delay > _MAX_DELAY_S:
        raise WebhookRejectedError(
            MessageCode.INVALID_PAYLOAD,
            f"The delay {value!r} is invalid. It must be a number of seconds from 0 to "
            f"{_MAX_DELAY_S}.",
        )
    return delay


def _parse_expires_at(data: dict[str, Any]) -> str | None:
    value = data.get("expiresAt")
    if value is None:
        return None
    if parse_time_ns(value) is None:
        raise WebhookRejectedError(
            MessageCode.INVALID_EXPIRES_AT,
            f"The expiresAt {value!r} is invalid. Send an ISO-8601 time such as "
            '"2025-06-18T14:35:00Z".',
        )
    return str(value)


def parse_time_ns(value: Any) -> int | None:
    """A signal time as ns since the epoch: ISO-8601 text (TradingView's ``{{timenow}}``) or
    epoch seconds / milliseconds; ``None`` if it is none of those."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | Decimal) or (isinstance(value, str) and value.strip().isdigit()):
        try:
            number = Decimal(str(value).strip())
        except InvalidOperation:
            return None
        if not number.is_finite() or number < 0 or number >= Decimal(10) ** 14:
            return None
        seconds = number / 1000 if number >= Decimal(10) ** 11 else number
        return int(seconds * 1_000_000_000)
    if not isinstance(value, str) or not 10 <= len(value.strip()) <= 40:
        return None
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    try:
        return int(moment.timestamp() * 1_000_000) * 1000
    except (OverflowError, OSError, ValueError):
        return None


# -- checks across fields ----------------------------------------------------------------------


def _check_quantity(signal: Signal) -> None:
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


def _check_prices(signal: Signal) -> None:
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


def _check_entry_prices(signal: Signal) -> None:
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


def _check_reference_price(signal: Signal) -> None:
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


def _check_add_is_side_free(signal: Signal) -> None:
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


def _check_not_for_exits(signal: Signal, data: dict[str, Any]) -> None:
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


# -- brackets ----------------------------------------------------------------------------------


def _parse_take_profit(value: Any) -> TakeProfit | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise WebhookRejectedError(
            MessageCode.INVALID_TAKE_PROFIT_VALUE_REQUIRED,
            "The takeProfit field must be an object with one of limitPrice, percent or amount, "
            'e.g. "takeProfit": {"amount": 20}.',
        )
    limit_price = _bracket_number(
        value, "limitPrice", "takeProfit", MessageCode.INVALID_TAKE_PROFIT_LIMIT_PRICE
    )
    percent = _bracket_number(
        value, "percent", "takeProfit", MessageCode.INVALID_TAKE_PROFIT_PERCENT
    )
    amount = _bracket_number(value, "amount", "takeProfit", MessageCode.INVALID_TAKE_PROFIT_AMOUNT)
    if limit_price is not None and (percent is not None or amount is not None):
        raise WebhookRejectedError(
            MessageCode.INVALID_TAKE_PROFIT_RELATIVE_AND_ABSOLUTE,
            "takeProfit has both an absolute limitPrice and a relative percent/amount. Send only "
            "one of limitPrice, percent or amount.",
        )
    if percent is not None and amount is not None:
        raise WebhookRejectedError(
            MessageCode.INVALID_TAKE_PROFIT_AMOUNT_AND_PERCENT,
            "takeProfit has both percent and amount. Send only one of them.",
        )
    if limit_price is None and percent is None and amount is None:
        raise WebhookRejectedError(
            MessageCode.INVALID_TAKE_PROFIT_VALUE_REQUIRED,
            "takeProfit needs one of limitPrice, percent or amount, e.g. "
            '"takeProfit": {"amount": 20}.',
        )
    return TakeProfit(limit_price=limit_price, percent=percent, amount=amount)


def _parse_stop_loss(value: Any) -> StopLoss | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise WebhookRejectedError(
            MessageCode.INVALID_STOP_LOSS_VALUE_REQUIRED,
            "The stopLoss field must be an object with one of stopPrice, percent or amount, "
            'e.g. "stopLoss": {"type": "stop", "amount": 10}.',
        )
    raw_type = value.get("type", "stop")
    sl_type = raw_type.strip().lower() if isinstance(raw_type, str) else None
    if sl_type not in _STOP_LOSS_TYPES:
        raise WebhookRejectedError(
            MessageCode.INVALID_STOP_LOSS_TYPE,
            f"The stopLoss.type {raw_type!r} is invalid. It must be one of: stop, stop_limit, "
            "trailing_stop.",
        )
    stop_price = _bracket_number(
        value, "stopPrice", "stopLoss", MessageCode.INVALID_STOP_LOSS_STOP_PRICE
    )
    percent = _bracket_number(value, "percent", "stopLoss", MessageCode.INVALID_STOP_LOSS_PERCENT)
    amount = _bracket_number(value, "amount", "stopLoss", MessageCode.INVALID_STOP_LOSS_AMOUNT)
    limit_price = _bracket_number(
        value, "limitPrice", "stopLoss", MessageCode.INVALID_STOP_LOSS_LIMIT_PRICE
    )
    trail_amount = _bracket_number(
        value, "trailAmount", "stopLoss", MessageCode.INVALID_STOP_LOSS_TRAIL_AMOUNT
    )
    trail_percent = _bracket_number(
        value, "trailPercent", "stopLoss", MessageCode.INVALID_STOP_LOSS_TRAIL_PERCENT
    )
    if stop_price is not None and (percent is not None or amount is not None):
        raise WebhookRejectedError(
            MessageCode.INVALID_STOP_LOSS_RELATIVE_AND_ABSOLUTE,
            "stopLoss has both an absolute stopPrice and a relative percent/amount. Send only "
            "one of stopPrice, percent or amount.",
        )
    if percent is not None and amount is not None:
        raise WebhookRejectedError(
            MessageCode.INVALID_STOP_LOSS_AMOUNT_AND_PERCENT,
            "stopLoss has both percent and amount. Send only one of them.",
        )
    if limit_price is not None and sl_type != "stop_limit":
        raise WebhookRejectedError(
            MessageCode.INVALID_STOP_LOSS_LIMIT_PRICE,
            'stopLoss.limitPrice is only used with "type": "stop_limit". Remove it or change '
            "the type.",
        )
    if sl_type == "stop_limit" and limit_price is None:
        raise WebhookRejectedError(
            MessageCode.INVALID_STOP_LOSS_LIMIT_PRICE,
            'A "stop_limit" stopLoss needs its limitPrice (the limit the stop turns into). Add '
            'stopLoss.limitPrice, or use "type": "stop".',
        )
    if sl_type == "trailing_stop":
        if trail_amount is not None and trail_percent is not None:
            raise WebhookRejectedError(
                MessageCode.INVALID_STOP_LOSS_TRAIL_VALUE,
                "stopLoss has both trailAmount and trailPercent. Send only one of them.",
            )
        if trail_amount is None and trail_percent is None:
            raise WebhookRejectedError(
                MessageCode.INVALID_STOP_LOSS_TRAIL_VALUE_REQUIRED,
                'A "trailing_stop" stopLoss needs trailAmount or trailPercent.',
            )
    else:
        if trail_amount is not None or trail_percent is not None:
            raise WebhookRejectedError(
                MessageCode.INVALID_STOP_LOSS_TRAIL_VALUE,
                'trailAmount and trailPercent are only used with "type": "trailing_stop".',
            )
        if stop_price is None and percent is None and amount is None and sl_type == "stop_limit":
            raise WebhookRejectedError(
                MessageCode.INVALID_STOP_LOSS_STOP_PRICE_REQUIRED,
                'A "stop_limit" stopLoss needs its stop: stopPrice (or a percent or amount), '
                "besides limitPrice.",
            )
        if stop_price is None and percent is None and amount is None:
            raise WebhookRejectedError(
                MessageCode.INVALID_STOP_LOSS_VALUE_REQUIRED,
                "stopLoss needs one of stopPrice, percent or amount, e.g. "
                '"stopLoss": {"type": "stop", "amount": 10}.',
            )
    return StopLoss(
        type=cast("StopLossType", sl_type),
        stop_price=stop_price,
        percent=percent,
        amount=amount,
        limit_price=limit_price,
        trail_amount=trail_amount,
        trail_percent=trail_percent,
    )


def _bracket_number(obj: dict[str, Any], name: str, parent: str, code: str) -> Decimal | None:
    value = obj.get(name)
    if value is None:
        return None
    number = _decimal(value)
    if number is None or number <= 0:
        raise WebhookRejectedError(
            code, f"The {parent}.{name} {value!r} is invalid. It must be a positive number."
        )
    return number


def _decimal(value: Any) -> Decimal | None:
    """A finite Decimal from a JSON number or numeric string; ``None`` if it is not one."""
    if isinstance(value, bool):
        return None
    if isinstance(value, Decimal):
        number = value
    elif isinstance(value, int):
        number = Decimal(value)
    elif isinstance(value, str):
        try:
            number = Decimal(value.strip())
        except InvalidOperation:
            return None
    else:
        return None
    if not number.is_finite():
        return None
    if number and not _MIN_EXPONENT <= number.adjusted() <= _MAX_EXPONENT:
        return None  # 1e999999999 or 1e-30: no price or quantity is on that scale
    return number


# -- echo --------------------------------------------------------------------------------------


def signal_to_payload(signal: Signal) -> dict[str, Any]:
    """The accepted signal in TradersPost field names, for the ``payload`` of the answer.

    Values are the normalised ones (``long`` comes back as ``bullish``; ``price`` as
    ``signalPrice``; ``orderType`` is always present); ``extras`` is returned as sent.
    """
    builtins: dict[str, Any] = msgspec.to_builtins(signal, builtin_types=(Decimal,))
    builtins["order_type"] = signal.order_type  # shown even when it is the default
    return {
        _RENAMED.get(key, _camel(key)): _camel_keys(val) if key != "extras" else val
        for key, val in builtins.items()
    }


_RENAMED = {"delay_s": "delay"}


def _camel_keys(value: Any) -> Any:
    if isinstance(value, dict):
        return {_camel(k): v for k, v in value.items()}
    return value


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)
