"""Unrealized P&L of open positions at the venue's last traded price (ADR-0126; pure, no I/O).

- **Mark**: the price of the latest fill of that contract the ledger holds, on any account
  (by ``ts_event``, then ``fill_id``). In ``make run`` fills happen at the simulator's price
  feed, so the mark follows it; on Tradovate it is the last price Phalanx's accounts traded
  at (market data would need a separate, licensed feed). Each row says which price and when,
  so a stale mark is visible.
- **Quotes first** (ADR-0128): when the ledger follows the venue's market-data socket, a fresh
  quote of the contract marks it instead (its Trade price, else the Bid/Offer mid); the last
  fill stays the fallback. Each row says the mark's source (``trade``, ``mid`` or ``fill``)
  and age.
- **Unrealized** = ``net_pos * (mark - avg_price)`` points, times the product's point value in
  its currency (``null`` money for a product missing from the contract table).
- **Whose**: an open position belongs to the strategy of the fill that opened it (took it from
  flat, or reversed it); adding fills by another strategy do not move it (positions are per
  account and contract, like the venue's, ADR-0120).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Literal

import msgspec

from phalanx_ledger.projection import AppliedFill, PositionsProjection
from phalanx_ledger.quote_marks import MarkSource, QuoteMark

__all__ = [
    "Mark",
    "QuoteMarkOf",
    "UnrealizedBy",
    "UnrealizedRow",
    "UnrealizedTotal",
    "marks",
    "totals",
    "unrealized",
]

UnrealizedBy = Literal["account", "contract", "strategy"]
#: a contract id's fresh quote mark, if any (``QuoteFeed.mark``)
QuoteMarkOf = Callable[[int], QuoteMark | None]


class Mark(msgspec.Struct, frozen=True, kw_only=True):
    """The last traded price of a contract the ledger knows."""

    symbol: str
    price: Decimal
    ts_event: int
    fill_id: int


class UnrealizedRow(msgspec.Struct, frozen=True, kw_only=True):
    """One open position at its mark."""

    account_id: int
    symbol: str
    contract_id: int
    strategy_id: str
    net_pos: int
    avg_price: Decimal | None
    mark_price: Decimal
    mark_ns: int
    unrealized_pnl: Decimal  # price points * contracts
    unrealized_pnl_money: Decimal | None
    currency: str
    mark_source: MarkSource = "fill"
    mark_age_ms: int | None = None  # at the time of the answer (None: no clock given)


class UnrealizedTotal(msgspec.Struct, frozen=True, kw_only=True):
    """Unrealized money of a group in one currency."""

    key: str
    currency: str
    unrealized_pnl_money: Decimal
    positions: int
    unpriced_positions: int
    quote_marked_positions: int = 0  # marked by a quote, the others by the last fill


def marks(applied: Sequence[AppliedFill]) -> dict[str, Mark]:
    """The latest fill price per symbol."""
    out: dict[str, Mark] = {}
    for item in applied:
        fill = item.fill
        seen = out.get(fill.symbol)
        if seen is None or (fill.ts_event, fill.fill_id) > (seen.ts_event, seen.fill_id):
            out[fill.symbol] = Mark(
                symbol=fill.symbol, price=fill.price, ts_event=fill.ts_event, fill_id=fill.fill_id
            )
    return out


def _openers(applied: Sequence[AppliedFill]) -> dict[tuple[int, str], int]:
    """``(account, symbol) -> order id`` of the fill that opened the current position."""
    net: dict[tuple[int, str], int] = {}
    opener: dict[tuple[int, str], int] = {}
    for item in applied:
        fill = item.fill
        key = (fill.account_id, fill.symbol)
        before = net.get(key, 0)
        after = before + (fill.qty if fill.action == "Buy" else -fill.qty)
        net[key] = after
        if after != 0 and (before == 0 or (before > 0) != (after > 0)):
            opener[key] = fill.order_id
    return opener


def unrealized(
    projection: PositionsProjection,
    quote_mark: QuoteMarkOf | None = None,
    now_ns: int | None = None,
) -> list[UnrealizedRow]:
    """Every open position with a mark, by account then symbol.

    ``quote_mark`` gives a contract's fresh quote mark (else the last fill marks it);
    ``now_ns`` dates the rows' ``mark_age_ms``.
    """
    prices = marks(projection.applied)
    openers = _openers(projection.applied)
    rows: list[UnrealizedRow] = []
    for position in projection.positions():
        mark = prices.get(position.symbol)
        if position.net_pos == 0 or position.avg_price is None or mark is None:
            continue
        quoted = quote_mark(position.contract_id) if quote_mark is not None else None
        price, mark_ns, source = (
            (quoted.price, quoted.ts_ns, quoted.source)
            if quoted is not None
            else (mark.price, mark.ts_event, "fill")
        )
        points = position.net_pos * (price - position.avg_price)
        spec = projection.product_of(position.symbol)
        order_id = openers.get((position.account_id, position.symbol), 0)
        rows.append(
            UnrealizedRow(
                account_id=position.account_id,
                symbol=position.symbol,
                contract_id=position.contract_id,
                strategy_id=projection.orders.of(order_id).strategy_id,
                net_pos=position.net_pos,
                avg_price=position.avg_price,
                mark_price=price,
                mark_ns=mark_ns,
                unrealized_pnl=points,
                unrealized_pnl_money=points * spec.point_value if spec is not None else None,
                currency=spec.currency if spec is not None else "",
                mark_source=source,
                mark_age_ms=None if now_ns is None else max(0, now_ns - mark_ns) // 1_000_000,
            )
        )
    return rows


def totals(rows: Sequence[UnrealizedRow], by: UnrealizedBy) -> list[UnrealizedTotal]:
    """Unrealized money grouped by account, contract or strategy (and currency)."""
    sums: dict[tuple[str, str], list[Decimal | int]] = {}
    for row in rows:
        key = (
            str(row.account_id)
            if by == "account"
            else row.symbol
            if by == "contract"
            else row.strategy_id
        )
        total = sums.setdefault((key, row.currency), [Decimal(0), 0, 0, 0])
        total[1] = int(total[1]) + 1
        if row.mark_source != "fill":
            total[3] = int(total[3]) + 1
        if row.unrealized_pnl_money is None:
            total[2] = int(total[2]) + 1
        else:
            total[0] = Decimal(total[0]) + row.unrealized_pnl_money
    return [
        UnrealizedTotal(
            key=key,
            currency=currency,
            unrealized_pnl_money=Decimal(money),
            positions=int(n),
            unpriced_positions=int(u),
            quote_marked_positions=int(q),
        )
        for (key, currency), (money, n, u, q) in sorted(sums.items())
    ]
