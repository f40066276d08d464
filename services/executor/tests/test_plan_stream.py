"""The plan as a stream (ADR-0165): a shard's batch is handed out as soon as it is full, and the
batches are exactly :func:`plan`'s."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from phalanx_common import ids
from phalanx_common.contracts import ContractBook
from phalanx_common.events import Signal, SignalReceived
from phalanx_common.records import AccountRecord, SubscriptionRecord
from phalanx_executor.planning import PlanStream, plan

BOOK = ContractBook.load()
TODAY = dt.date(2026, 11, 25)


def _event() -> SignalReceived:
    return SignalReceived(
        event_id="e1",
        ts_event=1,
        ts_init=1,
        signal_id=ids.signal_id_from("strat", b"body"),
        strategy_id="strat",
        signal=Signal(ticker="MNQ1!", action="buy", quantity=Decimal(1)),
    )


def _book(n: int, logins: int) -> tuple[dict[int, AccountRecord], list[SubscriptionRecord]]:
    accounts = {
        100 + i: AccountRecord(
            account_id=100 + i,
            account_spec=f"DEMO{100 + i}",
            login_id=f"login{i % logins}",
            user_id=i % logins,
        )
        for i in range(n)
    }
    subs = [SubscriptionRecord(strategy_id="strat", account_id=a) for a in accounts]
    return accounts, subs


def test_a_full_batch_is_handed_out_before_the_rest_is_planned() -> None:
    accounts, subs = _book(60, logins=1)  # one login: one shard, batches of 10
    stream = PlanStream(_event(), subs, accounts, BOOK, 16, 10, TODAY)
    batches = stream.batches()

    first = next(batches)

    assert [i.account_id for i in first.intents] == list(range(100, 110))
    assert stream.intent_count == 10  # the other 50 accounts are not planned yet
    rest = list(batches)
    assert stream.intent_count == 60
    assert len(rest) == 5


def test_the_stream_hands_out_exactly_the_batches_of_plan() -> None:
    accounts, subs = _book(230, logins=37)
    expected = plan(_event(), subs, accounts, BOOK, 16, 7, TODAY)
    stream = PlanStream(_event(), subs, accounts, BOOK, 16, 7, TODAY)

    streamed = list(stream.batches())

    assert sorted(streamed, key=lambda b: b.batch_id) == sorted(
        expected.batches, key=lambda b: b.batch_id
    )
    assert len({b.batch_id for b in streamed}) == len(streamed)
    assert stream.intent_count == expected.intent_count == 230
