"""TradersPost-shaped webhook answers: the ``messageCode`` vocabulary and the JSON bodies.

Success is ``{"success": true, "id", "logId", "payload", "trace_id"}``; every refusal is
``{"success": false, "messageCode", "message"}`` where ``message`` is a sentence a person can act
on. The codes are TradersPost's (its published ``webhook-spec.json``), plus ``not-found`` (its
404 body) and ``too-many-requests`` (its 429 body), and Phalanx's own codes for what TradersPost
does not do (``service-unavailable``, ``payload-too-large``, signatures, freshness, timeouts).
"""

from __future__ import annotations

from typing import Any

import msgspec
from fastapi import status
from fastapi.responses import Response

from phalanx_common.errors import PhalanxError

__all__ = [
    "MessageCode",
    "WebhookRejectedError",
    "accepted_response",
    "rejected_response",
]

_encoder = msgspec.json.Encoder(decimal_format="number")


class MessageCode:
    """The ``messageCode`` values ingest answers with."""

    POST_REQUIRED = "post-required"
    EMPTY_JSON = "empty-json"
    MALFORMED_JSON = "malformed-json"
    INVALID_PAYLOAD = "invalid-payload"
    INVALID_ACTION = "invalid-action"
    INVALID_SENTIMENT = "invalid-sentiment"
    INVALID_SENTIMENT_ACTION = "invalid-sentiment-action"
    INVALID_ORDER_TYPE = "invalid-order-type"
    EMPTY_TICKER_NAME = "empty-ticker-name"
    UNSUPPORTED_TICKER = "unsupported-ticker"
    INVALID_PASSWORD = "invalid-password"  # noqa: S105 - a code name, not a password
    INVALID_QUANTITY = "invalid-quantity"
    INVALID_TAKE_PROFIT_PERCENT = "invalid-take-profit-percent"
    INVALID_TAKE_PROFIT_AMOUNT = "invalid-take-profit-amount"
    INVALID_TAKE_PROFIT_LIMIT_PRICE = "invalid-take-profit-limit-price"
    INVALID_TAKE_PROFIT_AMOUNT_AND_PERCENT = "invalid-take-profit-amount-and-percent"
    INVALID_TAKE_PROFIT_RELATIVE_AND_ABSOLUTE = "invalid-take-profit-relative-and-absolute"
    INVALID_TAKE_PROFIT_VALUE_REQUIRED = "invalid-take-profit-value-required"
    INVALID_STOP_LOSS_TYPE = "invalid-stop-loss-type"
    INVALID_STOP_LOSS_PERCENT = "invalid-stop-loss-percent"
    INVALID_STOP_LOSS_AMOUNT = "invalid-stop-loss-amount"
    INVALID_STOP_LOSS_STOP_PRICE = "invalid-stop-loss-stop-price"
    INVALID_STOP_LOSS_LIMIT_PRICE = "invalid-stop-loss-limit-price"
    INVALID_STOP_LOSS_TRAIL_AMOUNT = "invalid-stop-loss-trail-amount"
    INVALID_STOP_LOSS_TRAIL_PERCENT = "invalid-stop-loss-trail-percent"
    INVALID_STOP_LOSS_TRAIL_VALUE = "invalid-stop-loss-trail-value"
    INVALID_STOP_LOSS_TRAIL_VALUE_REQUIRED = "invalid-stop-loss-trail-value-required"
    INVALID_STOP_LOSS_AMOUNT_AND_PERCENT = "invalid-stop-loss-amount-and-percent"
    INVALID_STOP_LOSS_RELATIVE_AND_ABSOLUTE = "invalid-stop-loss-relative-and-absolute"
    INVALID_STOP_LOSS_VALUE_REQUIRED = "invalid-stop-loss-value-required"
    INVALID_TRAILING_STOP = "invalid-trailing-stop"
    TICKER_DOES_NOT_EXIST = "ticker-does-not-exist"
    INVALID_QUANTITY_TYPE = "invalid-quantity-type"
    INVALID_QUANTITY_TYPE_ACTION = "invalid-quantity-type-action"
    INVALID_RISK_DOLLAR_AMOUNT_ACTION = "invalid-risk-dollar-amount-action"
    INVALID_PERCENT_OF_POSITION_ACTION = "invalid-percent-of-position-action"
    QUANTITY_TYPE_REQUIRES_QUANTITY = "quantity-type-requires-quantity"
    INVALID_QUANTITY_TYPE_FOR_ASSET_CLASS = "invalid-quantity-type-for-asset-class"
    INVALID_TIME_IN_FORCE = "invalid-time-in-force"
    INVALID_STOP_LOSS_STOP_PRICE_REQUIRED = "invalid-stop-loss-stop-price-required"
    INVALID_EXPIRES_AT = "invalid-expires-at"
    NOT_TRADING_VIEW = "not-trading-view"
    INVALID_IP_ADDRESS = "invalid-ip-address"
    INVALID_IP_ADDRESS_FORMAT = "invalid-ip-address-format"
    TOO_MANY_REQUESTS = "too-many-requests"
    NOT_FOUND = "not-found"
    # Phalanx's own (TradersPost has no equivalent):
    INVALID_TIME = "invalid-time"
    SIGNAL_TOO_OLD = "signal-too-old"
    SIGNATURE_REQUIRED = "signature-required"
    INVALID_SIGNATURE = "invalid-signature"
    SIGNATURE_EXPIRED = "signature-expired"
    REQUEST_TIMEOUT = "request-timeout"
    PAYLOAD_TOO_LARGE = "payload-too-large"
    SERVICE_UNAVAILABLE = "service-unavailable"
    INTERNAL_ERROR = "internal-error"


class WebhookRejectedError(PhalanxError):
    """A webhook is refused; carries the HTTP status, the ``messageCode`` and the sentence.

    Args:
        message_code: One of :class:`MessageCode`.
        message: What went wrong and what to do about it, for a person.
        status_code: HTTP status (400 unless stated).
        headers: Extra response headers (e.g. ``Retry-After``).
    """

    def __init__(
        self,
        message_code: str,
        message: str,
        status_code: int = status.HTTP_400_BAD_REQUEST,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message_code = message_code
        self.message = message
        self.status_code = status_code
        self.headers = headers or {}


def rejected_response(rejection: WebhookRejectedError) -> Response:
    """The TradersPost failure body for a rejection."""
    body = {
        "success": False,
        "messageCode": rejection.message_code,
        "message": rejection.message,
    }
    return Response(
        content=_encoder.encode(body),
        status_code=rejection.status_code,
        media_type="application/json",
        headers=rejection.headers,
    )


def accepted_response(
    signal_id: str,
    payload: dict[str, Any],
    duplicate: bool,
    queued: bool = False,
    trace_id: str = "",
) -> Response:
    """The TradersPost success body; ``duplicate`` is added (true) for a resent signal.

    Args:
        signal_id: The signal id, returned as both ``id`` and ``logId``.
        payload: The accepted signal in webhook field names (see ``payload.signal_to_payload``).
        duplicate: Whether this signal was already stored (it trades nothing new).
        queued: Whether it is durable in the local outbox rather than in JetStream yet: the
            answer is then ``202 Accepted`` with ``"queued": true`` (ADR-0010).
        trace_id: The webhook's trace id, answered as ``trace_id`` (ADR-0070); for a duplicate
            it is this request's trace, the stored signal keeps the first one's.
    """
    body: dict[str, Any] = {
        "success": True,
        "id": signal_id,
        "logId": signal_id,
        "payload": payload,
    }
    if duplicate:
        body["duplicate"] = True
    if queued:
        body["queued"] = True
    if trace_id:
        body["trace_id"] = trace_id
    return Response(
        content=_encoder.encode(body),
        status_code=202 if queued else 200,
        media_type="application/json",
    )
