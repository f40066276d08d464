"""``POST /webhooks/{strategy_id}/{secret}``: the TradersPost-compatible signal endpoint.

Order of checks, cheapest and least revealing first: body size and read time (413, 408),
strategy (404, TradersPost's ``not-found`` body), secret (403 ``invalid-password``; a rotated-out
secret still works during its grace period), sender address (403 ``not-trading-view`` /
``invalid-ip-address``), Standard Webhooks signature when the strategy has a signing key (403),
the strategy's rate limit (429 ``too-many-requests``), body (400 with TradersPost's
``messageCode``), allowed tickers (400 ``unsupported-ticker``), freshness (400), then durability:
200 after JetStream's ack, 202 ``queued`` after the outbox's fsync, or 503
``service-unavailable``. See ADR-0012 for the status codes.

A wrong secret answers **403**, not TradersPost's 400: the request is well-formed but not
allowed, and 401 would promise an HTTP authentication scheme (``WWW-Authenticate``) that a
secret in the URL is not. The body shape and ``messageCode`` are TradersPost's, so clients that
read ``messageCode`` behave the same. Other methods on the URL answer 405 ``post-required``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import math
import time
from typing import Any

import msgspec
from fastapi import APIRouter, Request, status
from fastapi.responses import Response

from phalanx_common.clock import Clock
from phalanx_common.contracts import ContractBook, UnknownTicker
from phalanx_common.events import Signal
from phalanx_common.ids import signal_id_from
from phalanx_common.records import StrategyRecord
from phalanx_common.telemetry import current_trace_id, webhook_root
from phalanx_ingest.deadlines import not_after_ns
from phalanx_ingest.metrics import UNKNOWN_STRATEGY, IngestMetrics
from phalanx_ingest.payload import parse_signal, parse_time_ns, signal_to_payload
from phalanx_ingest.publisher import SignalPublisher, SignalsUnavailableError
from phalanx_ingest.ratelimit import RateLimiter
from phalanx_ingest.repeats import RepeatGuard
from phalanx_ingest.responses import (
    MessageCode,
    WebhookRejectedError,
    accepted_response,
    rejected_response,
)
from phalanx_ingest.senders import Address, IpMatcher, check_sender, client_ip, parse_networks
from phalanx_ingest.settings import IngestSettings
from phalanx_ingest.signatures import SIGNATURE_HEADERS, verify_signature
from phalanx_ingest.strategies import StrategyDirectory, StrategyLookupError, secret_matches

__all__ = ["WEBHOOK_PATH", "derive_signal_id", "webhook_router"]

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
                        "quantityType": {"enum": ["fixed_quantity", "percent_of_position"]},
                        "trailAmount": {"type": "number"},
                        "trailPercent": {"type": "number"},
                        "timeInForce": {"enum": ["day", "gtc", "opg", "cls", "ioc", "fok"]},
                        "time": {"type": "string"},
                        "interval": {"type": "string"},
                        "cancel": {"type": "boolean"},
                        "cancelOrderType": {"type": "string"},
                        "delay": {"type": "number", "minimum": 0, "maximum": 3600},
                        "ignoreTradingWindows": {"type": "boolean"},
                        "expiresAt": {"type": "string"},
                        "id": {"type": "string", "maxLength": 128},
                        "extras": {"type": "object"},
                        "test": {"type": "boolean"},
                    },
                },
                "example": {"ticker": "MNQ1!", "action": "buy", "quantity": 1},
            }
        },
    },
    "responses": {
        "200": {"description": "Durable: JetStream stored the signal (or already had it)."},
        "202": {
            "description": "Durable in the local outbox (queued); published when NATS is back."
        },
        "400": {"description": "Refused: see messageCode and message."},
        "403": {
            "description": "invalid-password, not-trading-view, invalid-ip-address, "
            "signature-required, invalid-signature, signature-expired."
        },
        "404": {"description": "not-found: no such strategy."},
        "408": {"description": "request-timeout: the body did not arrive in time."},
        "413": {"description": "payload-too-large."},
        "429": {"description": "too-many-requests: the strategy's rate limit."},
        "503": {"description": "service-unavailable: not stored; safe to resend."},
    },
}


class _WebhookHandler:
    def __init__(
        self,
        strategies: StrategyDirectory,
        publisher: SignalPublisher,
        clock: Clock,
        settings: IngestSettings,
        limiter: RateLimiter,
        repeats: RepeatGuard,
    ) -> None:
        self._repeats = repeats
        self._book = ContractBook.load()
        self._strategies = strategies
        self._publisher = publisher
        self._clock = clock
        self._settings = settings
        self._max_body_bytes = settings.max_body_bytes
        self._limiter = limiter
        self._trusted = IpMatcher(parse_networks(settings.trusted_proxies))
        self._tradingview_ips = tuple(settings.tradingview_ips)

    async def receive(self, strategy_id: str, secret: str, request: Request) -> Response:
        received_ns = self._clock.time_ns()
        try:
            body = await self._read_body(request)
            strategy = await self._authenticate(strategy_id, secret, received_ns)
            check_sender(strategy, self._sender(request), self._tradingview_ips)
            webhook_id = self._check_signature(strategy, request, body, received_ns)
            self._check_rate(strategy)
            signal = parse_signal(body)
            _check_ticker(strategy, signal.ticker)
            contract = self._resolve(signal.ticker, received_ns)
            max_quantity = self._check_quantity(strategy, signal)
            self._check_freshness(strategy, signal, received_ns)
            explicit_id = signal.id or webhook_id
            if explicit_id is not None:
                signal_id = derive_signal_id(strategy_id, body, explicit_id)
            else:
                window_s = strategy.repeat_window_s or self._settings.repeat_window_s
                signal_id = await self._repeats.signal_id(strategy_id, body, received_ns, window_s)
            # One trace per webhook (a new one when the sender sent no traceparent): its id is
            # recorded on the signal, answered, and carried on in the NATS headers (ADR-0070).
            with webhook_root(dict(request.headers)) as span:
                span.set_attribute("phalanx.signal_id", signal_id)
                span.set_attribute("phalanx.strategy_id", strategy_id)
                try:
                    result = await self._publisher.publish(
                        strategy_id,
                        signal_id,
                        signal,
                        received_ns,
                        not_after_ns=self._not_after_ns(strategy, signal, received_ns),
                        max_quantity=max_quantity,
                        contract=contract,
                    )
                except SignalsUnavailableError:
                    raise _unavailable() from None
                span.set_attribute("phalanx.duplicate", result.duplicate)
                span.set_attribute("phalanx.queued", result.queued)
                trace_id = current_trace_id()
            return accepted_response(
                signal_id, signal_to_payload(signal), result.duplicate, result.queued, trace_id
            )
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
        try:
            async with asyncio.timeout(self._settings.body_timeout_s):
                async for chunk in request.stream():
                    size += len(chunk)
                    if size > self._max_body_bytes:
                        raise too_large
                    chunks.append(chunk)
        except TimeoutError:
            raise WebhookRejectedError(
                MessageCode.REQUEST_TIMEOUT,
                f"The body did not arrive within {self._settings.body_timeout_s:g} s; nothing "
                "was traded. Send it again.",
                status.HTTP_408_REQUEST_TIMEOUT,
                {"Connection": "close"},
            ) from None
        return b"".join(chunks)

    async def _authenticate(self, strategy_id: str, secret: str, now_ns: int) -> StrategyRecord:
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
        if not secret_matches(strategy, secret, now_ns):
            raise WebhookRejectedError(
                MessageCode.INVALID_PASSWORD,
                "The secret in your webhook URL is not correct. Copy the webhook URL again, or "
                "create a new one if it was lost.",
                status.HTTP_403_FORBIDDEN,
            )
        return strategy

    def _sender(self, request: Request) -> Address | None:
        peer = request.client.host if request.client is not None else None
        forwarded = ",".join(request.headers.getlist("x-forwarded-for")) or None
        return client_ip(peer, forwarded, self._trusted)

    def _check_signature(
        self, strategy: StrategyRecord, request: Request, body: bytes, now_ns: int
    ) -> str | None:
        signed = any(h in request.headers for h in SIGNATURE_HEADERS)
        if not signed:
            if strategy.require_signature:
                raise WebhookRejectedError(
                    MessageCode.SIGNATURE_REQUIRED,
                    "This strategy accepts only signed webhooks: send webhook-id, "
                    "webhook-timestamp and webhook-signature (Standard Webhooks).",
                    status.HTTP_403_FORBIDDEN,
                )
            return None
        keys = [strategy.signing_secret]
        if (
            strategy.previous_signing_secret
            and now_ns < strategy.previous_signing_secret_expires_ns
        ):
            keys.append(strategy.previous_signing_secret)
        if not strategy.signing_secret:
            if strategy.require_signature:
                raise WebhookRejectedError(
                    MessageCode.INVALID_SIGNATURE,
                    "This strategy requires signatures but has no signing secret yet; create "
                    "one with the admin API.",
                    status.HTTP_403_FORBIDDEN,
                )
            return None  # nothing to verify against: the URL secret authenticated it
        return verify_signature(
            request.headers, body, keys, now_ns / 1e9, self._settings.signature_tolerance_s
        )

    def _check_rate(self, strategy: StrategyRecord) -> None:
        rate = strategy.rate_limit_per_min or self._settings.webhook_rate_per_min
        burst = self._settings.webhook_burst
        if strategy.rate_limit_per_min:
            burst = max(1, min(burst, strategy.rate_limit_per_min))
        wait_s = self._limiter.acquire(strategy.strategy_id, rate, burst)
        if wait_s > 0:
            raise WebhookRejectedError(
                MessageCode.TOO_MANY_REQUESTS,
                f"Too many signals for this strategy (limit {rate:g} per minute). This one was "
                "not traded; slow the alerts down.",
                status.HTTP_429_TOO_MANY_REQUESTS,
                {"Retry-After": str(max(1, math.ceil(wait_s)))},
            )

    def _resolve(self, ticker: str, now_ns: int) -> str:
        """Tradovate's dated symbol for ``ticker`` today (continuous tickers rolled)."""
        today = dt.datetime.fromtimestamp(now_ns / 1e9, tz=dt.UTC).date()
        try:
            symbol, _ = self._book.resolve(ticker, today)
        except UnknownTicker as exc:
            raise WebhookRejectedError(
                MessageCode.TICKER_DOES_NOT_EXIST,
                f"{str(exc)[:1].upper()}{str(exc)[1:].rstrip('.')}. Nothing was traded.",
            ) from None
        return symbol

    def _check_quantity(self, strategy: StrategyRecord, signal: Signal) -> int:
        """Refuse a quantity above the strategy's maximum; return that maximum."""
        maximum = strategy.max_quantity or self._settings.max_signal_quantity
        if (
            signal.quantity is not None
            and signal.quantity_type != "percent_of_position"
            and signal.quantity > maximum
        ):
            raise WebhookRejectedError(
                MessageCode.INVALID_QUANTITY,
                f"The quantity {signal.quantity} is more than this strategy's maximum of "
                f"{maximum} contracts; nothing was traded. Send a smaller quantity, or raise "
                "the strategy's max_quantity.",
            )
        return maximum

    def _not_after_ns(self, strategy: StrategyRecord, signal: Signal, received_ns: int) -> int:
        """The last moment an order of this signal may be sent (ADR-0045)."""
        return not_after_ns(strategy, self._settings, signal, received_ns)

    def _check_freshness(self, strategy: StrategyRecord, signal: Signal, now_ns: int) -> None:
        if signal.expires_at is not None:
            expires_ns = parse_time_ns(signal.expires_at)
            if expires_ns is not None and expires_ns <= now_ns:
                raise WebhookRejectedError(
                    MessageCode.INVALID_EXPIRES_AT,
                    f"The signal expired at {signal.expires_at}; it was not traded.",
                )
        max_age_s = strategy.max_signal_age_s or self._settings.max_signal_age_s
        if max_age_s <= 0:
            return
        signal_ns = parse_time_ns(signal.time) if signal.time is not None else None
        if signal_ns is None:
            raise WebhookRejectedError(
                MessageCode.INVALID_TIME,
                "This strategy refuses signals older than "
                f"{max_age_s:g} s, so each needs its time: add "
                '"time": "{{timenow}}" (ISO-8601) to the alert message.',
            )
        age_s = (now_ns - signal_ns) / 1e9
        if age_s > max_age_s:
            raise WebhookRejectedError(
                MessageCode.SIGNAL_TOO_OLD,
                f"The signal is {age_s:.0f} s old, more than this strategy's {max_age_s:g} s; "
                "it was not traded.",
            )
        if -age_s > max_age_s:
            raise WebhookRejectedError(
                MessageCode.INVALID_TIME,
                f"The signal's time is {-age_s:.0f} s in the future; check the sender's clock.",
            )

    async def wrong_method(self) -> Response:
        return rejected_response(
            WebhookRejectedError(
                MessageCode.POST_REQUIRED,
                "The HTTP POST method is required for this trade signal.",
                status.HTTP_405_METHOD_NOT_ALLOWED,
                {"Allow": "POST"},
            )
        )


def derive_signal_id(strategy_id: str, body: bytes, explicit_id: str | None) -> str:
    """The signal id (ADR-0011) of a signal with the sender's explicit id (``id`` or
    ``webhook-id``); without one, the strategy and the exact body (id-less webhooks get theirs
    from :class:`~phalanx_ingest.repeats.RepeatGuard`, ADR-0045)."""
    if explicit_id is None:
        return signal_id_from(strategy_id, body)
    digest = hashlib.sha256(
        b"id\x00" + strategy_id.encode() + b"\x00" + explicit_id.encode()
    ).hexdigest()
    return f"s{digest[:31]}"


def _outcome(response: Response) -> str:
    """``accepted``, ``queued``, ``duplicate``, or the ``messageCode`` of a refusal."""
    try:
        body = msgspec.json.decode(bytes(response.body))
    except msgspec.DecodeError:
        return "unreadable"
    if not isinstance(body, dict):
        return "unreadable"
    if body.get("success"):
        if body.get("duplicate"):
            return "duplicate"
        return "queued" if body.get("queued") else "accepted"
    return str(body.get("messageCode") or "refused")


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
    settings: IngestSettings,
    limiter: RateLimiter | None = None,
    repeats: RepeatGuard | None = None,
    metrics: IngestMetrics | None = None,
) -> APIRouter:
    """The webhook route, bound to its collaborators.

    Args:
        strategies: Where strategies (and their secret digests) are looked up.
        publisher: Makes accepted signals durable.
        clock: Source of the reception timestamp (``ts_event``).
        settings: Limits, proxies, sender lists, tolerances.
        limiter: The per-strategy rate limiter.
        repeats: Tells resends of an id-less body from repeats (memory only when ``None``).
        metrics: Where each webhook's outcome and time are counted.
    """
    counted = metrics or IngestMetrics()
    handler = _WebhookHandler(
        strategies,
        publisher,
        clock,
        settings,
        limiter or RateLimiter(),
        repeats or RepeatGuard(None),
    )
    router = APIRouter(tags=["webhook"])

    async def receive(strategy_id: str, secret: str, request: Request) -> Response:
        started = time.perf_counter()
        response = await handler.receive(strategy_id, secret, request)
        counted.webhook_seconds.observe(time.perf_counter() - started)
        known = strategies.get(strategy_id) is not None
        counted.signals.labels(strategy_id if known else UNKNOWN_STRATEGY, _outcome(response)).inc()
        return response

    router.add_api_route(
        WEBHOOK_PATH,
        receive,
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
