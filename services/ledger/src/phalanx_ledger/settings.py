"""Settings of the ledger service (``PHALANX_*`` environment variables)."""

from __future__ import annotations

from phalanx_common.settings import CommonSettings

__all__ = ["MIN_HISTORY_DAYS", "LedgerSettings"]

#: The shortest FILLS/ORDERS age limit the ledger accepts: the signal log reads ORDERS over the
#: SIGNALS horizon (30 days), and a ledger down for less than this loses nothing (ADR-0122).
MIN_HISTORY_DAYS = 30.0


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
        snapshot_every_fills: Take a snapshot of the book after this many new fills
            (``PHALANX_SNAPSHOT_EVERY_FILLS``; ADR-0122).
        snapshot_interval_s: ...or after this many seconds when anything changed
            (``PHALANX_SNAPSHOT_INTERVAL_S``); 0 disables snapshots (every start replays all).
        ledger_history_days: Age limit of FILLS and ORDERS (``PHALANX_LEDGER_HISTORY_DAYS``);
            0 (the default) keeps them forever. When set, it must be at least
            :data:`MIN_HISTORY_DAYS` (ADR-0122): what ages out is in the snapshots only.
        tradovate_md_url: The venue's market-data socket (``PHALANX_TRADOVATE_MD_URL``,
            ``wss://md.tradovateapi.com/v1/websocket``; the simulator's ``/md/v1/websocket``).
            Empty (the default): no quotes, positions are marked at the last fill (ADR-0128).
        md_quote_max_age_s: A quote older than this no longer marks its contract
            (``PHALANX_MD_QUOTE_MAX_AGE_S``; 0: any age while the socket is connected).
        md_resync_s: How often the quote subscriptions follow the open positions.
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
    snapshot_every_fills: int = 10_000
    snapshot_interval_s: float = 300.0
    ledger_history_days: float = 0.0
    tradovate_md_url: str = ""
    md_quote_max_age_s: float = 300.0
    md_resync_s: float = 1.0

    def __post_init__(self) -> None:
        if 0 < self.ledger_history_days < MIN_HISTORY_DAYS:
            raise ValueError(
                f"PHALANX_LEDGER_HISTORY_DAYS={self.ledger_history_days}: 0 (keep forever) or at "
                f"least {MIN_HISTORY_DAYS} days (ADR-0122)"
            )
        if self.ledger_history_days and not self.snapshot_interval_s:
            raise ValueError(
                "PHALANX_LEDGER_HISTORY_DAYS needs snapshots (PHALANX_SNAPSHOT_INTERVAL_S > 0)"
            )

    @property
    def ledger_history_s(self) -> float:
        """The FILLS/ORDERS age limit in seconds (0 = forever)."""
        return self.ledger_history_days * 86_400.0
