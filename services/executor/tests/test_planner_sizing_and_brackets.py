"""The planner's pure arithmetic: how many contracts each account gets, and where a bracket's
prices land (absolute, by amount, by percent; mirrored for a sell; on tick).

Every expected number is worked out by hand in the table; the properties below the tables
hold for every case of a grid.
"""

from __future__ import annotations

import datetime as dt
import itertools
from decimal import Decimal
from typing import Any

import pytest

from phalanx_common import ids
from phalanx_common.contracts import ContractBook
from phalanx_common.events import OrderIntent, Signal, SignalReceived, StopLoss, TakeProfit
from phalanx_common.records import AccountRecord, SubscriptionRecord
from phalanx_executor.planning import Plan, plan

BOOK = ContractBook.load()
TODAY = dt.date(2026, 11, 25)
ACCOUNT = AccountRecord(account_id=1000, account_spec="DEMO1000", login_id="l0", user_id=1)
D = Decimal


def _plan(signal: Signal, strategy_max: int = 0, **sub: Any) -> Plan:
    event = SignalReceived(
        event_id="e1",
        ts_event=1,
        ts_init=1,
        signal_id=ids.signal_id_from("strat", b"body"),
        strategy_id="strat",
        signal=signal,
        max_quantity=strategy_max,
    )
    subs = [SubscriptionRecord(strategy_id="strat", account_id=1000, **sub)]
    return plan(event, subs, {1000: ACCOUNT}, BOOK, 16, 25, TODAY)


def _only_intent(result: Plan) -> OrderIntent:
    assert result.rejected == ""
    [intent] = [i for b in result.batches for i in b.intents]
    return intent


@pytest.mark.parametrize(
    ("quantity", "sub", "expected"),
    [
        (None, {}, 1),  # no quantity: 1
        (D(3), {}, 3),
        (D(3), {"multiplier": D("1.5")}, 4),  # 4.5 floors to 4
        (D(3), {"multiplier": D("0.5")}, 1),  # 1.5 floors to 1
        (D(1), {"multiplier": D("2.99")}, 2),
        (D("2.5"), {"multiplier": D(2)}, 5),
        (D(3), {"fixed_quantity": 7}, 7),  # fixed wins over the signal
        (D(3), {"fixed_quantity": 7, "multiplier": D(10)}, 7),  # and over the multiplier
        (D(10), {"max_quantity": 4}, 4),  # capped
        (D(10), {"fixed_quantity": 9, "max_quantity": 4}, 4),  # the cap binds fixed too
        (D(3), {"multiplier": D("0.3")}, "quantity-rounds-to-zero"),  # 0.9 → 0: skipped
        (D(3), {"fixed_quantity": 0}, "quantity-rounds-to-zero"),
        (D(3), {"max_quantity": 0}, "quantity-rounds-to-zero"),
    ],
)
def test_entry_sizing(quantity: Decimal | None, sub: dict[str, Any], expected: int | str) -> None:
    result = _plan(Signal(ticker="MESZ6", action="buy", quantity=quantity), **sub)
    if isinstance(expected, str):
        assert [s.reason for s in result.skipped] == [expected]
        assert result.batches == []
    else:
        assert _only_intent(result).quantity == expected


@pytest.mark.parametrize(
    ("quantity", "sub", "strategy_max", "expected"),
    [
        (D(5), {}, 4, "quantity-above-maximum"),  # the strategy's maximum refuses, not caps
        (D(4), {}, 4, 4),
        (D(5), {"max_quantity": 4}, 4, 4),  # a subscription cap applies instead
        (D(5), {}, 0, 5),  # 0: no maximum recorded
    ],
)
def test_the_strategy_maximum_refuses_what_the_subscription_does_not_cap(
    quantity: Decimal, sub: dict[str, Any], strategy_max: int, expected: int | str
) -> None:
    signal = Signal(ticker="MESZ6", action="buy", quantity=quantity)
    result = _plan(signal, strategy_max=strategy_max, **sub)
    if isinstance(expected, str):
        assert [s.reason for s in result.skipped] == [expected]
    else:
        assert _only_intent(result).quantity == expected


@pytest.mark.parametrize(
    ("quantity", "multiplier", "max_quantity"),
    list(
        itertools.product(
            [None, D(1), D(2), D("0.5"), D(7)],
            [D("0.25"), D(1), D("1.5"), D(3)],
            [None, 1, 5],
        )
    ),
)
def test_sizing_never_rounds_up_never_exceeds_the_cap_and_never_sends_zero(
    quantity: Decimal | None, multiplier: Decimal, max_quantity: int | None
) -> None:
    signal = Signal(ticker="MESZ6", action="buy", quantity=quantity)
    result = _plan(signal, multiplier=multiplier, max_quantity=max_quantity)
    exact = (quantity if quantity is not None else D(1)) * multiplier
    if result.skipped:
        assert exact < 1 or max_quantity == 0
        return
    sized = _only_intent(result).quantity
    assert 1 <= sized <= exact
    assert sized > exact - 1 or (max_quantity is not None and sized == max_quantity)
    if max_quantity is not None:
        assert sized <= max_quantity


# MNQ ticks 0.25, ES 0.25, CL 0.01, 6E 0.00005 (contract_specs.json).
@pytest.mark.parametrize(
    ("ticker", "action", "ref", "tp", "sl", "expected_tp", "expected_sl"),
    [
        # absolute prices, rounded to the nearest tick
        ("MNQZ6", "buy", None, TakeProfit(limit_price=D("21050.13")),
         StopLoss(stop_price=D("20950.1")), D("21050.25"), D(20950)),
        # by amount: buy = ref + tp / ref - sl; sell mirrored
        ("ESZ6", "buy", D(6000), TakeProfit(amount=D(10)), StopLoss(amount=D(5)),
         D(6010), D(5995)),
        ("ESZ6", "sell", D(6000), TakeProfit(amount=D(10)), StopLoss(amount=D(5)),
         D(5990), D(6005)),
        # by percent of the reference: 6000 x 0.1 % = 6
        ("ESZ6", "buy", D(6000), TakeProfit(percent=D("0.2")), StopLoss(percent=D("0.1")),
         D(6012), D(5994)),
        ("ESZ6", "sell", D(6000), TakeProfit(percent=D("0.2")), StopLoss(percent=D("0.1")),
         D(5988), D(6006)),
        # a percent that lands between ticks: 21003 x 0.05 % = 10.5015 → 21013.5015 → .50
        ("MNQZ6", "buy", D(21003), TakeProfit(percent=D("0.05")), None, D("21013.5"), None),
        # crude on a cent tick: 70.123 + 0.5 = 70.623 → 70.62; 70.123 - 0.25 = 69.873 → 69.87
        ("CLF7", "buy", D("70.123"), TakeProfit(amount=D("0.5")), StopLoss(amount=D("0.25")),
         D("70.62"), D("69.87")),
        # the euro on a half-pip: 1.08 + 0.00213 = 1.08213 → 1.08215
        ("6EZ6", "buy", D("1.08"), TakeProfit(amount=D("0.00213")), None, D("1.08215"), None),
    ],
)  # fmt: skip
def test_bracket_prices(
    ticker: str,
    action: str,
    ref: Decimal | None,
    tp: TakeProfit | None,
    sl: StopLoss | None,
    expected_tp: Decimal | None,
    expected_sl: Decimal | None,
) -> None:
    signal = Signal(
        ticker=ticker,
        action=action,  # type: ignore[arg-type]
        signal_price=ref,
        take_profit=tp,
        stop_loss=sl,
    )
    intent = _only_intent(_plan(signal))
    assert (intent.take_profit, intent.stop_loss) == (expected_tp, expected_sl)


@pytest.mark.parametrize(
    ("ticker", "action", "ref", "amount", "percent"),
    list(
        itertools.product(
            ["MNQZ6", "ESZ6", "CLF7", "6EZ6", "ZNH7"],
            ["buy", "sell"],
            [D("1.0731"), D("70.437"), D("6003.37"), D("21011.11")],
            [D("0.3"), D("7.77")],
            [D("0.1"), D("1.3")],
        )
    ),
)
def test_a_bracket_is_on_tick_and_on_the_right_side_of_the_reference(
    ticker: str, action: str, ref: Decimal, amount: Decimal, percent: Decimal
) -> None:
    signal = Signal(
        ticker=ticker,
        action=action,  # type: ignore[arg-type]
        signal_price=ref,
        take_profit=TakeProfit(amount=amount),
        stop_loss=StopLoss(percent=percent),
    )
    intent = _only_intent(_plan(signal))
    assert intent.take_profit is not None
    assert intent.stop_loss is not None
    tick = BOOK.resolve(ticker, TODAY)[1].tick_size
    for price in (intent.take_profit, intent.stop_loss):
        assert price % tick == 0
    side = 1 if action == "buy" else -1
    exact_tp = ref + side * amount
    exact_sl = ref * (1 - side * percent / 100)
    # at most half a tick from the exact price, so never more than half a tick past it
    assert abs(intent.take_profit - exact_tp) <= tick / 2
    assert abs(intent.stop_loss - exact_sl) <= tick / 2
    if amount >= tick:  # a take-profit at least a tick away stays on the profit side
        assert side * (intent.take_profit - ref) > 0
