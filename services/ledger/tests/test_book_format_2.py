"""A snapshot in the format before ADR-0184 (fills as their events) still restores the book."""

from __future__ import annotations

from pathlib import Path

from phalanx_ledger.book_state import FORMAT_VERSION, Covered, decode_book, restore
from phalanx_ledger.projection import PositionsProjection

from .test_book_state import _accepted, _busy_projection, _everything, _fees, _fill

# Written by the ledger of format 2 from ``_busy_projection()`` (covering FILLS #7, ORDERS #2).
FORMAT_2 = Path(__file__).parent / "data" / "book-format-2.snapshot"


def test_a_format_2_snapshot_restores_the_book_its_events_build_now() -> None:
    data = FORMAT_2.read_bytes()
    assert data[4:8] == (2).to_bytes(4, "big") != FORMAT_VERSION.to_bytes(4, "big")
    state = decode_book(data)
    assert state.covered == Covered(fills_seq=7, orders_seq=2)
    restored = PositionsProjection()
    restore(state, restored)
    rebuilt = _busy_projection()
    assert _everything(restored) == _everything(rebuilt)
    for projection in (restored, rebuilt):  # and both continue alike
        projection.apply_order(_accepted(30, 3))  # releases the held fill to account 3
        assert not projection.apply_fill(_fill(4, 21, 2, "Buy", "20980"))
        assert projection.apply_fill(_fill(9, 31, 3, "Sell", "21005"))
        assert projection.apply_fees(_fees(9, 3, "0.37"))
        assert projection.apply_fill(_fill(10, 11, 0, "Buy", "21003"))  # order 11's account: 1
    assert _everything(restored) == _everything(rebuilt)
    assert restored.orders.items() == rebuilt.orders.items()
