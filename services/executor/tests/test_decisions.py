""":func:`decide` on its own: partial exits shrink bracket legs, side swap off closes (ADR-0060)."""

from __future__ import annotations

from typing import Any

from phalanx_common.events import OrderIntent
from phalanx_executor.decisions import Step, WorkingOrder, decide


def _intent(**fields: Any) -> OrderIntent:
    base: dict[str, Any] = {
        "intent_id": "i",
        "signal_id": "s",
        "strategy_id": "st",
        "account_id": 1,
        "account_spec": "DEMO1",
        "login_id": "l",
        "kind": "entry",
        "action": "Buy",
        "symbol": "MESZ6",
        "quantity": 1,
    }
    return OrderIntent(**{**base, **fields})


def _legs(parent: int, size: int) -> list[WorkingOrder]:
    return [
        WorkingOrder(parent * 10 + 1, "Limit", parent, quantity=size),
        WorkingOrder(parent * 10 + 2, "Stop", parent, quantity=size),
    ]


def test_a_partial_exit_shrinks_the_newest_bracket_first_and_cancels_what_is_cut_to_nothing() -> (
    None
):
    working = _legs(1, 3) + _legs(2, 2)  # long 5: an entry of 3, then an add of 2
    decision = decide(_intent(kind="exit", exit_quantity=3), 5, working)
    assert decision.steps == (
        Step("cancel", order_id=21),
        Step("cancel", order_id=22),
        Step("resize", quantity=2, order_id=11),
        Step("resize", quantity=2, order_id=12),
        Step("reduce", action="Sell", quantity=3),
    )


def test_legs_already_within_what_is_left_and_suspended_legs_are_left_alone() -> None:
    working = [*_legs(1, 1), WorkingOrder(31, "Stop", 3, quantity=4, suspended=True)]
    decision = decide(_intent(kind="exit", exit_quantity=2), 4, working)
    assert decision.steps == (Step("reduce", action="Sell", quantity=2),)


def test_an_opposite_entry_with_side_swapping_off_only_closes() -> None:
    decision = decide(_intent(action="Sell", allow_reversal=False), 2, [])
    assert decision.steps == (Step("liquidate"),)
    assert decision.note.startswith("side-swap-disabled")
    assert decision.added == 0


def test_a_reversal_ends_at_its_entry_quantity_and_its_exit_half_only_liquidates() -> None:
    decision = decide(_intent(action="Buy", quantity=2), -2, [])
    assert decision.reversal
    assert decision.resulting(-2) == 2
    assert decision.exit_half("why").steps == (Step("liquidate"),)
