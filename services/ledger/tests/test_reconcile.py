"""The comparison of one account's two books, the fills it can explain, and fees (pure)."""

from __future__ import annotations

from decimal import Decimal

import msgspec

from phalanx_common.events import FillReceived
from phalanx_ledger.fees import fill_fees
from phalanx_ledger.pnl import pnl_rows
from phalanx_ledger.projection import PositionsProjection
from phalanx_ledger.reconcile import compare, unknown
from phalanx_tradovate import wire

ACCOUNT = 7


def _fill(
    fill_id: int, action: str, qty: int, contract_id: int = 42, account: int = ACCOUNT
) -> FillReceived:
    return FillReceived(
        event_id=f"f{fill_id}",
        ts_event=fill_id,
        ts_init=fill_id,
        fill_id=fill_id,
        order_id=fill_id + 100,
        account_id=account,
        contract_id=contract_id,
        symbol="MNQZ6" if contract_id == 42 else "ESZ6",
        action="Buy" if action == "Buy" else "Sell",
        qty=qty,
        price=Decimal("21000"),
    )


def _broker(*rows: tuple[int, int]) -> list[wire.Position]:
    return [
        wire.Position(id=n, accountId=ACCOUNT, contractId=cid, netPos=net, netPrice=Decimal("1"))
        for n, (cid, net) in enumerate(rows)
    ]


def test_equal_books_are_ok_and_a_flat_contract_the_broker_omits_agrees() -> None:
    book = PositionsProjection()
    book.apply_fill(_fill(1, "Buy", 2))
    book.apply_fill(_fill(2, "Buy", 1, contract_id=43))
    book.apply_fill(_fill(3, "Sell", 1, contract_id=43))  # flat in ESZ6

    outcome = compare(ACCOUNT, "l", book.positions(ACCOUNT), _broker((42, 2)), (), {}, 5)

    assert outcome.status == "ok"
    assert not outcome.explained
    assert [(c.contract_id, c.ledger_net_pos, c.broker_net_pos) for c in outcome.contracts] == [
        (42, 2, 2),
        (43, 0, 0),
    ]


def test_a_broker_position_the_ledger_lacks_is_drift_explained_by_the_fetched_fills() -> None:
    book = PositionsProjection()
    book.apply_fill(_fill(1, "Buy", 2))
    fetched = [_fill(2, "Sell", 3), _fill(3, "Buy", 1, contract_id=43)]

    outcome = compare(
        ACCOUNT, "l", book.positions(ACCOUNT), _broker((42, -1), (43, 1)), fetched, {}, 5
    )

    assert outcome.status == "drift"
    assert outcome.explained
    assert outcome.fetched_fills == 2
    assert [
        (c.symbol, c.ledger_net_pos, c.fetched_net_pos, c.broker_net_pos) for c in outcome.drifted
    ] == [("MNQZ6", 2, -3, -1), ("ESZ6", 0, 1, 1)]


def test_a_difference_no_fill_explains_is_unexplained_drift_with_both_sides() -> None:
    book = PositionsProjection()
    book.apply_fill(_fill(1, "Buy", 2))

    outcome = compare(ACCOUNT, "l", book.positions(ACCOUNT), _broker(), (), {}, 5)

    assert outcome.status == "drift"
    assert not outcome.explained
    (row,) = (c.row() for c in outcome.drifted)
    assert (row.ledger_net_pos, row.broker_net_pos, row.ledger_avg_price) == (
        2,
        0,
        Decimal("21000"),
    )


def test_unknown_claims_no_contract() -> None:
    outcome = unknown(ACCOUNT, "l", 5, "broker: timeout")
    assert (outcome.status, outcome.contracts, outcome.drifted) == ("unknown", (), ())


def test_a_held_unattributed_fill_is_applied_when_reconciliation_names_its_account() -> None:
    book = PositionsProjection()
    stray = _fill(9, "Buy", 2, account=0)
    book.apply_fill(stray)
    assert book.positions() == []
    assert not book.knows_fill(9)

    assert book.apply_fill(msgspec.structs.replace(stray, account_id=ACCOUNT)) is True

    (position,) = book.positions()
    assert (position.account_id, position.net_pos) == (ACCOUNT, 2)
    assert book.knows_fill(9)
    assert book.unattributed_fills == 0
    assert book.apply_fill(msgspec.structs.replace(stray, account_id=ACCOUNT)) is False
    assert book.positions()[0].net_pos == 2


def test_a_fill_fee_is_totalled_in_its_commissions_currency() -> None:
    fee = wire.FillFee(
        id=5,
        commission=Decimal("0.39"),
        commissionCurrencyId=1,
        exchangeFee=Decimal("0.35"),
        exchangeCurrencyId=1,
        nfaFee=Decimal("0.02"),
        nfaCurrencyId=1,
        clearingFee=Decimal("0.10"),
        clearingCurrencyId=9,  # another currency: not added to the USD total
    )

    event = fill_fees(ACCOUNT, fee, 1)

    assert (event.fill_id, event.account_id, event.currency) == (5, ACCOUNT, "USD")
    assert event.total == Decimal("0.76")
    assert (event.commission, event.clearing_fee, event.other_currency) == (
        Decimal("0.39"),
        Decimal(0),
        1,
    )


def test_fees_are_recorded_once_and_net_the_pnl() -> None:
    book = PositionsProjection()
    book.apply_fill(_fill(1, "Buy", 1))
    book.apply_fill(msgspec.structs.replace(_fill(2, "Sell", 1), price=Decimal("21010")))
    assert book.fills_without_fees(ACCOUNT) == [1, 2]
    fee = fill_fees(
        ACCOUNT, wire.FillFee(id=1, commission=Decimal("1.5"), commissionCurrencyId=1), 1
    )

    assert book.apply_fees(fee) is True
    assert book.apply_fees(msgspec.structs.replace(fee, total=Decimal(99))) is False

    assert book.fills_without_fees(ACCOUNT) == [2]
    (row,) = pnl_rows(book, "account")
    assert (row.realized_pnl_money, row.fees_money, row.net_pnl_money) == (
        Decimal(20),
        Decimal("1.5"),
        Decimal("18.5"),
    )
    assert row.fills_without_fees == 1
