"""Settings of the ledger service (``PHALANX_*`` environment variables)."""

from __future__ import annotations

from phalanx_common.settings import CommonSettings

__all__ = ["LedgerSettings"]


class LedgerSettings(CommonSettings, frozen=True, kw_only=True):
    """Ledger settings on top of :class:`~phalanx_common.settings.CommonSettings`.

    Attributes:
        ledger_port: TCP port of the HTTP API (``PHALANX_LEDGER_PORT``; 0 picks a free one).
        replay_timeout_s: How long start-up waits for the replay of FILLS and ORDERS to reach
            the end of the streams before serving anyway, marked ``replaying``
            (``PHALANX_REPLAY_TIMEOUT_S``).
    """

    service_name: str = "ledger"
    ledger_port: int = 8200
    replay_timeout_s: float = 60.0
