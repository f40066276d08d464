"""``POST /webhooks/{strategy_id}/{secret}``: the TradersPost-compatible signal endpoint.

Order of checks, cheapest and least revealing first: body size (413), strategy (404, TradersPost's
``not-found`` body), secret (403 ``invalid-password``), body (400 with TradersPost's
``messageCode``), allowed tickers (400 ``unsupported-ticker``), then the publish (200 after
JetStream's ack, or 503 ``service-unavailable``).

A wrong secret answers **403**, not TradersPost's 400: the request is well-formed but not
allowed, and 401 would promise an HTTP authentication scheme (``WWW-Authenticate``) that a
secret in the URL is not. The body shape and ``messageCode`` are TradersPost's, so clients that
read ``messageCode`` behave the same. Other methods on the URL answer 405 ``post-required``.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, status
from fastapi.responses import Response

from phalanx_common.clock import Clock
from phalanx_common.ids import signal_id_from
from phalanx_common.records import StrategyRecord
from phalanx_ingest.payload import parse_signal, signal_to_payload
from phalanx_ingest.publisher import SignalPublisher, SignalsUnavailableError
from phalanx_ingest.responses import (
    MessageCode,
    WebhookRejectedError,
    accepted_response,
    rejected_response,
)
from phalanx_ingest.strategies import StrategyDirectory, StrategyLookupError, secret_matches

__all__ = ["WEBHOOK_PATH", "webhook_router"]

WEBHOOK_PATH = "/webhooks/{strategy_id}/{secret}"

_OPENAPI_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["ticker", "action"],
                    "properties": {
                        "ticker": {"type": "string"},
                        "action": {"enum": ["buy", "sell", "exit", "cancel", "add"]},
                        "sentiment": {"enum": ["bullish", "bearish", "flat", "long", "short"]},
                        "quantity": {"type": "number"},
                        "orderType": {
                            "enum": ["market", "limit", "stop", "stop_limit", "trailing_stop"]
                        },
                        "limitPrice": {"type": "number"},
                        "stopPrice": {"type": "number"},
                        "price": {"type": "number"},
                        "signalPrice": {"type": "number"},
                        "takeProfit": {"type": "object"},
                        "stopLoss": {"type": "object"},
                        "time": {"type": "string"},
                        "interval": {"type": "string"},
                        "extras": {"type": "object"},
                        "test": {"type": "boolean"},
                    },
                },
                "example": {"ticker": "MNQZ2025", "action": "buy", "quantity": 1},
            }
        },
    },
    "responses": {
        "200": {"description": "Durable: JetStream stored the signal (or already had it)."},
        "400": {"description": "Refused: see messageCode and message."},
        "403": {"description": "invalid-password: the secret in the URL is wrong."},
        "404": {"description": "not-found: no such strategy."},
        "413": {"description": "payload-too-large."},
        "503": {"description": "service-unavailable: not stored; safe to resend."},
    },
}


class _WebhookHandler:
    def __init__(
        self,
        strategies: StrategyDirectory,
        publisher: SignalPublisher,
        clock: Clock,
        max_body_bytes: int,
    ) -> None:
        self._strategies = strategies
        self._publisher = publisher
        self._clock = clock
        self._max_body_bytes = max_body_bytes

    async def receive(self, strategy_id: str, secret: str, request: Request) -> Response:
        received_ns = self._clock.time_ns()
        try:
            body = await self._read_body(request)
            strategy = await self._authenticate(strategy_id, secret)
            signal = parse_signal(body)
            _check_ticker(strategy, signal.ticker)
            signal_id = signal_id_from(strategy_id, body)
            try:
                result = await self._publisher.publish(strategy_id, signal_id, signal, received_ns)
            except SignalsUnavailableError:
                raise _unavailable() from None
            return accepted_response(signal_id, signal_to_payload(signal), result.duplicate)
        except WebhookRejectedError as rejection:
            return rejected_response(rejection)

    async def _read_body(self, request: Request) -> bytes:
        too_large = WebhookRejectedError(
            MessageCode.PAYLOAD_TOO_LARGE,
            f"The body is larger than {self._max_body_bytes} bytes. A signal needs only a few "
            "hundred; put less in extras.",
            status.HTTP_413_CONTENT_TOO_LARGE,
        )
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self._max_body_bytes:
            raise too_large
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > self._max_body_bytes:
                raise too_large
            chunks.append(chunk)
        return b"".join(chunks)

    async def _authenticate(self, strategy_id: str, secret: str) -> StrategyRecord:
        try:
            strategy = await self._strategies.lookup(strategy_id)
        except StrategyLookupError:
            raise _unavailable() from None
        if strategy is None:
            raise WebhookRejectedError(
                MessageCode.NOT_FOUND,
                "Webhook not found. Check the strategy id in the URL; copy the webhook URL "
                "again from the strategy.",
                status.HTTP_404_NOT_FOUND,
            )
        if not secret_matches(strategy, secret):
            raise WebhookRejectedError(
                MessageCode.INVALID_PASSWORD,
                "The secret in your webhook URL is not correct. Copy the webhook URL again, or "
                "create a new one if it was lost.",
                status.HTTP_403_FORBIDDEN,
            )
        return strategy

    async def wrong_method(self) -> Response:
        return rejected_response(
            WebhookRejectedError(
                MessageCode.POST_REQUIRED,
                "The HTTP POST method is required for this trade signal.",
                status.HTTP_405_METHOD_NOT_ALLOWED,
                {"Allow": "POST"},
            )
        )


def _unavailable() -> WebhookRejectedError:
    return WebhookRejectedError(
        MessageCode.SERVICE_UNAVAILABLE,
        "The signal was not accepted because the message bus is unavailable; nothing will be "
        "traded for it. Send it again in a few seconds (TradingView resends automatically "
        "after a 5xx).",
        status.HTTP_503_SERVICE_UNAVAILABLE,
        {"Retry-After": "5"},
    )


def _check_ticker(strategy: StrategyRecord, ticker: str) -> None:
    if not strategy.allowed_tickers:
        return
    allowed = {t.upper() for t in strategy.allowed_tickers}
    if ticker.upper() not in allowed:
        raise WebhookRejectedError(
            MessageCode.UNSUPPORTED_TICKER,
            f"The ticker {ticker!r} is not allowed on this strategy. Send one of: "
            + ", ".join(sorted(strategy.allowed_tickers))
            + ", or add it to the strategy's allowed tickers.",
        )


def webhook_router(
    strategies: StrategyDirectory,
    publisher: SignalPublisher,
    clock: Clock,
    max_body_bytes: int,
) -> APIRouter:
    """The webhook route, bound to its collaborators.

    Args:
        strategies: Where strategies (and their secret digests) are looked up.
        publisher: Makes accepted signals durable.
        clock: Source of the reception timestamp (``ts_event``).
        max_body_bytes: Largest accepted body.
    """
    handler = _WebhookHandler(strategies, publisher, clock, max_body_bytes)
    router = APIRouter(tags=["webhook"])
    router.add_api_route(
        WEBHOOK_PATH,
        handler.receive,
        methods=["POST"],
        summary="Receive a trading signal (TradersPost format)",
        openapi_extra=_OPENAPI_BODY,
        response_class=Response,
    )
    router.add_api_route(
        WEBHOOK_PATH,
        handler.wrong_method,
        methods=["GET", "PUT", "PATCH", "DELETE"],
        include_in_schema=False,
        response_class=Response,
    )
    return router
