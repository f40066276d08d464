"""One record per acceptance answers as the order -> attribution and order -> account maps
did (ADR-0184): attribution from the first acceptance naming an order, account from the last;
the same after a snapshot of either format."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from phalanx_common.events import OrderAccepted
from phalanx_ledger.attribution import OUTSIDE, Attribution, Leg, OrderIndex

ORDER_IDS = st.sampled_from([0, 0, 1, 2, 3, 4, 5, 6])  # few ids: repeats and clashes


@st.composite
def acceptances(draw: st.DrawFn) -> list[OrderAccepted]:
    events = []
    for n in range(draw(st.integers(min_value=0, max_value=12))):
        strategy = draw(st.sampled_from(["trend", "scalp"]))
        intent = draw(st.sampled_from([f"i{n}", "i-again"]))  # an intent accepted twice
        events.append(
            OrderAccepted(
                event_id=f"a{n}",
                ts_event=n,
                ts_init=n,
                intent_id=intent,
                signal_id=f"s-{intent}",
                strategy_id=strategy,
                account_id=draw(st.sampled_from([1, 2])),
                login_id="l",
                symbol="MNQZ6",
                order_id=draw(ORDER_IDS),
                oso1_id=draw(st.none() | ORDER_IDS),
                oso2_id=draw(st.none() | ORDER_IDS),
            )
        )
    return events


def _reference(events: list[OrderAccepted]) -> tuple[dict[int, Attribution], dict[int, int]]:
    """The two maps the projection kept before (setdefault per leg; last account wins)."""
    who: dict[int, Attribution] = {}
    accounts: dict[int, int] = {}
    for event in events:
        legs: tuple[tuple[int | None, Leg], ...] = (
            (event.order_id, "entry"),
            (event.oso1_id, "oso1"),
            (event.oso2_id, "oso2"),
        )
        for order_id, leg in legs:
            if order_id:
                who.setdefault(
                    order_id,
                    Attribution(
                        strategy_id=event.strategy_id,
                        signal_id=event.signal_id,
                        intent_id=event.intent_id,
                        leg=leg,
                    ),
                )
                accounts[order_id] = event.account_id
    return who, accounts


def _answers(index: OrderIndex) -> object:
    ids = range(8)
    return (
        [index.of(order_id) for order_id in ids],
        [index.account_of(order_id) for order_id in ids],
        [index.orders_of(strategy) for strategy in ("trend", "scalp", OUTSIDE)],
        index.items(),
    )


@settings(max_examples=200, deadline=None)
@given(events=acceptances())
def test_the_index_answers_as_the_two_maps_did(events: list[OrderAccepted]) -> None:
    who, accounts = _reference(events)
    index = OrderIndex()
    for event in events:
        index.add(event)
    assert index.items() == who
    for order_id in range(8):
        assert index.of(order_id) == who.get(order_id, Attribution())
        assert index.account_of(order_id) == accounts.get(order_id)
        assert index.orders_of("trend") == {o for o, a in who.items() if a.strategy_id == "trend"}
    again = OrderIndex()  # a snapshot of format 3: the records and the other accounts
    again.restore(index.acceptances(), index.other_accounts())
    assert _answers(again) == _answers(index)
    older = OrderIndex()  # a snapshot of format 2: the two maps
    older.restore_attributions(who, accounts)
    assert _answers(older) == _answers(index)
