"""Quotes of every contract the book holds, from the venue's market-data socket (ADR-0128).

:class:`QuoteFeed` keeps a :class:`~phalanx_tradovate.marketdata.MarketDataClient` subscribed
to exactly the contracts with an open position (checked every ``resync_s``), authorized with
the token of any login that has a live one (the ``tokens`` bucket, like reconciliation; market
data is the same for every login). :meth:`QuoteFeed.mark` is a contract's mark from a fresh
quote: one received on the current socket, at most ``max_age_s`` ago (0: any age). Otherwise
``None``, and unrealized P&L falls back to the last fill (ADR-0126).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from typing import Any

from phalanx_common.clock import Clock
from phalanx_common.records import TokenRecord
from phalanx_common.tasks import OwnedTasks
from phalanx_ledger.projection import PositionsProjection
from phalanx_ledger.quote_marks import QuoteMark, mark_from_quote
from phalanx_tradovate.marketdata import MarketDataClient
from phalanx_tradovate.ws import TokenSource

__all__ = ["QuoteFeed", "any_live_token", "held_contracts"]

log = logging.getLogger(__name__)


def held_contracts(projection: PositionsProjection) -> set[int]:
    """Contract ids with an open position on any account."""
    return {p.contract_id for p in projection.positions() if p.net_pos != 0 and p.contract_id > 0}


def any_live_token(
    tokens: Callable[[], Iterable[TokenRecord]], clock: Clock, poll_s: float = 1.0
) -> TokenSource:
    """A token source answering the live token that expires last (waits until there is one)."""

    async def source() -> str:
        while True:
            now = clock.time_ns()
            live = [t for t in tokens() if t.access_token and t.expires_ns() > now]
            if live:
                return max(live, key=lambda t: t.expires_ns()).access_token
            await asyncio.sleep(poll_s)

    return source


class QuoteFeed:
    """Marks from quotes for the contracts the book holds.

    Args:
        client: the market-data client (owned: started and stopped here).
        projection: the book whose open positions decide the subscriptions.
        clock: the ledger's clock (quote ages).
        max_age_s: a quote older than this does not mark (0: no age limit).
        resync_s: how often the subscriptions follow the open positions.
    """

    def __init__(
        self,
        client: MarketDataClient,
        projection: PositionsProjection,
        clock: Clock,
        max_age_s: float,
        resync_s: float,
    ) -> None:
        self.client = client
        self._projection = projection
        self._clock = clock
        self._max_age_ns = int(max_age_s * 1_000_000_000)
        self._resync_s = resync_s
        self._tasks = OwnedTasks("ledger-quote-feed")

    def mark(self, contract_id: int) -> QuoteMark | None:
        """The contract's mark from a fresh quote, or ``None``."""
        quote = self.client.quote(contract_id)
        if quote is None:
            return None
        if self._max_age_ns > 0 and self._clock.time_ns() - quote.received_ns > self._max_age_ns:
            return None
        return mark_from_quote(quote)

    def status(self) -> dict[str, Any]:
        """What ``/admin/unrealized`` says about the market-data socket."""
        return {
            "url": self.client.url,
            "connected": self.client.connected,
            "connects": self.client.connects,
            "subscribed": sorted(self.client.wanted),
            "quoted": sorted(self.client.quotes) if self.client.connected else [],
            "refused": {str(k): v for k, v in sorted(self.client.refused.items())},
        }

    async def resync(self) -> None:
        """Subscribe the contracts now held, unsubscribe those no longer held."""
        held = held_contracts(self._projection)
        wanted = self.client.wanted
        for contract_id in sorted(held - wanted):
            await self.client.subscribe(contract_id)
        for contract_id in sorted(wanted - held):
            await self.client.unsubscribe(contract_id)

    async def _run(self) -> None:
        while True:
            try:
                await self.resync()
            except Exception:
                log.exception("market-data resync failed")
            await asyncio.sleep(self._resync_s)

    def start(self) -> None:
        """Connect and follow the book (in the background)."""
        self.client.start()
        self._tasks.spawn(self._run(), "ledger-quote-feed")

    async def stop(self) -> None:
        """Stop following and close the socket (idempotent)."""
        await self._tasks.stop()
        await self.client.stop()
