"""Settings of the ingest service (``PHALANX_*`` environment variables)."""

from __future__ import annotations

from phalanx_common.settings import CommonSettings

__all__ = ["IngestSettings"]


class IngestSettings(CommonSettings, frozen=True, kw_only=True):
    """Ingest settings on top of :class:`~phalanx_common.settings.CommonSettings`.

    Attributes:
        ingest_port: TCP port of the HTTP API (``PHALANX_INGEST_PORT``; 0 picks a free one).
        public_base_url: Base URL senders reach this service at, used to build the webhook URL
            shown when a strategy is created (``PHALANX_PUBLIC_BASE_URL``).
        publish_timeout_s: How long a webhook waits for JetStream's ack before answering 503
            (``PHALANX_PUBLISH_TIMEOUT_S``); TradingView gives up after about 3 s.
        max_body_bytes: Largest webhook body accepted; larger ones get 413
            (``PHALANX_MAX_BODY_BYTES``).
    """

    service_name: str = "ingest"
    ingest_port: int = 8000
    public_base_url: str = "http://127.0.0.1:8000"
    publish_timeout_s: float = 2.0
    max_body_bytes: int = 64 * 1024
