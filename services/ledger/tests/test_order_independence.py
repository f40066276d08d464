"""Property: any prefix of a fill stream, duplicated and reordered, gives the same book.

Average-cost accounting is not order-independent in ``avg_price`` and ``realized_pnl`` taken
apart (selling before buying realizes at a different entry). What must be equal, and is checked
here (ADR-0121): per position ``net_pos``, ``bought``, ``sold``, ``fill_count``; the fills
counted once each; and the total P&L at any mark price, ``realized + net_pos * (mark - avg)``,
which equals the fills' cash flow ``sum(sells) - sum(buys) + net_pos * mark`` whatever the
order. Duplicates alone (order kept) change nothing at all.
"""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from phalanx_common.events import FillReceived
from phalanx_ledger.projection import PositionsProjection, PositionView

TOLERANCE = Decimal("1e-12")  # averages are 28-digit decimals, not exact fractions
MARK = Decimal("21000")


@st.composite
def fill_streams(draw: st.DrawFn) -> tuple[list[FillReceived], list[FillReceived]]:
    """A fill history, and a prefix of it delivered with duplicates in any order."""
    count = draw(st.integers(min_value=1, max_value=25))
    history = [
        FillReceived(
            event_id=f"e{n}",
            ts_event=n,
            ts_init=n,
            fill_id=n + 1,
            order_id=1000 + n,
            account_id=draw(st.sampled_from([1, 2])),
            contract_id=42,
            symbol=draw(st.sampled_from(["MNQZ6", "ESZ6"])),
            action=draw(st.sampled_from(["Buy", "Sell"])),
            qty=draw(st.integers(min_value=1, max_value=4)),
            price=Decimal(draw(st.integers(min_value=83_960, max_value=84_040))) / 4,
        )
        for n in range(count)
    ]
    prefix = history[: draw(st.integers(min_value=0, max_value=count))]
    duplicates = draw(st.lists(st.sampled_from(prefix), max_size=10)) if prefix else []
    delivered = draw(st.permutations(prefix + duplicates))
    return prefix, delivered


def _book(fills: list[FillReceived]) -> PositionsProjection:
    projection = PositionsProjection()
    for fill in fills:
        projection.apply_fill(fill)
    return projection


def _at_mark(position: PositionView) -> Decimal:
    open_pnl = position.net_pos * (MARK - position.avg_price) if position.avg_price else 0
    return position.realized_pnl + open_pnl


def _cash_flow(fills: list[FillReceived], account_id: int, symbol: str) -> Decimal:
    total = Decimal(0)
    net = 0
    for fill in fills:
        if (fill.account_id, fill.symbol) == (account_id, symbol):
            sign = 1 if fill.action == "Sell" else -1
            total += sign * fill.qty * fill.price
            net -= sign * fill.qty
    return total + net * MARK


@settings(max_examples=200, deadline=None)
@given(fill_streams())
def test_a_prefix_with_duplicates_and_reorderings_gives_the_same_book(
    streams: tuple[list[FillReceived], list[FillReceived]],
) -> None:
    prefix, delivered = streams
    in_order, scrambled = _book(prefix), _book(delivered)

    assert scrambled.fills_applied == in_order.fills_applied == len(prefix)
    assert scrambled.duplicate_fills == len(delivered) - len(prefix)
    expected = {(p.account_id, p.symbol): p for p in in_order.positions()}
    got = {(p.account_id, p.symbol): p for p in scrambled.positions()}
    assert got.keys() == expected.keys()
    for key, position in got.items():
        want = expected[key]
        assert (position.net_pos, position.bought, position.sold, position.fill_count) == (
            want.net_pos,
            want.bought,
            want.sold,
            want.fill_count,
        )
        cash = _cash_flow(prefix, *key)
        assert abs(_at_mark(position) - cash) < TOLERANCE
        assert abs(_at_mark(want) - cash) < TOLERANCE


@settings(max_examples=100, deadline=None)
@given(fill_streams())
def test_duplicates_in_stream_order_change_nothing(
    streams: tuple[list[FillReceived], list[FillReceived]],
) -> None:
    prefix, delivered = streams
    redelivered: list[FillReceived] = []
    for fill in prefix:  # every fill, then again whatever copies the stream drew of it
        redelivered += [fill, *[d for d in delivered if d.fill_id == fill.fill_id][1:]]
    assert _book(redelivered).positions() == _book(prefix).positions()
