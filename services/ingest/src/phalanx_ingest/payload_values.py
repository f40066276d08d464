"""Numbers and times in a webhook body: exact decimals on a sane scale, signal times in ns."""

from __future__ import annotations

from collections.abc import Collection
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from phalanx_ingest.responses import WebhookRejectedError

__all__ = ["one_of", "parse_time_ns", "positive_decimal", "to_decimal"]

# Numbers on a sane scale only: 1e-9 .. 1e12 (a 6J tick is 5e-7; nothing trades in 1e12s), so
# no later arithmetic can overflow or lose the value.
_MIN_EXPONENT = -9
_MAX_EXPONENT = 12


def to_decimal(value: Any) -> Decimal | None:
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


def one_of(value: Any, allowed: Collection[str], code: str, text: str) -> str:
    """``value`` trimmed and lower-cased, if it is one of ``allowed``.

    Raises:
        WebhookRejectedError: ``code`` and ``text`` otherwise (or if it is not a string).
    """
    choice = value.strip().lower() if isinstance(value, str) else None
    if choice is None or choice not in allowed:
        raise WebhookRejectedError(code, text)
    return choice


def positive_decimal(value: Any, code: str, text: str) -> Decimal:
    """``value`` as a positive Decimal on a sane scale (:func:`to_decimal`).

    Raises:
        WebhookRejectedError: ``code`` and ``text`` otherwise.
    """
    number = to_decimal(value)
    if number is None or number <= 0:
        raise WebhookRejectedError(code, text)
    return number
