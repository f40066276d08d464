"""Realized P&L in money, attribution of fills to strategies, and P&L by day/strategy/account."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from phalanx_common.events import FillReceived, OrderAccepted
from phalanx_ledger.pnl import fill_rows, pnl_rows, to_csv
from phalanx_ledger.projection import PositionsProjection

DAY1 = int(dt.datetime(2026, 11, 30, 14, 0, tzinfo=dt.UTC).timestamp()) * 1_000_000_000
DAY2 = int(dt.datetime(2026, 12, 1, 14, 0, tzinfo=dt.UTC).timestamp()) * 1_000_000_000


def fill(
    fill_id: int,
    order_id: int,
    action: str,
    qty: int,
    price: str,
    *,
    account_id: int = 1,
    symbol: str = "MNQZ6",
    ts: int = DAY1,
) -> FillReceived:
    return FillReceived(
        event_id=f"e{fill_id}",
        ts_event=ts + fill_id,
        ts_init=ts + fill_id,
        fill_id=fill_id,
        order_id=order_id,
        account_id=account_id,
        contract_id=42,
        symbol=symbol,
        action="Buy" if action == "Buy" else "Sell",
        qty=qty,
        price=Decimal(price),
    )


def accepted(
    order_id: int, strategy_id: str, *, account_id: int = 1, oso1: int | None = None
) -> OrderAccepted:
    signal_id = f"s-{strategy_id}-{order_id}"
    return OrderAccepted(
        event_id=f"acc-{order_id}",
        ts_event=DAY1,
        ts_init=DAY1,
        intent_id=f"{signal_id}-{account_id}",
        signal_id=signal_id,
        strategy_id=strategy_id,
        account_id=account_id,
        login_id="login",
        symbol="MNQZ6",
        order_id=order_id,
        oso1_id=oso1,
    )


def test_mnq_round_trip_realizes_points_times_two_dollars() -> None:
    projection = PositionsProjection()
    projection.apply_fill(fill(1, 100, "Buy", 2, "21000"))
    projection.apply_fill(fill(2, 101, "Sell", 2, "21010"))

    (position,) = projection.positions()
    points = (Decimal(21010) - Decimal(21000)) * 2  # 20 points over two contracts
    assert position.realized_pnl == points
    assert position.realized_pnl_money == points * 2  # MNQ: $2 a point -> $40
    assert position.realized_pnl_money == Decimal(40)
    assert position.currency == "USD"


def test_point_value_is_the_products_es_is_fifty_dollars() -> None:
    projection = PositionsProjection()
    projection.apply_fill(fill(1, 100, "Sell", 1, "6000.25", symbol="ESZ6"))
    projection.apply_fill(fill(2, 101, "Buy", 1, "5990", symbol="ESZ6"))

    (position,) = projection.positions()
    assert position.realized_pnl == Decimal("10.25")  # short: entry - exit
    assert position.realized_pnl_money == Decimal("10.25") * 50  # $512.50


def test_unknown_product_keeps_points_and_has_no_money() -> None:
    projection = PositionsProjection()
    projection.apply_fill(fill(1, 100, "Buy", 1, "10", symbol="ZZZZ6"))
    projection.apply_fill(fill(2, 101, "Sell", 1, "12", symbol="ZZZZ6"))

    (position,) = projection.positions()
    assert position.realized_pnl == Decimal(2)
    assert position.realized_pnl_money is None
    (row,) = pnl_rows(projection, "account")
    assert (row.realized_pnl_money, row.fills, row.unpriced_fills) == (Decimal(0), 2, 2)


def test_fills_are_attributed_through_the_order_and_legs_to_their_entry() -> None:
    projection = PositionsProjection()
    projection.apply_fill(fill(1, 100, "Buy", 1, "21000"))  # entry, before its acceptance
    projection.apply_order(accepted(100, "trend", oso1=200))
    projection.apply_fill(fill(2, 200, "Sell", 1, "21005"))  # take-profit leg
    projection.apply_fill(fill(3, 999, "Buy", 1, "21000"))  # a manual order

    rows, _ = fill_rows(projection)
    assert [(r.strategy_id, r.leg) for r in rows] == [
        ("trend", "entry"),
        ("trend", "oso1"),
        ("outside", "outside"),
    ]
    assert rows[1].intent_id == "s-trend-100-1"
    assert rows[1].realized_pnl_money == Decimal(5) * 2


def test_pnl_by_strategy_and_utc_day() -> None:
    projection = PositionsProjection()
    projection.apply_order(accepted(100, "trend"))
    projection.apply_order(accepted(101, "trend"))
    projection.apply_order(accepted(102, "revert"))
    projection.apply_order(accepted(103, "revert"))
    # trend, day 1: long 1 at 21000, out at 21020 -> 20 points * $2 = $40
    projection.apply_fill(fill(1, 100, "Buy", 1, "21000"))
    projection.apply_fill(fill(2, 101, "Sell", 1, "21020"))
    # revert, day 2 (account 2): short 3 at 21050, covered at 21060 -> -10 * 3 * $2 = -$60
    projection.apply_fill(fill(3, 102, "Sell", 3, "21050", account_id=2, ts=DAY2))
    projection.apply_fill(fill(4, 103, "Buy", 3, "21060", account_id=2, ts=DAY2))

    by_strategy = {r.key: r.realized_pnl_money for r in pnl_rows(projection, "strategy")}
    assert by_strategy == {"trend": Decimal(20 * 2), "revert": Decimal(-10 * 3 * 2)}
    by_day = {r.key: r.realized_pnl_money for r in pnl_rows(projection, "day")}
    assert by_day == {"2026-11-30": Decimal(40), "2026-12-01": Decimal(-60)}
    by_account = {r.key: r.realized_pnl_money for r in pnl_rows(projection, "account")}
    assert by_account == {"1": Decimal(40), "2": Decimal(-60)}


def test_fill_pages_follow_the_cursor_without_gaps_or_repeats() -> None:
    projection = PositionsProjection()
    for n in range(1, 8):
        projection.apply_fill(fill(n, 100 + n, "Buy" if n % 2 else "Sell", 1, "21000"))
    seen: list[int] = []
    cursor: str | None = None
    pages = 0
    while True:
        page, cursor = fill_rows(projection, limit=3, cursor=cursor)
        seen += [row.fill_id for row in page]
        pages += 1
        if cursor is None:
            break
    assert seen == list(range(1, 8))
    assert pages == 3


def test_csv_has_a_header_and_one_line_per_row() -> None:
    projection = PositionsProjection()
    projection.apply_fill(fill(1, 100, "Buy", 2, "21000"))
    projection.apply_fill(fill(2, 101, "Sell", 2, "21010"))
    text = to_csv(pnl_rows(projection, "day"), ["key", "currency", "realized_pnl_money"])
    assert text.splitlines() == ["key,currency,realized_pnl_money", "2026-11-30,USD,40"]
