"""Unrealized P&L at the last traded price, and whose it is (pure)."""

from __future__ import annotations

from decimal import Decimal

from phalanx_common.events import FillReceived, OrderAccepted
from phalanx_ledger.projection import PositionsProjection
from phalanx_ledger.unrealized import totals, unrealized


def _fill(
    fill_id: int,
    order_id: int,
    account: int,
    action: str,
    qty: int,
    price: str,
    symbol: str = "MNQZ6",
) -> FillReceived:
    return FillReceived(
        event_id=f"f{fill_id}",
        ts_event=fill_id,
        ts_init=fill_id,
        fill_id=fill_id,
        order_id=order_id,
        account_id=account,
        contract_id=42,
        symbol=symbol,
        action="Buy" if action == "Buy" else "Sell",
        qty=qty,
        price=Decimal(price),
    )


def _accepted(order_id: int, account: int, strategy: str) -> OrderAccepted:
    return OrderAccepted(
        event_id=f"a{order_id}", ts_event=0, ts_init=0, intent_id=f"i{order_id}",
        signal_id=f"s{order_id}", strategy_id=strategy, account_id=account, login_id="l",
        symbol="MNQZ6", order_id=order_id,
    )  # fmt: skip


def test_open_positions_are_marked_at_the_latest_fill_and_belong_to_their_opener() -> None:
    book = PositionsProjection()
    book.apply_order(_accepted(500, 1, "trend"))
    book.apply_order(_accepted(600, 2, "scalp"))
    book.apply_fill(_fill(1, 500, 1, "Buy", 2, "21000"))  # trend opens long 2 on account 1
    book.apply_fill(_fill(2, 600, 2, "Sell", 1, "21010"))  # scalp opens short 1 on account 2
    book.apply_fill(_fill(3, 900, 1, "Buy", 1, "21030"))  # a manual add: still trend's position
    book.apply_fill(_fill(4, 901, 3, "Buy", 1, "21000", symbol="XYZZ6"))  # unknown product

    rows = {(r.account_id, r.symbol): r for r in unrealized(book)}

    long = rows[(1, "MNQZ6")]
    assert (long.mark_price, long.mark_ns, long.strategy_id) == (Decimal("21030"), 3, "trend")
    assert long.unrealized_pnl == Decimal(3) * (Decimal("21030") - Decimal("21010"))  # 60 points
    assert long.unrealized_pnl_money == Decimal("120")
    assert long.currency == "USD"
    short = rows[(2, "MNQZ6")]
    assert short.unrealized_pnl == Decimal("-20")
    assert short.strategy_id == "scalp"
    assert rows[(3, "XYZZ6")].unrealized_pnl_money is None
    by_strategy = {(t.key, t.currency): t for t in totals(list(rows.values()), "strategy")}
    assert by_strategy[("trend", "USD")].unrealized_pnl_money == Decimal("120")
    assert by_strategy[("scalp", "USD")].unrealized_pnl_money == Decimal("-40")
    assert by_strategy[("outside", "")].unpriced_positions == 1


def test_flat_positions_have_no_unrealized_and_a_reversal_changes_the_owner() -> None:
    book = PositionsProjection()
    book.apply_order(_accepted(500, 1, "trend"))
    book.apply_fill(_fill(1, 500, 1, "Buy", 1, "100"))
    book.apply_fill(_fill(2, 900, 1, "Sell", 1, "101"))
    assert unrealized(book) == []

    book.apply_fill(_fill(3, 500, 1, "Buy", 1, "102"))
    book.apply_fill(_fill(4, 901, 1, "Sell", 3, "103"))  # reversed by hand: short 2 at 103

    (row,) = unrealized(book)
    assert (row.net_pos, row.avg_price, row.strategy_id) == (-2, Decimal("103"), "outside")
