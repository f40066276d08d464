"""The planner: sizing, brackets, skips, shards and deterministic batch ids."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from phalanx_common import ids
from phalanx_common.contracts import ContractBook
from phalanx_common.events import Signal, SignalReceived, StopLoss, TakeProfit
from phalanx_common.records import AccountRecord, SubscriptionRecord
from phalanx_executor.membership import assign_shards
from phalanx_executor.planning import plan
from phalanx_executor.sharding import shard_of

BOOK = ContractBook.load()
TODAY = dt.date(2026, 11, 25)


def _event(signal: Signal, strategy: str = "strat") -> SignalReceived:
    return SignalReceived(
        event_id="e1",
        ts_event=1,
        ts_init=1,
        signal_id=ids.signal_id_from(strategy, b"body"),
        strategy_id=strategy,
        signal=signal,
    )


def _accounts(n: int, per_login: int = 1) -> dict[int, AccountRecord]:
    return {
        1000 + i: AccountRecord(
            account_id=1000 + i,
            account_spec=f"DEMO{1000 + i}",
            login_id=f"login{i // per_login}",
            user_id=i // per_login,
        )
        for i in range(n)
    }


def _subs(accounts: dict[int, AccountRecord], **kw: object) -> list[SubscriptionRecord]:
    return [SubscriptionRecord(strategy_id="strat", account_id=a, **kw) for a in accounts]  # type: ignore[arg-type]


def test_entry_with_absolute_bracket_makes_one_intent_per_account_with_tick_rounded_prices() -> (
    None
):
    accounts = _accounts(3)
    signal = Signal(
        ticker="MNQ1!",
        action="buy",
        quantity=Decimal(2),
        take_profit=TakeProfit(limit_price=Decimal("21050.13")),
        stop_loss=StopLoss(stop_price=Decimal("20950.1")),
    )
    result = plan(_event(signal), _subs(accounts), accounts, BOOK, 16, 25, TODAY)
    intents = [i for b in result.batches for i in b.intents]
    assert sorted(i.account_id for i in intents) == [1000, 1001, 1002]
    first = intents[0]
    assert (first.action, first.symbol, first.quantity) == ("Buy", "MNQZ6", 2)
    assert first.take_profit == Decimal("21050.25")
    assert first.stop_loss == Decimal("20950")
    assert first.intent_id == f"{first.signal_id}-{first.account_id}"
    assert result.skipped == []


def test_relative_bracket_for_a_sell_is_mirrored_around_the_signal_price() -> None:
    accounts = _accounts(1)
    signal = Signal(
        ticker="ESZ6",
        action="sell",
        signal_price=Decimal("6000"),
        take_profit=TakeProfit(amount=Decimal("10")),
        stop_loss=StopLoss(percent=Decimal("0.1")),
    )
    [intent] = (
        plan(_event(signal), _subs(accounts), accounts, BOOK, 16, 25, TODAY).batches[0].intents
    )
    assert intent.action == "Sell"
    assert intent.take_profit == Decimal("5990")
    assert intent.stop_loss == Decimal("6006")


def test_sizing_floors_the_multiplier_caps_at_max_and_skips_zero_with_a_reason() -> None:
    accounts = _accounts(3)
    subs = [
        SubscriptionRecord(strategy_id="strat", account_id=1000, multiplier=Decimal("1.5")),
        SubscriptionRecord(strategy_id="strat", account_id=1001, max_quantity=2),
        SubscriptionRecord(strategy_id="strat", account_id=1002, multiplier=Decimal("0.3")),
    ]
    signal = Signal(ticker="MESZ6", action="buy", quantity=Decimal(3))
    result = plan(_event(signal), subs, accounts, BOOK, 16, 25, TODAY)
    quantities = {i.account_id: i.quantity for b in result.batches for i in b.intents}
    assert quantities == {1000: 4, 1001: 2}
    assert [(s.account_id, s.reason) for s in result.skipped] == [(1002, "quantity-rounds-to-zero")]


def test_disabled_and_unlinked_accounts_are_skipped_and_other_strategies_ignored() -> None:
    accounts = _accounts(2)
    subs = [
        SubscriptionRecord(strategy_id="strat", account_id=1000, enabled=False),
        SubscriptionRecord(strategy_id="strat", account_id=4242),
        SubscriptionRecord(strategy_id="other", account_id=1001),
    ]
    result = plan(_event(Signal(ticker="MESZ6", action="buy")), subs, accounts, BOOK, 16, 25, TODAY)
    assert result.batches == []
    assert {(s.account_id, s.reason) for s in result.skipped} == {
        (1000, "subscription-disabled"),
        (4242, "account-not-linked"),
    }


def test_accounts_of_one_login_share_a_shard_and_batches_are_cut_at_batch_size() -> None:
    accounts = _accounts(60, per_login=20)  # 3 logins of 20 accounts
    result = plan(
        _event(Signal(ticker="MESZ6", action="buy")), _subs(accounts), accounts, BOOK, 16, 8, TODAY
    )
    for batch in result.batches:
        assert len(batch.intents) <= 8
        assert {shard_of(i.login_id, 16) for i in batch.intents} == {batch.shard}
    assert result.intent_count == 60
    assert len({i.intent_id for b in result.batches for i in b.intents}) == 60


def test_planning_the_same_signal_twice_gives_identical_batches() -> None:
    accounts = _accounts(30, per_login=5)
    event = _event(Signal(ticker="MESZ6", action="buy"))
    first = plan(event, _subs(accounts), accounts, BOOK, 16, 4, TODAY)
    second = plan(event, list(reversed(_subs(accounts))), accounts, BOOK, 16, 4, TODAY)
    assert first.batches == second.batches
    assert len({b.batch_id for b in first.batches}) == len(first.batches)


def test_unknown_ticker_rejects_the_whole_signal_with_the_reason() -> None:
    accounts = _accounts(2)
    result = plan(
        _event(Signal(ticker="FOO1!", action="buy")), _subs(accounts), accounts, BOOK, 16, 25, TODAY
    )
    assert result.batches == []
    assert "product 'FOO' is not in the contract table" in result.rejected


def test_relative_bracket_without_a_reference_price_rejects_the_signal() -> None:
    accounts = _accounts(1)
    signal = Signal(ticker="MESZ6", action="buy", take_profit=TakeProfit(percent=Decimal(1)))
    result = plan(_event(signal), _subs(accounts), accounts, BOOK, 16, 25, TODAY)
    assert "needs price/signalPrice" in result.rejected


def test_shards_are_split_between_replicas_without_overlap() -> None:
    a = assign_shards([0, 1, 2], 0, 16)
    b = assign_shards([0, 1, 2], 1, 16)
    c = assign_shards([0, 1, 2], 2, 16)
    assert sorted(a + b + c) == list(range(16))
    assert not set(a) & set(b)
