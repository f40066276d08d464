"""The outcome events of one intent, built from the intent (ADR-0177).

Every outcome event of an intent repeats who it is about (intent, signal, strategy, account,
login) and when. These builders take the :class:`~phalanx_common.events.OrderIntent` and the
time and name every field, so a misspelt or missing field is a type error, not a runtime one
(the executor passed a ``dict[str, Any]`` with ``**`` before).
"""

from __future__ import annotations

from phalanx_common import ids
from phalanx_common.events import (
    ExpiryStage,
    IntentExpired,
    OrderAccepted,
    OrderIntent,
    OrderOutcomeUnknown,
    OrderRejected,
)

__all__ = ["intent_expired", "order_accepted", "order_outcome_unknown", "order_rejected"]


def order_accepted(
    intent: OrderIntent,
    now_ns: int,
    *,
    order_id: int,
    legs: tuple[int | None, int | None] = (None, None),
    operation: str = "placeoso",
    sent_ns: int = 0,
    recovered: bool = False,
    note: str = "",
    event_id: str | None = None,
) -> OrderAccepted:
    """The venue accepted ``intent``'s order (``legs``: the bracket's order ids)."""
    return OrderAccepted(
        event_id=event_id or ids.new_event_id(),
        ts_event=now_ns,
        ts_init=now_ns,
        intent_id=intent.intent_id,
        signal_id=intent.signal_id,
        strategy_id=intent.strategy_id,
        account_id=intent.account_id,
        login_id=intent.login_id,
        symbol=intent.symbol,
        order_id=order_id,
        oso1_id=legs[0],
        oso2_id=legs[1],
        sent_ns=sent_ns,
        operation=operation,
        recovered=recovered,
        note=note,
    )


def order_rejected(
    intent: OrderIntent, now_ns: int, *, reason: str, text: str = "", event_id: str | None = None
) -> OrderRejected:
    """The venue, or a check before it, refused ``intent``'s order."""
    return OrderRejected(
        event_id=event_id or ids.new_event_id(),
        ts_event=now_ns,
        ts_init=now_ns,
        intent_id=intent.intent_id,
        signal_id=intent.signal_id,
        strategy_id=intent.strategy_id,
        account_id=intent.account_id,
        login_id=intent.login_id,
        reason=reason,
        text=text,
    )


def order_outcome_unknown(
    intent: OrderIntent, now_ns: int, *, reason: str, event_id: str | None = None
) -> OrderOutcomeUnknown:
    """``intent``'s order may or may not be at the venue."""
    return OrderOutcomeUnknown(
        event_id=event_id or ids.new_event_id(),
        ts_event=now_ns,
        ts_init=now_ns,
        intent_id=intent.intent_id,
        signal_id=intent.signal_id,
        strategy_id=intent.strategy_id,
        account_id=intent.account_id,
        login_id=intent.login_id,
        reason=reason,
    )


def intent_expired(
    intent: OrderIntent,
    now_ns: int,
    *,
    stage: ExpiryStage,
    text: str = "",
    event_id: str | None = None,
) -> IntentExpired:
    """``intent`` was not traded: its signal was past its deadline at ``stage``."""
    return IntentExpired(
        event_id=event_id or ids.new_event_id(),
        ts_event=now_ns,
        ts_init=now_ns,
        intent_id=intent.intent_id,
        signal_id=intent.signal_id,
        strategy_id=intent.strategy_id,
        account_id=intent.account_id,
        not_after_ns=intent.not_after_ns,
        stage=stage,
        text=text,
    )
