"""Fills and realized P&L as the admin API reports them (ADR-0120; pure, no I/O).

Each applied fill carries the P&L it realized on its (account, contract) position, in points
and in money (point value and currency of its product). A fill's strategy is looked up through
its order (:mod:`phalanx_ledger.attribution`); its day is the UTC date of ``ts_event``. P&L
realized by a closing fill belongs to the closing fill's strategy and day: a bracket leg
closing an entry is that entry's strategy, an exit the trader placed by hand is ``outside``.
Money is summed per currency; fills of products missing from the contract table count in
``unpriced_fills`` and add no money. Commissions and fees are the venue's ``fillFee`` of each
fill, once the ledger's reconciliation fetched it (ADR-0127); a fill without them yet counts
in ``fills_without_fees``.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Any, Literal

import msgspec

from phalanx_ledger.projection import AppliedFill, PositionsProjection

__all__ = ["FillRow", "PnlBy", "PnlRow", "fill_rows", "pnl_rows", "to_csv"]

PnlBy = Literal["day", "strategy", "account"]


class FillRow(msgspec.Struct, frozen=True, kw_only=True):
    """One fill with its attribution and the P&L it realized."""

    fill_id: int
    order_id: int
    account_id: int
    symbol: str
    contract_id: int
    action: str
    qty: int
    price: Decimal
    ts_event: int
    time: str  # ISO 8601, UTC
    day: str  # YYYY-MM-DD, UTC
    realized_pnl: Decimal  # price points * contracts
    realized_pnl_money: Decimal | None
    currency: str
    strategy_id: str
    signal_id: str
    intent_id: str
    leg: str
    fees_money: Decimal | None = None  # the venue's fillFee total; null: not reported (yet)
    fee_currency: str = ""


class PnlRow(msgspec.Struct, frozen=True, kw_only=True):
    """Realized P&L of one group (a day, a strategy or an account) in one currency."""

    key: str
    currency: str
    realized_pnl_money: Decimal
    fills: int
    unpriced_fills: int
    fees_money: Decimal = Decimal(0)  # commissions and fees the venue reported (ADR-0127)
    net_pnl_money: Decimal = Decimal(0)  # realized_pnl_money - fees_money
    fills_without_fees: int = 0


def _utc(ts_ns: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(ts_ns / 1e9, tz=dt.UTC)


def _row(projection: PositionsProjection, applied: AppliedFill) -> FillRow:
    fill = applied.fill
    who = projection.orders.of(fill.order_id)
    fees = projection.fees.get(fill.fill_id)
    moment = _utc(fill.ts_event)
    return FillRow(
        fill_id=fill.fill_id,
        order_id=fill.order_id,
        account_id=fill.account_id,
        symbol=fill.symbol,
        contract_id=fill.contract_id,
        action=fill.action,
        qty=fill.qty,
        price=fill.price,
        ts_event=fill.ts_event,
        time=moment.isoformat(),
        day=moment.date().isoformat(),
        realized_pnl=applied.realized_pnl,
        realized_pnl_money=applied.realized_pnl_money,
        currency=applied.currency,
        strategy_id=who.strategy_id,
        signal_id=who.signal_id,
        intent_id=who.intent_id,
        leg=who.leg,
        fees_money=fees.total if fees is not None else None,
        fee_currency=fees.currency if fees is not None else "",
    )


def _cursor(row: FillRow) -> str:
    return f"{row.ts_event}.{row.fill_id}"


def _parse_cursor(cursor: str) -> tuple[int, int]:
    ts, _, fill_id = cursor.partition(".")
    return int(ts), int(fill_id)


def fill_rows(
    projection: PositionsProjection,
    *,
    account_id: int | None = None,
    strategy_id: str | None = None,
    since_ns: int | None = None,
    cursor: str | None = None,
    limit: int | None = None,
) -> tuple[list[FillRow], str | None]:
    """Fills ordered by (``ts_event``, ``fill_id``), filtered; and the cursor of the next page.

    Raises:
        ValueError: a malformed cursor.
    """
    after = _parse_cursor(cursor) if cursor else None
    rows = sorted(
        (_row(projection, applied) for applied in projection.applied),
        key=lambda row: (row.ts_event, row.fill_id),
    )
    selected = [
        row
        for row in rows
        if (account_id is None or row.account_id == account_id)
        and (strategy_id is None or row.strategy_id == strategy_id)
        and (since_ns is None or row.ts_event >= since_ns)
        and (after is None or (row.ts_event, row.fill_id) > after)
    ]
    if limit is not None and len(selected) > limit:
        page = selected[:limit]
        return page, _cursor(page[-1])
    return selected, None


def pnl_rows(projection: PositionsProjection, by: PnlBy) -> list[PnlRow]:
    """Realized P&L and fees in money grouped ``by`` day, strategy or account (and currency).

    A fill's fees count in their own currency (usually the product's); net = realized - fees.
    """
    totals: dict[tuple[str, str], list[Any]] = {}
    rows, _ = fill_rows(projection)
    for row in rows:
        key = (
            row.day if by == "day" else row.strategy_id if by == "strategy" else str(row.account_id)
        )
        total = totals.setdefault((key, row.currency), [Decimal(0), 0, 0, Decimal(0), 0])
        total[1] += 1
        if row.realized_pnl_money is None:
            total[2] += 1
        else:
            total[0] += row.realized_pnl_money
        if row.fees_money is None:
            total[4] += 1
        else:
            paid = totals.setdefault((key, row.fee_currency), [Decimal(0), 0, 0, Decimal(0), 0])
            paid[3] += row.fees_money
    return [
        PnlRow(
            key=key,
            currency=currency,
            realized_pnl_money=money,
            fills=n,
            unpriced_fills=u,
            fees_money=fees,
            net_pnl_money=money - fees,
            fills_without_fees=w,
        )
        for (key, currency), (money, n, u, fees, w) in sorted(totals.items())
    ]


def to_csv(rows: Sequence[msgspec.Struct], fields: Iterable[str]) -> str:
    """Rows as CSV with a header line (decimals as plain strings, ``None`` as empty)."""
    names = list(fields)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(names)
    for row in rows:
        values = [getattr(row, name) for name in names]
        writer.writerow(["" if value is None else str(value) for value in values])
    return out.getvalue()
