"""Every check of Tradovate's failure shapes, shared by the REST and WebSocket clients.

HTTP 200 does not mean success (docs/tradovate-protocol.md §5, §7.2): a body may carry a penalty
ticket, ``errorText``, ``failureReason``/``failureText`` or ``violations``.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Final

from phalanx_tradovate.errors import (
    AuthError,
    LockoutError,
    OrderRejected,
    PenaltyError,
    VenueError,
)

__all__ = ["READ_OPERATIONS", "is_read", "raise_for_payload", "raise_for_status"]

READ_OPERATIONS: Final = frozenset(
    {"list", "item", "items", "find", "deps", "ldeps", "suggest", "me", "syncrequest"}
)
"""Last path segments of endpoints that change nothing at the venue (safe to repeat)."""


def is_read(endpoint: str) -> bool:
    """Whether ``endpoint`` only reads, so repeating it after an unknown outcome is safe."""
    return endpoint.rstrip("/").rsplit("/", 1)[-1].lower() in READ_OPERATIONS


def _text(data: Any) -> str:
    if data is None:
        return ""
    if isinstance(data, str):
        return data.strip().strip('"')
    if isinstance(data, dict):
        for key in ("errorText", "failureText", "message", "text"):
            if data.get(key):
                return str(data[key])
    return str(data)


def raise_for_status(endpoint: str, status: int, data: Any) -> None:
    """Raise the typed error for a non-success HTTP status or WS ``s``.

    Raises:
        AuthError: 401/403.
        LockoutError: 423/429.
        VenueError: any other status outside 2xx (retry-safe only for reads).
    """
    if 200 <= status < 300:
        return
    text = _text(data)
    if status in (401, 403):
        raise AuthError(text or "Access is denied", endpoint=endpoint, status=status)
    if status in (423, 429):
        raise LockoutError(status, text, endpoint=endpoint)
    raise VenueError(status, text, endpoint=endpoint, retry_safe=is_read(endpoint))


def _penalty_time(value: Any) -> float:
    if isinstance(value, int | float | Decimal):
        return float(value)
    try:
        return float(str(value))
    except ValueError:
        return 0.0


def raise_for_payload(endpoint: str, data: Any) -> None:
    """Raise the typed error for a failure carried in a successful (200) response body.

    Raises:
        PenaltyError: ``p-ticket`` in the body (with ``captcha`` from ``p-captcha``).
        AuthError: "Access is denied", or ``errorText`` from an ``auth/...`` endpoint.
        OrderRejected: ``failureReason`` other than ``Success``, or ``violations``.
        VenueError: ``errorText`` from any other endpoint.
    """
    if isinstance(data, str):
        if "access is denied" in data.lower():
            raise AuthError(_text(data), endpoint=endpoint, status=200)
        return
    if not isinstance(data, dict):
        return
    if "p-ticket" in data:
        raise PenaltyError(
            str(data["p-ticket"]),
            _penalty_time(data.get("p-time", 0)),
            bool(data.get("p-captcha", False)),
            endpoint=endpoint,
        )
    reason = data.get("failureReason")
    if reason and reason != "Success":
        raise OrderRejected(str(reason), str(data.get("failureText") or ""), endpoint=endpoint)
    violations = data.get("violations")
    if violations:
        raise OrderRejected("Violation", str(violations), endpoint=endpoint)
    error_text = data.get("errorText")
    if error_text:
        if endpoint.lstrip("/").lower().startswith("auth/"):
            raise AuthError(str(error_text), endpoint=endpoint, status=200)
        raise VenueError(200, str(error_text), endpoint=endpoint, retry_safe=is_read(endpoint))
