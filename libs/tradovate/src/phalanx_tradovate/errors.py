"""Typed Tradovate errors, each saying whether repeating the request is safe.

``retry_safe`` answers one question: "could resending this exact request act twice at the venue?"
It is ``True`` only when the venue certainly did not act (penalty ticket, lockout, refused
connection, rejected order) or the request is a read. An unknown outcome (timeout, dropped
connection, 5xx on an order) is never retry-safe for order placement: reconcile by ``clOrdId``
first (ADR-0006, ADR-0055).
"""

from __future__ import annotations

__all__ = [
    "AuthError",
    "ConnectionLost",
    "LockoutError",
    "OrderRejected",
    "PenaltyError",
    "ProtocolError",
    "RequestTimeout",
    "TradovateError",
    "VenueError",
    "VenueUnreachable",
]


class TradovateError(Exception):
    """Base of every error raised by :mod:`phalanx_tradovate`.

    Attributes:
        retry_safe: whether resending the same request cannot make the venue act twice.
        endpoint: the endpoint called (``order/placeoso``), when known.
    """

    retry_safe: bool = False

    def __init__(self, message: str, *, endpoint: str = "", retry_safe: bool | None = None) -> None:
        super().__init__(f"{endpoint}: {message}" if endpoint else message)
        self.endpoint = endpoint
        if retry_safe is not None:
            self.retry_safe = retry_safe


class AuthError(TradovateError):
    """Credentials or token refused: ``errorText`` in a 200, HTTP/WS 401, "Access is denied".

    Not retry-safe as-is: the same credentials or token will be refused again.
    """

    retry_safe = False

    def __init__(self, text: str, *, endpoint: str = "", status: int | None = None) -> None:
        super().__init__(text, endpoint=endpoint)
        self.text = text
        self.status = status


class PenaltyError(TradovateError):
    """A time penalty (``p-ticket``): the request was not handled.

    Resend the same body plus ``"p-ticket": ticket`` after ``time_s`` seconds. With
    ``captcha=True`` a program cannot complete it: wait about an hour and tell a person.
    """

    def __init__(
        self, ticket: str, time_s: float, captcha: bool = False, *, endpoint: str = ""
    ) -> None:
        what = "captcha required" if captcha else f"retry with the ticket after {time_s:g}s"
        super().__init__(f"time penalty ({what})", endpoint=endpoint, retry_safe=not captcha)
        self.ticket = ticket
        self.time_s = time_s
        self.captcha = captcha


class LockoutError(TradovateError):
    """HTTP 423 (about to be locked out) or 429 / WS ``s=429`` (locked out for a rolling hour).

    The request was not handled, but every further call extends the lockout: stop the whole key.
    """

    retry_safe = True

    def __init__(self, status: int, text: str = "", *, endpoint: str = "") -> None:
        super().__init__(f"lockout (HTTP {status}) {text}".rstrip(), endpoint=endpoint)
        self.status = status
        self.text = text


class OrderRejected(TradovateError):
    """The venue refused the order (``failureReason``/``failureText`` or ``violations``)."""

    retry_safe = True

    def __init__(self, failure_reason: str, failure_text: str = "", *, endpoint: str = "") -> None:
        super().__init__(f"rejected: {failure_reason} {failure_text}".rstrip(), endpoint=endpoint)
        self.failure_reason = failure_reason
        self.failure_text = failure_text


class RequestTimeout(TradovateError):
    """No answer in time: the outcome is unknown (not retry-safe for order placement)."""


class ConnectionLost(TradovateError):
    """The connection dropped while the request was in flight: the outcome is unknown."""


class VenueUnreachable(TradovateError):
    """The venue could not be reached at all (connection refused, DNS): nothing was sent."""

    retry_safe = True


class VenueError(TradovateError):
    """Any other non-success status (5xx, 404 ...); ``text`` is the venue's message."""

    def __init__(
        self, status: int, text: str = "", *, endpoint: str = "", retry_safe: bool = False
    ) -> None:
        super().__init__(f"HTTP {status} {text}".rstrip(), endpoint=endpoint, retry_safe=retry_safe)
        self.status = status
        self.text = text


class ProtocolError(TradovateError):
    """The venue answered something this client cannot parse."""
