"""The mark a quote gives a contract (ADR-0128; pure, no I/O).

- The quote's **Trade** price when it has one (the last price the market traded at, what
  exchanges and Tradovate's own P&L use);
- else the **mid** of Bid and Offer when both are there;
- else no mark from this quote: the caller falls back to the last fill (ADR-0126).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

import msgspec

from phalanx_tradovate.marketdata import Quote

__all__ = ["MarkSource", "QuoteMark", "mark_from_quote"]

#: where a mark came from: a quote's Trade, a quote's Bid/Offer mid, or the last fill
MarkSource = Literal["trade", "mid", "fill"]


class QuoteMark(msgspec.Struct, frozen=True, kw_only=True):
    """A contract's mark taken from a quote, and when the quote arrived (ledger clock)."""

    price: Decimal
    source: MarkSource
    ts_ns: int


def mark_from_quote(quote: Quote) -> QuoteMark | None:
    """Trade price, else Bid/Offer mid, else ``None``."""
    if quote.trade is not None:
        return QuoteMark(price=quote.trade, source="trade", ts_ns=quote.received_ns)
    if quote.bid is not None and quote.offer is not None:
        mid = (quote.bid + quote.offer) / 2
        return QuoteMark(price=mid, source="mid", ts_ns=quote.received_ns)
    return None
