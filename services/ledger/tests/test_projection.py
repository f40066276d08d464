"""The positions projection on its own: averaging, realized P&L, reversal, deduplication."""

from __future__ import annotations

from decimal import Decimal

import msgspec

from phalanx_common.events import FillReceived, OrderAccepted, OrderRejected
from phalanx_ledger.projection import OrderCounts, PositionsProjection


def fill(
    fill_id: int, action: str, qty: int, price: str, account_id: int = 1, symbol: str = "MNQZ5"
) -> FillReceived:
    return FillReceived(
        event_id=f"e{fill_id}",
        ts_event=fill_id * 1000,
        ts_init=fill_id * 1000,
        fill_id=fill_id,
        order_id=fill_id + 500,
        account_id=account_id,
        contract_id=42,
        symbol=symbol,
        action="Buy" if action == "Buy" else "Sell",
        qty=qty,
        price=Decimal(price),
    )


def test_buys_average_in_and_a_partial_sell_realizes_points() -> None:
    projection = PositionsProjection()
    projection.apply_fill(fill(1, "Buy", 1, "100"))
    projection.apply_fill(fill(2, "Buy", 3, "104"))
    projection.apply_fill(fill(3, "Sell", 2, "110"))

    (position,) = projection.positions()
    assert position.net_pos == 2
    assert position.avg_price == Decimal("103")
    assert position.realized_pnl == Decimal("14")  # 2 * (110 - 103)
    assert (position.fill_count, position.bought, position.sold) == (3, 4, 2)
    assert position.last_fill_id == 3
    assert position.updated_ns == 3000


def test_short_then_cover_at_a_loss_and_flat_has_no_average() -> None:
    projection = PositionsProjection()
    projection.apply_fill(fill(1, "Sell", 2, "200.25"))
    projection.apply_fill(fill(2, "Buy", 2, "201.50"))

    (position,) = projection.positions()
    assert position.net_pos == 0
    assert position.avg_price is None
    assert position.realized_pnl == Decimal("-2.50")


def test_a_reversing_fill_closes_then_opens_at_its_price() -> None:
    projection = PositionsProjection()
    projection.apply_fill(fill(1, "Buy", 2, "50"))
    projection.apply_fill(fill(2, "Sell", 5, "48"))

    (position,) = projection.positions()
    assert position.net_pos == -3
    assert position.avg_price == Decimal("48")
    assert position.realized_pnl == Decimal("-4")
    projection.apply_fill(fill(3, "Buy", 3, "45"))
    (position,) = projection.positions()
    assert position.net_pos == 0
    assert position.realized_pnl == Decimal("5")  # -4 + 3 * (48 - 45)


def test_the_same_fill_id_counts_once() -> None:
    projection = PositionsProjection()
    assert projection.apply_fill(fill(7, "Buy", 1, "10")) is True
    assert projection.apply_fill(fill(7, "Buy", 1, "10")) is False

    (position,) = projection.positions()
    assert position.net_pos == 1
    assert position.fill_count == 1
    assert (projection.fills_applied, projection.duplicate_fills) == (1, 1)


def test_positions_are_per_account_and_symbol() -> None:
    projection = PositionsProjection()
    projection.apply_fill(fill(1, "Buy", 1, "10", account_id=2))
    projection.apply_fill(fill(2, "Sell", 1, "10", account_id=1))
    projection.apply_fill(fill(3, "Buy", 4, "20", account_id=1, symbol="ESZ5"))

    assert [(p.account_id, p.symbol, p.net_pos) for p in projection.positions()] == [
        (1, "ESZ5", 4),
        (1, "MNQZ5", -1),
        (2, "MNQZ5", 1),
    ]
    assert [p.account_id for p in projection.positions(2)] == [2]
    assert projection.positions(3) == []
    assert projection.accounts() == [1, 2]


def test_order_outcomes_count_once_per_intent_and_account() -> None:
    projection = PositionsProjection()
    accepted = OrderAccepted(
        event_id="a", ts_event=1, ts_init=1, intent_id="s1-1", signal_id="s1",
        strategy_id="st", account_id=1, login_id="l", symbol="MNQZ5", order_id=9,
    )  # fmt: skip
    rejected = OrderRejected(
        event_id="r", ts_event=1, ts_init=1, intent_id="s1-2", signal_id="s1",
        strategy_id="st", account_id=2, login_id="l", reason="risk",
    )  # fmt: skip

    assert projection.apply_order(accepted) is True
    assert projection.apply_order(accepted) is False
    assert projection.apply_order(rejected) is True

    assert projection.order_counts(1) == OrderCounts(accepted=1, rejected=0)
    assert projection.order_counts(2) == OrderCounts(accepted=0, rejected=1)
    assert projection.order_counts(3) == OrderCounts()


def test_an_unattributed_fill_is_held_until_an_accepted_order_names_its_account() -> None:
    projection = PositionsProjection()
    stray = fill(7, "Buy", 2, "100", account_id=0)  # order 507: its account was not known
    assert projection.apply_fill(stray) is True
    assert projection.positions() == []
    assert projection.unattributed_fills == 1

    accepted = OrderAccepted(
        event_id="a", ts_event=1, ts_init=1, intent_id="s1-3", signal_id="s1",
        strategy_id="st", account_id=3, login_id="l", symbol="MNQZ5", order_id=1, oso1_id=507,
    )  # fmt: skip
    projection.apply_order(accepted)

    (position,) = projection.positions()
    assert (position.account_id, position.net_pos) == (3, 2)
    assert projection.unattributed_fills == 0
    assert projection.apply_fill(stray) is False  # still deduplicated by fill id
    later = msgspec.structs.replace(fill(8, "Sell", 1, "101", account_id=0), order_id=507)
    projection.apply_fill(later)  # the order's account is known now: applied at once
    assert projection.positions()[0].net_pos == 1
