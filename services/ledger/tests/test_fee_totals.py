"""``/admin/pnl``'s fees come from running totals (ADR-0179): whatever order fills, fee reports
and acceptances arrive in (a fee before its fill, a fill held until its order's account is
known, a repeated report, a snapshot restored), the rows equal walking every fee report."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from phalanx_common.events import FillFees, FillReceived, OrderAccepted
from phalanx_ledger.book_state import Covered, capture, restore
from phalanx_ledger.fill_index import utc_day
from phalanx_ledger.pnl import PnlBy, pnl_rows
from phalanx_ledger.projection import PositionsProjection

from .conftest import T0, accepted_order, fill_event

DAY_NS = 86_400 * 1_000_000_000
Event = FillReceived | FillFees | OrderAccepted


def _fee(fill_id: int, account_id: int, total: str, currency: str = "USD") -> FillFees:
    return FillFees(
        event_id=f"fee-{fill_id}-{total}",
        ts_event=T0,
        ts_init=T0,
        fill_id=fill_id,
        account_id=account_id,
        currency=currency,
        total=Decimal(total),
        commission=Decimal(total),
    )


def _events() -> list[Event]:
    """Two accounts, two strategies, three days, an unknown product, a fee in another
    currency, a repeated report, a held fill (no account) and a fill without fees."""
    fills = [
        fill_event(1, 100, 1, "Buy", 1, "21000"),
        fill_event(2, 101, 1, "Sell", 1, "21010", ts_event=T0 + DAY_NS),
        fill_event(3, 200, 2, "Buy", 2, "21000", symbol="ESZ6"),
        fill_event(4, 201, 2, "Sell", 2, "21005", symbol="ESZ6", ts_event=T0 + 2 * DAY_NS),
        fill_event(5, 300, 0, "Buy", 1, "21000"),  # held until order 300 is accepted
        fill_event(6, 400, 1, "Buy", 1, "50", symbol="XXZ6"),  # a product without a price
        fill_event(7, 100, 1, "Buy", 1, "21001"),  # never gets a fee report
    ]
    fees = [
        _fee(1, 1, "0.74"),
        _fee(2, 1, "0.74"),
        _fee(2, 1, "9.99"),  # a repeat: the first report counts
        _fee(3, 2, "2.50"),
        _fee(4, 2, "2.50", currency="EUR"),
        _fee(5, 1, "0.74"),
        _fee(6, 1, "0.10"),
    ]
    accepted = [
        accepted_order(100, 1, "alpha", 101),
        accepted_order(200, 2, "beta", 201),
        accepted_order(300, 1, "beta", 0),
    ]
    return [*fills, *fees, *accepted]


def _apply(projection: PositionsProjection, event: Event) -> None:
    if isinstance(event, FillReceived):
        projection.apply_fill(event)
    elif isinstance(event, FillFees):
        projection.apply_fees(event)
    else:
        projection.apply_order(event)


Sums = tuple[dict[tuple[str, str], Decimal], dict[tuple[str, str], int]]


def _walked(projection: PositionsProjection, by: PnlBy) -> Sums:
    """Fees per (group, fee currency) and the fills with a report per (group, fill
    currency), by walking every fee report (what ``pnl_rows`` did before)."""
    fees: dict[tuple[str, str], Decimal] = {}
    covered: dict[tuple[str, str], int] = {}
    for report in projection.fees.values():
        applied = projection.index.by_fill_id.get(report.fill_id)
        if applied is None:
            continue
        fill = applied.fill
        if by == "day":
            group = utc_day(fill.ts_event)
        elif by == "strategy":
            group = projection.orders.of(fill.order_id).strategy_id
        else:
            group = str(fill.account_id)
        fees[(group, report.currency)] = fees.get((group, report.currency), Decimal(0)) + (
            report.total
        )
        covered[(group, applied.currency)] = covered.get((group, applied.currency), 0) + 1
    return fees, covered


def _from_rows(projection: PositionsProjection, by: PnlBy) -> Sums:
    fees: dict[tuple[str, str], Decimal] = {}
    covered: dict[tuple[str, str], int] = {}
    for row in pnl_rows(projection, by):
        if row.fees_money:
            fees[(row.key, row.currency)] = row.fees_money
        if row.fills - row.fills_without_fees:
            covered[(row.key, row.currency)] = row.fills - row.fills_without_fees
    return fees, covered


@settings(max_examples=60, deadline=None)
@given(st.permutations(_events()), st.integers(0, len(_events())))
def test_fee_totals_equal_walking_every_report_in_any_order(
    events: list[Event], snapshot_at: int
) -> None:
    projection = PositionsProjection()
    for event in events[:snapshot_at]:
        _apply(projection, event)
    restored = PositionsProjection()
    restore(capture(projection, Covered(), 0), restored)  # a restart from a snapshot part way
    for event in events[snapshot_at:]:
        _apply(restored, event)
    groupings: tuple[PnlBy, ...] = ("day", "strategy", "account")
    for by in groupings:
        assert _from_rows(restored, by) == _walked(restored, by), by
    assert {row.currency for row in pnl_rows(restored, "account")} >= {"USD", "EUR"}
