"""The webhook's single fields, one small parser each (``ticker`` … ``expiresAt``).

Each raises :class:`~phalanx_ingest.responses.WebhookRejectedError` with TradersPost's
``messageCode`` for a value it cannot honour; checks that need several fields at once are
:mod:`phalanx_ingest.payload_checks`, the brackets :mod:`phalanx_ingest.payload_brackets`.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any, cast, get_args

from phalanx_common.events import (
    MAX_DELAY_S,
    QuantityType,
    Sentiment,
    SignalAction,
    SignalOrderType,
    SignalTimeInForce,
)
from phalanx_ingest.payload_values import one_of, parse_time_ns, positive_decimal, to_decimal
from phalanx_ingest.responses import MessageCode, WebhookRejectedError

__all__ = [
    "JSON_EXAMPLE",
    "optional_bool",
    "optional_price",
    "optional_text",
    "parse_action",
    "parse_cancel_order_type",
    "parse_delay",
    "parse_expires_at",
    "parse_id",
    "parse_order_type",
    "parse_quantity",
    "parse_quantity_type",
    "parse_sentiment",
    "parse_ticker",
    "parse_time_in_force",
    "parse_trail",
]

_ACTIONS: tuple[str, ...] = get_args(SignalAction)
_ORDER_TYPES: tuple[str, ...] = get_args(SignalOrderType)
_SENTIMENTS: dict[str, Sentiment] = {
    "bullish": "bullish",
    "long": "bullish",
    "bearish": "bearish",
    "short": "bearish",
    "flat": "flat",
}
_SENTIMENT_ACTIONS = ("buy", "sell")
JSON_EXAMPLE = '{"ticker": "MNQ1!", "action": "buy", "quantity": 1}'

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
_NOT_TRADOVATE_TIF = ("opg", "cls")


# -- required fields ---------------------------------------------------------------------------


def parse_ticker(data: dict[str, Any]) -> str:
    if "ticker" not in data or "action" not in data:
        raise WebhookRejectedError(
            MessageCode.INVALID_PAYLOAD,
            "The payload is invalid: both the ticker and action fields are required, e.g. "
            + JSON_EXAMPLE
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


def parse_action(data: dict[str, Any]) -> SignalAction:
    value = data["action"]
    action = one_of(
        value,
        _ACTIONS,
        MessageCode.INVALID_ACTION,
        f"The action {value!r} is invalid. The action field must be one of: buy, sell, exit, "
        "cancel, add.",
    )
    return cast("SignalAction", action)


# -- optional fields ---------------------------------------------------------------------------


def parse_sentiment(data: dict[str, Any], action: SignalAction) -> Sentiment | None:
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


def parse_quantity(data: dict[str, Any]) -> Decimal | None:
    if data.get("quantity") is None:
        return None
    return positive_decimal(
        data["quantity"],
        MessageCode.INVALID_QUANTITY,
        f"The quantity {data['quantity']!r} is invalid. The quantity field must be a positive "
        "number (or left out to use the subscription's sizing).",
    )


def parse_order_type(data: dict[str, Any]) -> SignalOrderType:
    value = data.get("orderType")
    if value is None:
        return "market"
    order_type = one_of(
        value,
        _ORDER_TYPES,
        MessageCode.INVALID_ORDER_TYPE,
        f"The orderType {value!r} is invalid. The orderType field must be one of: market, "
        "limit, stop, stop_limit, trailing_stop.",
    )
    return cast("SignalOrderType", order_type)


def optional_price(data: dict[str, Any], name: str) -> Decimal | None:
    value = data.get(name)
    if value is None:
        return None
    return positive_decimal(
        value,
        MessageCode.INVALID_PAYLOAD,
        f"The {name} {value!r} is invalid. It must be a positive number.",
    )


def optional_text(value: Any) -> str | None:
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, str | int | Decimal):
        return str(value)
    return None


def parse_id(data: dict[str, Any]) -> str | None:
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


def parse_quantity_type(
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


def parse_trail(
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
    amount = None if raw_amount is None else to_decimal(raw_amount)
    percent = None if raw_percent is None else to_decimal(raw_percent)
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


def parse_time_in_force(data: dict[str, Any]) -> SignalTimeInForce | None:
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


def optional_bool(data: dict[str, Any], name: str) -> bool | None:
    value = data.get(name)
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise WebhookRejectedError(
        MessageCode.INVALID_PAYLOAD,
        f"The {name} field must be true or false, not {value!r}.",
    )


def parse_cancel_order_type(data: dict[str, Any]) -> str | None:
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


def parse_delay(data: dict[str, Any]) -> Decimal | None:
    value = data.get("delay")
    if value is None:
        return None
    delay = to_decimal(value)
    if delay is None or delay < 0 or delay > _MAX_DELAY_S:
        raise WebhookRejectedError(
            MessageCode.INVALID_PAYLOAD,
            f"The delay {value!r} is invalid. It must be a number of seconds from 0 to "
            f"{_MAX_DELAY_S}.",
        )
    return delay


def parse_expires_at(data: dict[str, Any]) -> str | None:
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
