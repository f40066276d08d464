"""The outcome events of an intent, built from the intent (ADR-0177)."""

from __future__ import annotations

from typing import Any

import pytest

from phalanx_common.codec import decode_event, encode
from phalanx_common.events import IntentEvent, IntentExpired, OrderAccepted, OrderIntent
from phalanx_common.intent_events import (
    intent_expired,
    order_accepted,
    order_outcome_unknown,
    order_rejected,
)

INTENT = OrderIntent(
    intent_id="sig-1-101",
    signal_id="sig-1",
    strategy_id="strat",
    account_id=101,
    account_spec="ACC101",
    login_id="login-a",
    kind="entry",
    action="Buy",
    symbol="MNQZ6",
    quantity=2,
    not_after_ns=5_000,
)
NOW = 1_234


@pytest.mark.parametrize(
    "event",
    [
        order_accepted(INTENT, NOW, order_id=7, legs=(8, 9), sent_ns=1_000, note="n"),
        order_rejected(INTENT, NOW, reason="max-contracts", text="too many"),
        order_outcome_unknown(INTENT, NOW, reason="timeout"),
        intent_expired(INTENT, NOW, stage="before-send", text="late"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_each_event_is_about_the_intent_and_survives_the_wire(event: Any) -> None:
    assert (event.intent_id, event.signal_id, event.strategy_id, event.account_id) == (
        "sig-1-101",
        "sig-1",
        "strat",
        101,
    )
    assert (event.ts_event, event.ts_init) == (NOW, NOW)
    assert event.event_id  # a fresh id unless one is given
    if isinstance(event, IntentEvent):
        assert event.login_id == "login-a"
    assert decode_event(encode(event)) == event


def test_accepted_carries_the_order_and_its_legs() -> None:
    event = order_accepted(INTENT, NOW, order_id=7, legs=(8, None), event_id="e1")
    assert isinstance(event, OrderAccepted)
    assert (event.event_id, event.symbol, event.order_id, event.oso1_id, event.oso2_id) == (
        "e1",
        "MNQZ6",
        7,
        8,
        None,
    )
    assert (event.operation, event.recovered) == ("placeoso", False)


def test_expired_carries_the_deadline_and_the_stage() -> None:
    event = intent_expired(INTENT, NOW, stage="planning")
    assert isinstance(event, IntentExpired)
    assert (event.not_after_ns, event.stage) == (5_000, "planning")
    assert (
        order_rejected(INTENT, NOW, reason="r").event_id
        != order_rejected(INTENT, NOW, reason="r").event_id
    )
