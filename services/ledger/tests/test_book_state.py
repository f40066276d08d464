"""The book as snapshot bytes and back (ADR-0122): nothing the projection holds is lost."""

from __future__ import annotations

from decimal import Decimal

import pytest

from phalanx_common.events import FillFees, FillReceived, OrderAccepted, OrderRejected
from phalanx_ledger.book_state import (
    CARRIED,
    Covered,
    SnapshotUnreadable,
    capture,
    decode_book,
    encode_book,
    restore,
)
from phalanx_ledger.pnl import fill_rows, pnl_rows
from phalanx_ledger.position_views import strategy_positions
from phalanx_ledger.projection import PositionsProjection


def _fill(fill_id: int, order_id: int, account_id: int, action: str, price: str) -> FillReceived:
    return FillReceived(
        event_id=f"f{fill_id}",
        ts_event=1_764_514_800_000_000_000 + fill_id,
        ts_init=fill_id,
        fill_id=fill_id,
        order_id=order_id,
        account_id=account_id,
        contract_id=1,
        symbol="MNQZ6" if fill_id % 3 else "XYZZ6",
        action="Buy" if action == "Buy" else "Sell",
        qty=1 + fill_id % 2,
        price=Decimal(price),
    )


def _fees(fill_id: int, account_id: int, total: str) -> FillFees:
    return FillFees(
        event_id=f"fee{fill_id}",
        ts_event=1,
        ts_init=1,
        fill_id=fill_id,
        account_id=account_id,
        currency="USD",
        total=Decimal(total),
        commission=Decimal(total),
    )


def _accepted(order_id: int, account_id: int) -> OrderAccepted:
    return OrderAccepted(
        event_id=f"a{order_id}",
        ts_event=1,
        ts_init=1,
        intent_id=f"i{order_id}",
        signal_id=f"s{order_id}",
        strategy_id="trend",
        account_id=account_id,
        login_id="l",
        symbol="MNQZ6",
        order_id=order_id,
        oso1_id=order_id + 1,
    )


def _busy_projection() -> PositionsProjection:
    projection = PositionsProjection()
    projection.apply_order(_accepted(10, 1))
    projection.apply_order(
        OrderRejected(
            event_id="r",
            ts_event=1,
            ts_init=1,
            intent_id="ir",
            signal_id="sr",
            strategy_id="trend",
            account_id=2,
            login_id="l",
            reason="risk",
        )
    )
    for n, (order, account, action, price) in enumerate(
        [
            (10, 1, "Buy", "21000"),
            (11, 1, "Sell", "21010.25"),
            (20, 2, "Sell", "20990"),
            (21, 2, "Buy", "20980"),
            (30, 0, "Buy", "21000"),  # held: account unknown
            (10, 1, "Buy", "21001"),
        ],
        start=1,
    ):
        projection.apply_fill(_fill(n, order, account, action, price))
    projection.apply_fill(_fill(2, 11, 1, "Sell", "21010.25"))  # duplicate
    projection.apply_fees(_fees(1, 1, "0.74"))  # the venue's fees of two fills (ADR-0127)
    projection.apply_fees(_fees(3, 2, "1.48"))
    return projection


def _everything(projection: PositionsProjection) -> object:
    return (
        projection.positions(),
        [projection.order_counts(a) for a in (1, 2)],
        fill_rows(projection),
        [pnl_rows(projection, by) for by in ("day", "strategy", "account")],
        strategy_positions(projection),
        projection.fills_applied,
        projection.duplicate_fills,
        projection.unattributed_fills,
        projection.fees,
        [projection.fills_without_fees(a) for a in (1, 2, 3)],
    )


def test_the_snapshot_carries_every_attribute_of_the_projection() -> None:
    """An attribute added to the projection must be added to the snapshot (or listed)."""
    assert set(vars(PositionsProjection())) == CARRIED


def test_a_restored_book_answers_and_continues_like_the_original() -> None:
    original = _busy_projection()
    data = encode_book(capture(original, Covered(fills_seq=7, orders_seq=2), 5), level=6)
    state = decode_book(data)
    assert state.covered == Covered(fills_seq=7, orders_seq=2)
    copy = PositionsProjection()
    restore(state, copy)
    assert _everything(copy) == _everything(original)
    # continuing: the held fill is released, a known fill is a duplicate, a new one counts
    for projection in (original, copy):
        projection.apply_order(_accepted(30, 3))
        assert not projection.apply_fill(_fill(4, 21, 2, "Buy", "20980"))
        assert projection.apply_fill(_fill(9, 31, 3, "Sell", "21005"))
        assert projection.apply_fees(_fees(9, 3, "0.37"))
        assert not projection.apply_fees(_fees(1, 1, "0.74"))  # reported before the snapshot
    assert _everything(copy) == _everything(original)


def test_restore_refuses_a_projection_that_holds_something() -> None:
    state = capture(_busy_projection(), Covered(), 0)
    with pytest.raises(ValueError, match="fresh"):
        restore(state, _busy_projection())


@pytest.mark.parametrize(
    "data",
    [b"", b"PXLB", b"XXXX\x00\x00\x00\x01abc", b"PXLB\x00\x00\x00\x01not zlib"],
    ids=["empty", "header-only-part", "other-magic", "not-compressed"],
)
def test_bytes_that_are_no_snapshot_are_refused(data: bytes) -> None:
    with pytest.raises(SnapshotUnreadable):
        decode_book(data)
