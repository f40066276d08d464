"""Marks from quotes and their place in unrealized P&L (pure, ADR-0128)."""

from __future__ import annotations

from decimal import Decimal

from phalanx_common.events import FillReceived
from phalanx_ledger.projection import PositionsProjection
from phalanx_ledger.quote_marks import QuoteMark, mark_from_quote
from phalanx_ledger.unrealized import totals, unrealized
from phalanx_tradovate.marketdata import Quote


def _quote(bid: str | None, offer: str | None, trade: str | None) -> Quote:
    def dec(text: str | None) -> Decimal | None:
        return None if text is None else Decimal(text)

    return Quote(
        contract_id=42,
        timestamp="",
        bid=dec(bid),
        offer=dec(offer),
        trade=dec(trade),
        received_ns=5,
    )


def test_trade_first_then_mid_then_nothing() -> None:
    assert mark_from_quote(_quote("99", "101", "100.5")) == QuoteMark(
        price=Decimal("100.5"), source="trade", ts_ns=5
    )
    assert mark_from_quote(_quote("99.75", "100.25", None)) == QuoteMark(
        price=Decimal("100"), source="mid", ts_ns=5
    )
    assert mark_from_quote(_quote("99", None, None)) is None


def _fill(fill_id: int, contract_id: int, symbol: str, price: str) -> FillReceived:
    return FillReceived(
        event_id=f"f{fill_id}", ts_event=fill_id * 1_000_000, ts_init=0, fill_id=fill_id,
        order_id=fill_id, account_id=1, contract_id=contract_id, symbol=symbol, action="Buy",
        qty=1, price=Decimal(price),
    )  # fmt: skip


def test_a_quoted_contract_uses_the_quote_and_the_others_their_last_fill() -> None:
    book = PositionsProjection()
    book.apply_fill(_fill(1, 42, "MNQZ6", "21000"))
    book.apply_fill(_fill(2, 43, "ESZ6", "6000"))
    quotes = {42: QuoteMark(price=Decimal("21012.5"), source="trade", ts_ns=9_000_000)}

    rows = {r.symbol: r for r in unrealized(book, quotes.get, now_ns=12_000_000)}

    mnq, es = rows["MNQZ6"], rows["ESZ6"]
    assert (mnq.mark_source, mnq.mark_price, mnq.mark_age_ms) == ("trade", Decimal("21012.5"), 3)
    assert mnq.unrealized_pnl_money == Decimal("25")  # 12.5 points at $2
    assert (es.mark_source, es.mark_price, es.mark_age_ms) == ("fill", Decimal("6000"), 10)
    assert es.unrealized_pnl == 0
    (total,) = totals(list(rows.values()), "account")
    assert (total.positions, total.quote_marked_positions) == (2, 1)
    # without quotes, today's rule: every mark is the last fill
    assert {r.mark_source for r in unrealized(book)} == {"fill"}
