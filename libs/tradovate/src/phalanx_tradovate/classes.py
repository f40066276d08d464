"""Every Tradovate error in exactly one class: final, retryable or unknown (ADR-0055).

The executor derives what it does after a failed venue request from :func:`classify` alone:

- **final**: the venue refused and will refuse again; the intent ends with the broker's reason
  (e.g. ``Unauthorized`` / "Access is denied" for one account, ``SessionClosed``, a 400).
- **retryable**: the venue certainly did not act; the same request may go again, after a back-off
  and within a bound (penalty tickets, a busy risk check, an unreachable venue, a read that
  failed).
- **unknown**: the venue may have acted (a timeout, a dropped socket or a 5xx on an order);
  nothing is resent until the order is looked up by ``clOrdId``.

Independently of the class, a verdict may ask for the login's budget to be blocked: for
``p-time`` after a penalty, for the lockout length after HTTP 423/429.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from phalanx_tradovate.checks import is_read
from phalanx_tradovate.errors import (
    AuthError,
    ConnectionLost,
    LockoutError,
    OrderRejected,
    PenaltyError,
    ProtocolError,
    RequestTimeout,
    TradovateError,
    VenueError,
    VenueUnreachable,
)

__all__ = ["FAILURE_REASONS", "ErrorClass", "Verdict", "classify"]


class ErrorClass(StrEnum):
    """What a failed request means for the intent that sent it."""

    FINAL = "final"
    RETRYABLE = "retryable"
    UNKNOWN = "unknown"


FAILURE_REASONS: Final[dict[str, ErrorClass]] = {
    # The order can never succeed as sent, or the account may not trade it: final.
    "AccountClosed": ErrorClass.FINAL,
    "AdvancedTrailingStopUnsupported": ErrorClass.FINAL,
    "BackMonthProhibited": ErrorClass.FINAL,
    "ExecutionProviderNotConfigured": ErrorClass.FINAL,
    "InvalidContract": ErrorClass.FINAL,
    "InvalidPrice": ErrorClass.FINAL,
    "LiquidationOnly": ErrorClass.FINAL,
    "LiquidationOnlyBeforeExpiration": ErrorClass.FINAL,
    "MaxOrderQtyIsNotSpecified": ErrorClass.FINAL,
    "MaxOrderQtyLimitReached": ErrorClass.FINAL,
    "MaxPosLimitMisconfigured": ErrorClass.FINAL,
    "MaxPosLimitReached": ErrorClass.FINAL,
    "MaxTotalPosLimitReached": ErrorClass.FINAL,
    "MultipleAccountPlanRequired": ErrorClass.FINAL,
    "NotEnoughLiquidity": ErrorClass.FINAL,
    "OtherExecutionRelated": ErrorClass.FINAL,
    "ParentRejected": ErrorClass.FINAL,
    "SessionClosed": ErrorClass.FINAL,
    "TooLate": ErrorClass.FINAL,
    "TradingLocked": ErrorClass.FINAL,
    "TrailingStopNonOrderQtyModify": ErrorClass.FINAL,
    "Unauthorized": ErrorClass.FINAL,
    "UnknownReason": ErrorClass.FINAL,
    "Unsupported": ErrorClass.FINAL,
    "Violation": ErrorClass.FINAL,  # ``violations`` in the body (phalanx_tradovate.checks)
    # Nothing was placed and the cause passes: the same order may go again, a few times.
    "AnotherCommandPending": ErrorClass.RETRYABLE,
    "ExecutionProviderUnavailable": ErrorClass.RETRYABLE,
    "NoQuote": ErrorClass.RETRYABLE,
    "RiskCheckTimeout": ErrorClass.RETRYABLE,
}
"""Tradovate's ``failureReason`` values (the API's enum, plus ``Violation``) and their class.

A reason missing here is final: the venue said no, and repeating an unknown refusal spends the
login's budget for nothing."""


@dataclass(frozen=True)
class Verdict:
    """The class of one error and what the login's budget must do about it.

    Attributes:
        cls: final, retryable or unknown.
        reason: a short, stable reason for records and events (the broker's ``failureReason``
            where there is one).
        text: the venue's own words.
        block_s: block the login's budget this long (0: no block).
        ticket: resend with this ``p-ticket`` once the block has passed (penalties only).
    """

    cls: ErrorClass
    reason: str
    text: str = ""
    block_s: float = 0.0
    ticket: str | None = None


def classify(exc: TradovateError, *, lockout_s: float = 3600.0) -> Verdict:
    """The verdict on one error raised by :mod:`phalanx_tradovate` (ADR-0055's table)."""
    text = str(exc)
    if isinstance(exc, PenaltyError):
        return _penalty(exc, text, lockout_s)
    if isinstance(exc, LockoutError):
        return Verdict(ErrorClass.FINAL, "venue-lockout", text, block_s=lockout_s)
    if isinstance(exc, OrderRejected):
        cls = FAILURE_REASONS.get(exc.failure_reason, ErrorClass.FINAL)
        return Verdict(cls, exc.failure_reason, exc.failure_text or text)
    if isinstance(exc, AuthError):
        return _auth(exc)
    if isinstance(exc, VenueUnreachable):
        return Verdict(ErrorClass.RETRYABLE, "venue-unreachable", text)
    if isinstance(exc, RequestTimeout | ConnectionLost):
        if exc.retry_safe:  # never sent, or a read: nothing happened at the venue
            return Verdict(ErrorClass.RETRYABLE, "not-sent", text)
        return Verdict(ErrorClass.UNKNOWN, type(exc).__name__, text)
    if isinstance(exc, VenueError):
        return _http(exc, text)
    return _other(exc, text)


def _penalty(exc: PenaltyError, text: str, lockout_s: float) -> Verdict:
    if exc.captcha:  # a person must solve it; block as for a lockout
        return Verdict(ErrorClass.FINAL, "venue-captcha", text, block_s=lockout_s)
    return Verdict(
        ErrorClass.RETRYABLE, "venue-penalty", text, block_s=exc.time_s, ticket=exc.ticket
    )


def _auth(exc: AuthError) -> Verdict:
    if exc.endpoint == "authorize" or exc.endpoint.startswith("auth/"):
        # the token or the credentials: nothing was done; the pool reconnects with the
        # token auth renews (a bad token is a login problem, not the order's)
        return Verdict(ErrorClass.RETRYABLE, "token-refused", exc.text)
    # "Access is denied" for a request on an authorized socket: this account, for good
    return Verdict(ErrorClass.FINAL, "access-denied", exc.text)


def _http(exc: VenueError, text: str) -> Verdict:
    if is_read(exc.endpoint):
        return Verdict(ErrorClass.RETRYABLE, f"http-{exc.status}", text)
    if exc.status >= 500:  # the order may have been placed before the failure
        return Verdict(ErrorClass.UNKNOWN, f"http-{exc.status}", text)
    # 400 (malformed), 404, or errorText in a 200: the venue refused the request
    return Verdict(ErrorClass.FINAL, f"venue-error-{exc.status}", exc.text or text)


def _other(exc: TradovateError, text: str) -> Verdict:
    if isinstance(exc, ProtocolError):
        if is_read(exc.endpoint):
            return Verdict(ErrorClass.RETRYABLE, "protocol-error", text)
        return Verdict(ErrorClass.UNKNOWN, "protocol-error", text)
    if exc.retry_safe:
        return Verdict(ErrorClass.RETRYABLE, type(exc).__name__, text)
    return Verdict(ErrorClass.UNKNOWN, type(exc).__name__, text)
