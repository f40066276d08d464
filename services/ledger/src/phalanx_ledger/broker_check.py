"""Assembles reconciliation with the broker for the ledger service (ADR-0125).

It mirrors the ``accounts`` bucket (which login reaches each account) and the ``tokens``
bucket (each login's current access token, sealed by auth and opened here with the same key
ring: ``PHALANX_TOKEN_KEYS``, ADR-0020), owns the venue REST client and runs the
:class:`~phalanx_ledger.reconciler.Reconciler`.
"""

from __future__ import annotations

from collections.abc import Callable

from phalanx_common import subjects
from phalanx_common.bus import Bus
from phalanx_common.clock import Clock, LiveClock
from phalanx_common.crypto import key_ring_from_settings, token_decoder
from phalanx_common.kvmirror import KvMirror
from phalanx_common.records import AccountRecord, TokenRecord
from phalanx_ledger.broker import TradovateBroker
from phalanx_ledger.projection import PositionsProjection
from phalanx_ledger.quote_feed import QuoteFeed, any_live_token
from phalanx_ledger.reconciler import Reconciler
from phalanx_ledger.settings import LedgerSettings
from phalanx_tradovate.marketdata import MarketDataClient
from phalanx_tradovate.rest import TradovateRest

__all__ = ["BrokerCheck", "build_broker_check"]


class BrokerCheck:
    """The reconciler and what it reads; :meth:`start` after the replay, :meth:`stop` last."""

    def __init__(
        self,
        reconciler: Reconciler,
        accounts: KvMirror[AccountRecord],
        tokens: KvMirror[TokenRecord],
        rest: TradovateRest,
        quotes: QuoteFeed | None = None,
    ) -> None:
        self.reconciler = reconciler
        self._mirrors = (accounts, tokens)
        self._rest = rest
        #: quotes of the contracts held, from the market-data socket (ADR-0128), when set
        self.quotes = quotes

    async def start(self) -> None:
        """Load the accounts and tokens, then start the scheduled checks."""
        for mirror in self._mirrors:
            await mirror.start()
        self.reconciler.start()
        if self.quotes is not None:
            self.quotes.start()

    async def stop(self) -> None:
        """Stop checking and release the mirrors and the HTTP client (idempotent)."""
        await self.reconciler.stop()
        if self.quotes is not None:
            await self.quotes.stop()
        for mirror in self._mirrors:
            await mirror.stop()
        await self._rest.aclose()


async def build_broker_check(
    settings: LedgerSettings,
    bus: Bus,
    projection: PositionsProjection,
    ready: Callable[[], bool],
    clock: Clock | None = None,
) -> BrokerCheck:
    """Build (not start) reconciliation for the ledger."""
    clock = clock if clock is not None else LiveClock()
    accounts = KvMirror(await bus.key_value(subjects.Buckets.ACCOUNTS), AccountRecord)
    ring = key_ring_from_settings(settings.token_keys, settings.admin_token)
    tokens = KvMirror(
        await bus.key_value(subjects.Buckets.TOKENS), TokenRecord, decoder=token_decoder(ring)
    )
    rest = TradovateRest(settings.tradovate_rest_url, timeout_s=settings.venue_timeout_s)
    reconciler = Reconciler(
        bus=bus,
        projection=projection,
        broker=TradovateBroker(rest, tokens.get, clock),
        accounts=accounts.values,
        clock=clock,
        ready=ready,
        interval_s=settings.reconcile_interval_s,
        fill_grace_s=settings.reconcile_fill_grace_s,
        concurrency=settings.reconcile_concurrency,
        reduce_on_drift=settings.reduce_on_drift,
    )
    quotes = (
        QuoteFeed(
            MarketDataClient(
                settings.tradovate_md_url,
                any_live_token(tokens.values, clock),
                now_ns=clock.time_ns,
                max_backoff_s=10.0,
            ),
            projection,
            clock,
            max_age_s=settings.md_quote_max_age_s,
            resync_s=settings.md_resync_s,
        )
        if settings.tradovate_md_url
        else None
    )
    return BrokerCheck(reconciler, accounts, tokens, rest, quotes)
