"""Settings of the ingest service (``PHALANX_*`` environment variables)."""

from __future__ import annotations

from phalanx_common.settings import CommonSettings
from phalanx_common.signal_ages import MAX_SIGNAL_AGE_S

__all__ = ["TRADINGVIEW_SENDER_IPS", "IngestSettings"]

# TradingView's published webhook sender addresses (support page 43000529348). Data, not code:
# override with PHALANX_TRADINGVIEW_IPS='["...", ...]' when TradingView publishes new ones.
TRADINGVIEW_SENDER_IPS: tuple[str, ...] = (
    "52.89.214.238",
    "34.212.75.30",
    "54.218.53.128",
    "52.32.178.7",
)


class IngestSettings(CommonSettings, frozen=True, kw_only=True):
    """Ingest settings on top of :class:`~phalanx_common.settings.CommonSettings`.

    Attributes:
        ingest_port: TCP port of the HTTP API (``PHALANX_INGEST_PORT``; 0 picks a free one).
        public_base_url: Base URL senders reach this service at, used to build the webhook URL
            shown when a strategy is created (``PHALANX_PUBLIC_BASE_URL``).
        publish_timeout_s: How long a webhook waits for JetStream's ack before it falls back to
            the outbox (or answers 503 without one) (``PHALANX_PUBLISH_TIMEOUT_S``).
        max_body_bytes: Largest webhook body accepted; larger ones get 413
            (``PHALANX_MAX_BODY_BYTES``).
        body_timeout_s: How long reading a webhook body may take before 408
            (``PHALANX_BODY_TIMEOUT_S``).
        ingest_outbox_dir: Directory of the durable outbox (SQLite, WAL). Empty: no outbox, and a
            webhook that cannot reach JetStream answers 503 (``PHALANX_INGEST_OUTBOX_DIR``).
            One directory per ingest process (it is locked).
        outbox_retention_s: How long published outbox rows are kept to recognise resends while
            NATS is away (``PHALANX_OUTBOX_RETENTION_S``, 24 h like the SIGNALS window).
        webhook_rate_per_min: Requests per minute per strategy (token bucket refill), unless the
            strategy sets its own (``PHALANX_WEBHOOK_RATE_PER_MIN``).
        webhook_burst: Bucket size of that limit (``PHALANX_WEBHOOK_BURST``).
        max_signal_age_s: Default freshness window on the body's ``time`` (0 = off; a strategy
            may set its own) (``PHALANX_MAX_SIGNAL_AGE_S``).
        trusted_proxies: Addresses or CIDRs whose ``X-Forwarded-For`` is believed
            (``PHALANX_TRUSTED_PROXIES``, JSON list). Empty: the TCP peer is the sender.
        tradingview_ips: The sender addresses of "TradingView only" strategies
            (``PHALANX_TRADINGVIEW_IPS``, JSON list).
        signature_tolerance_s: Standard Webhooks ``webhook-timestamp`` tolerance
            (``PHALANX_SIGNATURE_TOLERANCE_S``).
        secret_grace_s: Default time a rotated-out secret stays valid
            (``PHALANX_SECRET_GRACE_S``).
        signal_log_size: Signals remembered per strategy by the signal log
            (``PHALANX_SIGNAL_LOG_SIZE``; 0 disables the log's consumers).
        max_signal_quantity: Largest ``quantity`` a signal may ask for, unless the strategy sets
            its own (``PHALANX_MAX_SIGNAL_QUANTITY``).
        repeat_window_s: A body without an id sent again within this many seconds is a
            duplicate (a resend or a double click); later it is a new signal and trades
            (``PHALANX_REPEAT_WINDOW_S``; a strategy may set its own, at most 3600).
        max_entry_age_s: Entries (buy, sell, add) not sent within this many seconds of receipt
            (after any ``delay``) expire (``PHALANX_MAX_ENTRY_AGE_S``; at most a day, ADR-0185).
        max_exit_age_s: The same for exits and cancels (``PHALANX_MAX_EXIT_AGE_S``).
        replay_request_max_age_s: A re-run request on ``signals-replay.<strategy>`` older than
            this when ingest reads it is refused, not carried out (ADR-0090;
            ``PHALANX_REPLAY_REQUEST_MAX_AGE_S``; keep it well under the 24 h duplicate window).
    """

    service_name: str = "ingest"
    ingest_port: int = 8000
    public_base_url: str = "http://127.0.0.1:8000"
    publish_timeout_s: float = 1.5
    max_body_bytes: int = 64 * 1024
    body_timeout_s: float = 2.0
    ingest_outbox_dir: str = ""
    outbox_retention_s: float = 24 * 3600.0
    webhook_rate_per_min: float = 120.0
    webhook_burst: int = 60
    max_signal_age_s: float = 0.0
    trusted_proxies: tuple[str, ...] = ()
    tradingview_ips: tuple[str, ...] = TRADINGVIEW_SENDER_IPS
    signature_tolerance_s: float = 300.0
    secret_grace_s: float = 24 * 3600.0
    signal_log_size: int = 200
    max_signal_quantity: int = 100
    repeat_window_s: float = 5.0
    max_entry_age_s: float = 60.0
    max_exit_age_s: float = 300.0
    replay_request_max_age_s: float = 3600.0

    def __post_init__(self) -> None:
        for name in ("max_entry_age_s", "max_exit_age_s"):
            value = getattr(self, name)
            if not 0 <= value <= MAX_SIGNAL_AGE_S:
                raise ValueError(
                    f"PHALANX_{name.upper()}={value}: from 0 to {MAX_SIGNAL_AGE_S} s "
                    "(intent claims outlive the longest deadline; ADR-0185)"
                )
