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
        tradovate_rest_url: The venue's REST base, for reconciliation (ADR-0125).
        reconcile_interval_s: How often every active account is reconciled with the broker
            (``PHALANX_RECONCILE_INTERVAL_S``; 0: only on demand, ``POST /admin/reconcile``).
        reconcile_fill_grace_s: A broker fill younger than this that the ledger lacks is left
            to the executor (it is probably on its way): the account's check says ``unknown``
            and the next period looks again.
        reconcile_concurrency: Accounts checked at once.
        reduce_on_drift: Switch a drifted account to REDUCING (``account.<id>`` in the
            trading-state bucket, as the executor's admin API does); never relaxes a state.
        venue_timeout_s: Per-request timeout of the venue's REST API.
    """

    service_name: str = "ledger"
    ledger_port: int = 8200
    replay_timeout_s: float = 60.0
    tradovate_rest_url: str = "http://127.0.0.1:8900/v1"
    reconcile_interval_s: float = 300.0
    reconcile_fill_grace_s: float = 10.0
    reconcile_concurrency: int = 4
    reduce_on_drift: bool = False
    venue_timeout_s: float = 10.0
