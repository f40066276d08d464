"""The bracket fields ``takeProfit`` and ``stopLoss``: objects of one absolute or relative
value each (and, for a stop loss, its type, limit and trail)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any, cast, get_args

from phalanx_common.events import StopLoss, StopLossType, TakeProfit
from phalanx_ingest.payload_values import one_of, positive_decimal
from phalanx_ingest.responses import MessageCode, WebhookRejectedError

__all__ = ["parse_stop_loss", "parse_take_profit"]

_STOP_LOSS_TYPES: tuple[str, ...] = get_args(StopLossType)


def parse_take_profit(value: Any) -> TakeProfit | None:
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


def parse_stop_loss(value: Any) -> StopLoss | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise WebhookRejectedError(
            MessageCode.INVALID_STOP_LOSS_VALUE_REQUIRED,
            "The stopLoss field must be an object with one of stopPrice, percent or amount, "
            'e.g. "stopLoss": {"type": "stop", "amount": 10}.',
        )
    loss = StopLoss(
        type=cast("StopLossType", _stop_loss_type(value)),
        stop_price=_bracket_number(
            value, "stopPrice", "stopLoss", MessageCode.INVALID_STOP_LOSS_STOP_PRICE
        ),
        percent=_bracket_number(
            value, "percent", "stopLoss", MessageCode.INVALID_STOP_LOSS_PERCENT
        ),
        amount=_bracket_number(value, "amount", "stopLoss", MessageCode.INVALID_STOP_LOSS_AMOUNT),
        limit_price=_bracket_number(
            value, "limitPrice", "stopLoss", MessageCode.INVALID_STOP_LOSS_LIMIT_PRICE
        ),
        trail_amount=_bracket_number(
            value, "trailAmount", "stopLoss", MessageCode.INVALID_STOP_LOSS_TRAIL_AMOUNT
        ),
        trail_percent=_bracket_number(
            value, "trailPercent", "stopLoss", MessageCode.INVALID_STOP_LOSS_TRAIL_PERCENT
        ),
    )
    _check_stop_levels(loss)
    if loss.type == "trailing_stop":
        _check_trail(loss)
    else:
        _check_fixed_stop(loss)
    return loss


def _stop_loss_type(value: dict[str, Any]) -> str:
    raw_type = value.get("type", "stop")
    return one_of(
        raw_type,
        _STOP_LOSS_TYPES,
        MessageCode.INVALID_STOP_LOSS_TYPE,
        f"The stopLoss.type {raw_type!r} is invalid. It must be one of: stop, stop_limit, "
        "trailing_stop.",
    )


def _check_stop_levels(loss: StopLoss) -> None:
    """Absolute or relative, not both; a limit price only, and always, with stop_limit."""
    stop_price, percent, amount = loss.stop_price, loss.percent, loss.amount
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
    if loss.limit_price is not None and loss.type != "stop_limit":
        raise WebhookRejectedError(
            MessageCode.INVALID_STOP_LOSS_LIMIT_PRICE,
            'stopLoss.limitPrice is only used with "type": "stop_limit". Remove it or change '
            "the type.",
        )
    if loss.type == "stop_limit" and loss.limit_price is None:
        raise WebhookRejectedError(
            MessageCode.INVALID_STOP_LOSS_LIMIT_PRICE,
            'A "stop_limit" stopLoss needs its limitPrice (the limit the stop turns into). Add '
            'stopLoss.limitPrice, or use "type": "stop".',
        )


def _check_trail(loss: StopLoss) -> None:
    """A trailing stop: exactly one of trailAmount and trailPercent."""
    if loss.trail_amount is not None and loss.trail_percent is not None:
        raise WebhookRejectedError(
            MessageCode.INVALID_STOP_LOSS_TRAIL_VALUE,
            "stopLoss has both trailAmount and trailPercent. Send only one of them.",
        )
    if loss.trail_amount is None and loss.trail_percent is None:
        raise WebhookRejectedError(
            MessageCode.INVALID_STOP_LOSS_TRAIL_VALUE_REQUIRED,
            'A "trailing_stop" stopLoss needs trailAmount or trailPercent.',
        )


def _check_fixed_stop(loss: StopLoss) -> None:
    """A stop or stop_limit: no trail, and a stop level (absolute or relative)."""
    if loss.trail_amount is not None or loss.trail_percent is not None:
        raise WebhookRejectedError(
            MessageCode.INVALID_STOP_LOSS_TRAIL_VALUE,
            'trailAmount and trailPercent are only used with "type": "trailing_stop".',
        )
    no_stop = loss.stop_price is None and loss.percent is None and loss.amount is None
    if no_stop and loss.type == "stop_limit":
        raise WebhookRejectedError(
            MessageCode.INVALID_STOP_LOSS_STOP_PRICE_REQUIRED,
            'A "stop_limit" stopLoss needs its stop: stopPrice (or a percent or amount), '
            "besides limitPrice.",
        )
    if no_stop:
        raise WebhookRejectedError(
            MessageCode.INVALID_STOP_LOSS_VALUE_REQUIRED,
            "stopLoss needs one of stopPrice, percent or amount, e.g. "
            '"stopLoss": {"type": "stop", "amount": 10}.',
        )


def _bracket_number(obj: dict[str, Any], name: str, parent: str, code: str) -> Decimal | None:
    value = obj.get(name)
    if value is None:
        return None
    return positive_decimal(
        value, code, f"The {parent}.{name} {value!r} is invalid. It must be a positive number."
    )
