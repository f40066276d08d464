"""The fill index answers the admin queries as sorting every fill would (ADR-0123)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from phalanx_common.events import FillReceived, OrderAccepted
from phalanx_ledger.fill_index import FillIndex, MoneyTotal, OrderSum
from phalanx_ledger.pnl import FillRow, PnlBy, _row, fill_rows, pnl_rows
from phalanx_ledger.projection import PositionsProjection

DAY_NS = 86_400 * 1_000_000_000
T0 = 1_764_460_800 * 1_000_000_000  # 2025-11-30T00:00Z


@st.composite
def books(draw: st.DrawFn) -> PositionsProjection:
    """Fills arriving out of time order over three days, some orders accepted late."""
    projection = PositionsProjection()
    count = draw(st.integers(min_value=0, max_value=40))
    accept_at = draw(st.integers(min_value=0, max_value=count))
    for n in range(count):
        if n == accept_at:
            for order_id, strategy in ((100, "trend"), (200, "meanrev")):
                projection.apply_order(
                    OrderAccepted(
                        event_id=f"a{order_id}",
                        ts_event=0,
                        ts_init=0,
                        intent_id=f"i{order_id}",
                        signal_id=f"s{order_id}",
                        strategy_id=strategy,
                        account_id=order_id // 100,
                        login_id="l",
                        symbol="MNQZ6",
                        order_id=order_id,
                        oso1_id=order_id + 1,
                    )
                )
        order_id = draw(st.sampled_from([100, 101, 200, 201, 900]))
        projection.apply_fill(
            FillReceived(
                event_id=f"f{n}",
                ts_event=T0 + draw(st.integers(min_value=0, max_value=3 * DAY_NS // 10**9)) * 10**9,
                ts_init=n,
                fill_id=draw(st.integers(min_value=1, max_value=10_000)),
                order_id=order_id,
                account_id=1 if order_id in (100, 101, 900) else 2,
                contract_id=1,
                symbol=draw(st.sampled_from(["MNQZ6", "ESZ6", "XYZZ6"])),
                action=draw(st.sampled_from(["Buy", "Sell"])),
                qty=draw(st.integers(min_value=1, max_value=3)),
                price=Decimal(draw(st.integers(min_value=20_000, max_value=20_010))),
            )
        )
    return projection


def _sorted_rows(projection: PositionsProjection) -> list[FillRow]:
    """The former way: build every row and sort them."""
    return sorted(
        (_row(projection, applied) for applied in projection.applied),
        key=lambda row: (row.ts_event, row.fill_id),
    )


@settings(max_examples=60, deadline=None)
@given(
    book=books(),
    account_id=st.sampled_from([None, 1, 2, 3]),
    strategy_id=st.sampled_from([None, "trend", "meanrev", "outside", "none"]),
    since_s=st.none() | st.integers(min_value=0, max_value=3 * 86_400),
    limit=st.none() | st.integers(min_value=1, max_value=7),
)
def test_pages_match_sorting_and_filtering_every_fill(
    book: PositionsProjection,
    account_id: int | None,
    strategy_id: str | None,
    since_s: int | None,
    limit: int | None,
) -> None:
    since_ns = None if since_s is None else T0 + since_s * 10**9
    expected = [
        row
        for row in _sorted_rows(book)
        if (account_id is None or row.account_id == account_id)
        and (strategy_id is None or row.strategy_id == strategy_id)
        and (since_ns is None or row.ts_event >= since_ns)
    ]
    pages: list[FillRow] = []
    cursor: str | None = None
    for _ in range(100):
        page, cursor = fill_rows(
            book,
            account_id=account_id,
            strategy_id=strategy_id,
            since_ns=since_ns,
            cursor=cursor,
            limit=limit,
        )
        pages += page
        if limit is not None:
            assert len(page) <= limit
        if cursor is None:
            break
    assert pages == expected


@settings(max_examples=40, deadline=None)
@given(book=books())
def test_pnl_totals_match_summing_every_fill(book: PositionsProjection) -> None:
    groupings: tuple[PnlBy, ...] = ("day", "strategy", "account")
    for by in groupings:
        totals: dict[tuple[str, str], tuple[Decimal, int, int]] = {}
        for row in _sorted_rows(book):
            key = {"day": row.day, "strategy": row.strategy_id}.get(by, str(row.account_id))
            money, fills, unpriced = totals.get((key, row.currency), (Decimal(0), 0, 0))
            totals[(key, row.currency)] = (
                money + (row.realized_pnl_money or 0),
                fills + 1,
                unpriced + (row.realized_pnl_money is None),
            )
        got = pnl_rows(book, by)
        assert [
            (r.key, r.currency, r.realized_pnl_money, r.fills, r.unpriced_fills) for r in got
        ] == [(key, currency, *values) for (key, currency), values in sorted(totals.items())]


def _totals(totals: dict[Any, MoneyTotal]) -> dict[Any, tuple[Decimal, int, int]]:
    return {key: (t.money, t.fills, t.unpriced) for key, t in totals.items()}


@settings(max_examples=40, deadline=None)
@given(book=books())
def test_an_index_built_at_once_equals_one_built_fill_by_fill(book: PositionsProjection) -> None:
    """What a snapshot's restore builds (``extend``) is what the live ``add`` built."""
    at_once = FillIndex()
    at_once.extend(book.applied)
    live = book.index
    assert list(at_once.all.after(None, None)) == list(live.all.after(None, None))
    for account_id in (1, 2, 3):
        assert list(at_once.of_account(account_id).after(None, None)) == list(
            live.of_account(account_id).after(None, None)
        )
    orders = {100, 101, 200, 201, 900}
    assert list(at_once.of_orders(orders).after(None, None)) == list(
        live.of_orders(orders).after(None, None)
    )
    assert _totals(at_once.by_day) == _totals(live.by_day)
    assert _totals(at_once.by_account) == _totals(live.by_account)
    assert {k: vars_of(o) for k, o in at_once.order_sums.items()} == {
        k: vars_of(o) for k, o in live.order_sums.items()
    }


def vars_of(order: OrderSum) -> tuple[object, ...]:
    return tuple(getattr(order, name) for name in OrderSum.__slots__)
