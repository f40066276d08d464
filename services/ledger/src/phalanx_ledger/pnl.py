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
from typing import Literal

import msgspec

from phalanx_ledger.attribution import OUTSIDE
from phalanx_ledger.fill_index import MoneyTotal, total_of
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

    Served from the projection's :class:`~phalanx_ledger.fill_index.FillIndex` (ADR-0123): a
    binary search finds the first fill after ``since``/``cursor`` among the account's fills (or
    the strategy's orders' fills, or all), and the walk stops after ``limit`` + 1 matches.

    Raises:
        ValueError: a malformed cursor.
    """
    after = _parse_cursor(cursor) if cursor else None
    index = projection.index
    if account_id is not None:
        source = index.of_account(account_id)
    elif strategy_id is not None and strategy_id != OUTSIDE:
        source = index.of_orders(projection.orders.orders_of(strategy_id))
    else:
        source = index.all
    selected: list[FillRow] = []
    for applied in source.after(since_ns, after):
        if strategy_id is not None and (
            projection.orders.of(applied.fill.order_id).strategy_id != strategy_id
        ):
            continue
        if limit is not None and len(selected) == limit:
            return selected, _cursor(selected[-1])
        selected.append(_row(projection, applied))
    return selected, None


def pnl_rows(projection: PositionsProjection, by: PnlBy) -> list[PnlRow]:
    """Realized P&L and fees in money grouped ``by`` day, strategy or account (and currency).

    Day and account read the index's running totals; strategy adds up the totals of each
    venue order under its attribution (looked up now: an order's acceptance may come late).
    The totals carry the fees too (counted as each report or fill arrives), so a query never
    walks the fee reports.
    A fill's fees count in their own currency (usually the product's) in the fill's group;
    net = realized - fees; ``fills_without_fees`` are the group's fills no fee report covers.
    """
    index = projection.index
    totals: dict[tuple[str, str], MoneyTotal] = {}
    if by == "strategy":
        for (order_id, _, _), order in index.order_sums.items():
            key = (projection.orders.of(order_id).strategy_id, order.currency)
            total_of(totals, key).add_order(order)
    else:
        source: Iterable[tuple[tuple[str, str], MoneyTotal]] = (
            index.by_day.items()
            if by == "day"
            else (((str(a), c), t) for (a, c), t in index.by_account.items())
        )
        for key, total in source:
            total_of(totals, key).merge(total)
    fees: dict[tuple[str, str], Decimal] = {}  # by the fees' own currency
    for (group, _), total in totals.items():
        for currency, amount in total.fees.items():
            fees[(group, currency)] = fees.get((group, currency), Decimal(0)) + amount
    rows: list[PnlRow] = []
    for key in sorted(set(totals) | set(fees)):
        total = totals.get(key) or MoneyTotal()
        paid = fees.get(key, Decimal(0))
        rows.append(
            PnlRow(
                key=key[0],
                currency=key[1],
                realized_pnl_money=total.money,
                fills=total.fills,
                unpriced_fills=total.unpriced,
                fees_money=paid,
                net_pnl_money=total.money - paid,
                fills_without_fees=total.fills - total.covered,
            )
        )
    return rows


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
