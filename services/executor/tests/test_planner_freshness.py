"""The planner's part of the signal contract (ADR-0045): deadlines, test signals and the
strategy's maximum quantity, decided per account and never by raising."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from phalanx_common import ids
from phalanx_common.contracts import ContractBook
from phalanx_common.events import Signal, SignalReceived
from phalanx_common.records import AccountRecord, SubscriptionRecord
from phalanx_common.signal_ages import LONGEST_DEADLINE_S
from phalanx_executor.planning import LEGACY_MAX_AGE_S, plan

BOOK = ContractBook.load()
TODAY = dt.date(2026, 11, 25)
RECEIVED = 1_800_000_000 * 10**9
ACCOUNTS = {
    a: AccountRecord(account_id=a, account_spec=f"DEMO{a}", login_id=f"l{a}", user_id=a)
    for a in (1, 2, 3)
}


def _event(signal: Signal, not_after_ns: int = 0, max_quantity: int = 0) -> SignalReceived:
    return SignalReceived(
        event_id="e",
        ts_event=RECEIVED,
        ts_init=RECEIVED,
        signal_id=ids.signal_id_from("strat", b"x"),
        strategy_id="strat",
        signal=signal,
        not_after_ns=not_after_ns,
        max_quantity=max_quantity,
    )


def _subs(**kw: object) -> list[SubscriptionRecord]:
    return [SubscriptionRecord(strategy_id="strat", account_id=a, **kw) for a in ACCOUNTS]  # type: ignore[arg-type]


BUY = Signal(ticker="MNQ1!", action="buy", quantity=Decimal(2))


def test_intents_carry_the_signal_deadline() -> None:
    deadline = RECEIVED + 60 * 10**9

    result = plan(_event(BUY, deadline), _subs(), ACCOUNTS, BOOK, 4, 10, TODAY, RECEIVED)

    intents = [i for b in result.batches for i in b.intents]
    assert len(intents) == 3
    assert {i.not_after_ns for i in intents} == {deadline}
    assert result.expired == []


def test_a_signal_planned_after_its_deadline_expires_on_every_account_and_trades_nothing() -> None:
    deadline = RECEIVED + 60 * 10**9

    result = plan(_event(BUY, deadline), _subs(), ACCOUNTS, BOOK, 4, 10, TODAY, deadline + 1)

    assert result.batches == []
    assert result.expired == [1, 2, 3]
    assert result.not_after_ns == deadline


def test_a_signal_without_a_recorded_deadline_expires_after_the_legacy_age_and_its_delay() -> None:
    delayed = Signal(ticker="MNQ1!", action="buy", delay_s=Decimal(30))
    limit = RECEIVED + (30 + LEGACY_MAX_AGE_S) * 10**9

    in_time = plan(_event(delayed), _subs(), ACCOUNTS, BOOK, 4, 10, TODAY, limit)
    late = plan(_event(delayed), _subs(), ACCOUNTS, BOOK, 4, 10, TODAY, limit + 1)

    assert in_time.intent_count == 3
    assert late.intent_count == 0
    assert late.expired == [1, 2, 3]


def test_a_test_signal_is_planned_but_never_batched_and_says_what_it_would_do() -> None:
    signal = Signal(ticker="MNQ1!", action="buy", quantity=Decimal(2), test=True)

    result = plan(_event(signal), _subs(), ACCOUNTS, BOOK, 4, 10, TODAY, RECEIVED)

    assert result.batches == []
    assert [s.reason for s in result.skipped] == ["test-signal"] * 3
    assert result.skipped[0].text == "test signal: would buy 2 MNQZ6; nothing was sent"


def test_a_quantity_above_the_strategy_maximum_is_skipped_unless_the_subscription_caps_it() -> None:
    event = _event(BUY, max_quantity=5)

    uncapped = plan(event, _subs(multiplier=Decimal(3)), ACCOUNTS, BOOK, 4, 10, TODAY)
    capped = plan(event, _subs(multiplier=Decimal(3), max_quantity=4), ACCOUNTS, BOOK, 4, 10, TODAY)

    assert uncapped.batches == []
    assert {s.reason for s in uncapped.skipped} == {"quantity-above-maximum"}
    assert "6 contracts" in uncapped.skipped[0].text
    assert {i.quantity for b in capped.batches for i in b.intents} == {4}


def test_a_deadline_beyond_the_longest_a_signal_can_have_is_cut_to_it() -> None:
    # Intent claims live for a time chosen from this bound (ADR-0185): an event that claims a
    # later deadline (written by hand, or by an ingest without the bound) cannot outlive them.
    longest = RECEIVED + LONGEST_DEADLINE_S * 10**9

    result = plan(_event(BUY, longest + 10**12), _subs(), ACCOUNTS, BOOK, 4, 10, TODAY, RECEIVED)

    assert {i.not_after_ns for b in result.batches for i in b.intents} == {longest}
    assert result.not_after_ns == longest
