"""Order types, trails, time in force, percent exits and cancels: the planner's mapping and the
per-account decision (both pure), ADR-0035."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest

from phalanx_common import ids
from phalanx_common.contracts import ContractBook
from phalanx_common.events import OrderIntent, Signal, SignalReceived, StopLoss, TakeProfit
from phalanx_common.records import AccountRecord, SubscriptionRecord
from phalanx_executor.decisions import Step, WorkingOrder, decide
from phalanx_executor.planning import Plan, plan

BOOK = ContractBook.load()
TODAY = dt.date(2026, 11, 25)
ACCOUNTS = {1000: AccountRecord(account_id=1000, account_spec="DEMO1000", login_id="l0", user_id=1)}


def _plan(signal: Signal, **sub: Any) -> Plan:
    event = SignalReceived(
        event_id="e1",
        ts_event=1,
        ts_init=1,
        signal_id=ids.signal_id_from("strat", b"body"),
        strategy_id="strat",
        signal=signal,
    )
    subs = [SubscriptionRecord(strategy_id="strat", account_id=1000, **sub)]
    return plan(event, subs, ACCOUNTS, BOOK, 16, 25, TODAY)


def _intent(signal: Signal, **sub: Any) -> OrderIntent:
    result = _plan(signal, **sub)
    assert result.rejected == ""
    [intent] = [i for b in result.batches for i in b.intents]
    return intent


# -- planner: entry order types -----------------------------------------------------------------


def test_a_stop_limit_entry_is_a_stop_limit_with_both_prices_on_tick() -> None:
    signal = Signal(
        ticker="MNQZ6",
        action="buy",
        order_type="stop_limit",
        stop_price=Decimal("21000.1"),
        limit_price=Decimal("21002.4"),
    )
    intent = _intent(signal)
    assert (intent.order_type, intent.stop_price, intent.limit_price) == (
        "StopLimit",
        Decimal("21000"),
        Decimal("21002.5"),
    )


def test_limit_and_stop_entry_prices_are_rounded_to_tick() -> None:
    limit = _intent(
        Signal(ticker="MNQZ6", action="buy", order_type="limit", limit_price=Decimal("20990.13"))
    )
    stop = _intent(
        Signal(ticker="MNQZ6", action="sell", order_type="stop", stop_price=Decimal("20990.9"))
    )
    assert (limit.order_type, limit.limit_price, limit.stop_price) == (
        "Limit",
        Decimal("20990.25"),
        None,
    )
    assert (stop.order_type, stop.stop_price, stop.limit_price) == ("Stop", Decimal("20991"), None)


def test_a_trailing_stop_entry_starts_one_trail_beyond_the_reference_price() -> None:
    buy = _intent(
        Signal(
            ticker="MNQZ6",
            action="buy",
            order_type="trailing_stop",
            signal_price=Decimal("21000"),
            trail_amount=Decimal("10.1"),
        )
    )
    sell = _intent(
        Signal(
            ticker="MNQZ6",
            action="sell",
            order_type="trailing_stop",
            signal_price=Decimal("21000"),
            trail_percent=Decimal("0.1"),  # 21 points
        )
    )
    assert (buy.order_type, buy.peg_difference, buy.stop_price) == (
        "TrailingStop",
        Decimal("10"),
        Decimal("21010"),
    )
    assert (sell.order_type, sell.peg_difference, sell.stop_price) == (
        "TrailingStop",
        Decimal("21"),
        Decimal("20979"),
    )


def test_a_trailing_stop_entry_keeps_a_sent_stop_and_trails_at_least_one_tick() -> None:
    intent = _intent(
        Signal(
            ticker="MNQZ6",
            action="buy",
            order_type="trailing_stop",
            stop_price=Decimal("21005.1"),
            trail_amount=Decimal("0.01"),
        )
    )
    assert (intent.stop_price, intent.peg_difference) == (Decimal("21005"), Decimal("0.25"))


@pytest.mark.parametrize(
    ("signal", "reason"),
    [
        (Signal(ticker="MNQZ6", action="buy", order_type="limit"), "needs limitPrice"),
        (Signal(ticker="MNQZ6", action="buy", order_type="stop"), "needs stopPrice"),
        (
            Signal(ticker="MNQZ6", action="buy", order_type="stop_limit", stop_price=Decimal(1)),
            "needs limitPrice",
        ),
        (
            Signal(
                ticker="MNQZ6", action="buy", order_type="trailing_stop", trail_percent=Decimal(1)
            ),
            "trailPercent needs price",
        ),
        (
            Signal(
                ticker="MNQZ6", action="buy", order_type="trailing_stop", trail_amount=Decimal(5)
            ),
            "needs stopPrice or a reference price",
        ),
        (
            Signal(
                ticker="MNQZ6",
                action="buy",
                signal_price=Decimal(21000),
                stop_loss=StopLoss(type="stop_limit", amount=Decimal(10)),
            ),
            "stop_limit stop-loss needs its limitPrice",
        ),
    ],
)
def test_a_missing_price_rejects_the_signal_with_a_reason_instead_of_crashing(
    signal: Signal, reason: str
) -> None:
    result = _plan(signal)
    assert result.batches == []
    assert reason in result.rejected


# -- planner: stop-loss legs --------------------------------------------------------------------


def test_a_stop_limit_stop_loss_carries_its_limit_on_tick_even_with_a_relative_stop() -> None:
    intent = _intent(
        Signal(
            ticker="MNQZ6",
            action="buy",
            signal_price=Decimal("21000"),
            stop_loss=StopLoss(
                type="stop_limit", amount=Decimal("10"), limit_price=Decimal("20988.1")
            ),
        )
    )
    assert (intent.stop_loss_type, intent.stop_loss, intent.stop_loss_limit) == (
        "StopLimit",
        Decimal("20990"),
        Decimal("20988"),
    )


def test_a_trailing_stop_loss_trails_by_amount_or_percent_of_the_reference() -> None:
    by_amount = _intent(
        Signal(
            ticker="MNQZ6",
            action="buy",
            signal_price=Decimal("21000"),
            stop_loss=StopLoss(type="trailing_stop", trail_amount=Decimal("12.3")),
        )
    )
    by_percent = _intent(
        Signal(
            ticker="MNQZ6",
            action="sell",
            signal_price=Decimal("21000"),
            stop_loss=StopLoss(
                type="trailing_stop", amount=Decimal("30"), trail_percent=Decimal("0.05")
            ),
        )
    )
    assert (by_amount.stop_loss_type, by_amount.stop_loss_peg, by_amount.stop_loss) == (
        "TrailingStop",
        Decimal("12.25"),
        Decimal("20987.75"),  # no stop sent: one trail below the reference
    )
    assert (by_percent.stop_loss_type, by_percent.stop_loss_peg, by_percent.stop_loss) == (
        "TrailingStop",
        Decimal("10.5"),
        Decimal("21030"),  # the sent relative stop, above for a short
    )


def test_a_plain_stop_loss_stays_a_stop() -> None:
    intent = _intent(
        Signal(
            ticker="MNQZ6",
            action="buy",
            take_profit=TakeProfit(limit_price=Decimal(21050)),
            stop_loss=StopLoss(stop_price=Decimal(20950)),
        )
    )
    assert (intent.stop_loss_type, intent.stop_loss_limit, intent.stop_loss_peg) == (
        "Stop",
        None,
        None,
    )


# -- planner: time in force, percent exits, cancels ---------------------------------------------


@pytest.mark.parametrize(
    ("sent", "entry", "legs"),
    [("day", "Day", "Day"), ("gtc", "GTC", "GTC"), ("ioc", "IOC", "GTC"), ("fok", "FOK", "GTC")],
)
def test_time_in_force_maps_to_the_venue_and_legs_outlive_ioc_and_fok(
    sent: Any, entry: str, legs: str
) -> None:
    intent = _intent(Signal(ticker="MNQZ6", action="buy", time_in_force=sent))
    assert (intent.time_in_force, intent.bracket_time_in_force) == (entry, legs)


@pytest.mark.parametrize("sent", ["opg", "cls"])
def test_opg_and_cls_have_no_tradovate_equivalent_and_reject_the_signal(sent: Any) -> None:
    result = _plan(Signal(ticker="MNQZ6", action="buy", time_in_force=sent))
    assert result.batches == []
    assert f"timeInForce '{sent}' has no Tradovate equivalent" in result.rejected


def test_a_percent_of_position_exit_carries_the_percent_unscaled_by_the_multiplier() -> None:
    intent = _intent(
        Signal(
            ticker="MNQZ6",
            action="exit",
            quantity=Decimal(50),
            quantity_type="percent_of_position",
        ),
        multiplier=Decimal(3),
    )
    assert (intent.kind, intent.exit_percent, intent.exit_quantity) == ("exit", Decimal(50), None)


def test_cancel_and_cancel_order_type_are_carried_with_the_venue_type_name() -> None:
    intent = _intent(
        Signal(ticker="MNQZ6", action="cancel", cancel=False, cancel_order_type="stop_limit")
    )
    assert (intent.cancel, intent.cancel_order_type) == (False, "StopLimit")


# -- decisions ----------------------------------------------------------------------------------


def _order(**fields: Any) -> OrderIntent:
    base: dict[str, Any] = {
        "intent_id": "s-1",
        "signal_id": "s",
        "strategy_id": "strat",
        "account_id": 1,
        "account_spec": "DEMO1",
        "login_id": "l",
        "kind": "entry",
        "action": "Buy",
        "symbol": "MNQZ6",
        "quantity": 1,
    }
    return OrderIntent(**{**base, **fields})


def test_a_percent_exit_is_a_floor_of_the_live_position() -> None:
    half = _order(kind="exit", exit_percent=Decimal(50))
    assert decide(half, 4, []).steps == (Step("reduce", action="Sell", quantity=2),)
    assert decide(half, -5, []).steps == (Step("reduce", action="Buy", quantity=2),)
    assert decide(_order(kind="exit", exit_percent=Decimal(100)), 3, []).steps == (
        Step("liquidate"),
    )
    tiny = decide(_order(kind="exit", exit_percent=Decimal(10)), 4, [])
    assert (tiny.steps, tiny.refused) == ((), "quantity-rounds-to-zero")
    assert decide(half, 0, []).refused == "no-position"


WORKING = [
    WorkingOrder(11, "Limit"),
    WorkingOrder(12, "Stop"),
    WorkingOrder(13, "Stop", parent_id=11),  # a suspended leg of the resting limit
]


def test_an_entry_from_flat_cancels_the_working_orders_first_unless_told_not_to() -> None:
    default = decide(_order(), 0, WORKING)
    kept = decide(_order(cancel=False), 0, WORKING)
    only_stops = decide(_order(cancel_order_type="Stop"), 0, WORKING)
    entry = Step("entry", action="Buy", quantity=1)
    # the leg 13 goes with its parent 11
    assert default.steps == (Step("cancel", order_id=11), Step("cancel", order_id=12), entry)
    assert kept.steps == (entry,)
    assert only_stops.steps == (Step("cancel", order_id=12), Step("cancel", order_id=13), entry)
    assert default.operation == "entry"


def test_a_refused_entry_cancels_nothing_and_a_reversal_relies_on_its_liquidation() -> None:
    refused = decide(_order(cancel=True), 2, WORKING)
    reversal = decide(_order(), -2, WORKING)
    assert (refused.steps, refused.refused) == ((), "already-in-position")
    assert [s.kind for s in reversal.steps] == ["liquidate", "wait_flat", "entry"]


def test_an_add_cancels_only_when_cancel_is_true() -> None:
    plain = decide(_order(kind="add"), 1, WORKING)
    asked = decide(_order(kind="add", cancel=True), 1, WORKING)
    assert [s.kind for s in plain.steps] == ["entry"]
    assert [s.kind for s in asked.steps] == ["cancel", "cancel", "entry"]


def test_a_cancel_signal_with_an_order_type_cancels_only_that_type() -> None:
    stops = decide(_order(kind="cancel", cancel_order_type="Stop"), 0, WORKING)
    none = decide(_order(kind="cancel", cancel_order_type="TrailingStop"), 0, WORKING)
    assert stops.steps == (Step("cancel", order_id=12), Step("cancel", order_id=13))
    assert none.refused == "nothing-to-cancel"
