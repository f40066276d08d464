""":func:`decide` over a grid of positions and intents, checked against the rules of its module
docstring by playing the returned steps on the position (a small model of the venue), plus
the rules' own examples.

The model: ``entry`` adds its quantity on its side, ``reduce`` takes its quantity off on its
side, ``liquidate`` ends flat, ``wait_flat``/``cancel``/``resize`` leave the position alone.
"""

from __future__ import annotations

import itertools
from decimal import Decimal
from typing import Any

import pytest

from phalanx_common.events import OrderIntent
from phalanx_executor.decisions import Decision, Step, WorkingOrder, decide

POSITIONS = [-5, -2, -1, 0, 1, 2, 5]


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
        "quantity": 2,
    }
    return OrderIntent(**{**base, **fields})


def _play(position: int, decision: Decision) -> int:
    for step in decision.steps:
        if step.kind == "entry" or step.kind == "reduce":
            position += step.quantity if step.action == "Buy" else -step.quantity
        elif step.kind == "liquidate":
            position = 0
    return position


def _sign(n: int) -> int:
    return (n > 0) - (n < 0)


ENTRY_GRID = list(
    itertools.product(POSITIONS, ["Buy", "Sell"], [False, True], [False, True], [1, 3])
)


@pytest.mark.parametrize(("position", "action", "allow_add", "allow_reversal", "qty"), ENTRY_GRID)
def test_entries_open_add_reverse_or_refuse_as_the_rules_say(
    position: int, action: str, allow_add: bool, allow_reversal: bool, qty: int
) -> None:
    intent = _intent(
        action=action, quantity=qty, allow_add=allow_add, allow_reversal=allow_reversal
    )
    decision = decide(intent, position, [])
    side = 1 if action == "Buy" else -1
    after = _play(position, decision)
    if position == 0:
        assert after == side * qty  # flat: the entry
    elif _sign(position) == side:
        if allow_add:
            assert after == position + side * qty
        else:
            assert (decision.refused, decision.steps) == ("already-in-position", ())
            return
    elif allow_reversal:
        assert after == side * qty  # close, wait until flat, enter
        assert [s.kind for s in decision.steps] == ["liquidate", "wait_flat", "entry"]
        assert decision.reversal
    else:
        assert after == 0  # side swap off: the opposite signal only closes
        assert decision.note.startswith("side-swap-disabled")
    assert decision.refused == ""
    if decision.added:  # an entry's guards check where it ends: where it really ends
        assert decision.resulting(position) == after


@pytest.mark.parametrize(
    ("position", "action", "qty"), list(itertools.product(POSITIONS, ["Buy", "Sell"], [1, 3]))
)
def test_a_sentiment_against_the_side_only_ever_reduces(
    position: int, action: str, qty: int
) -> None:
    sentiment = "bearish" if action == "Buy" else "bullish"
    decision = decide(_intent(action=action, quantity=qty, sentiment=sentiment), position, [])
    side = 1 if action == "Buy" else -1
    if _sign(position) != -side:
        assert decision.refused == "no-position-to-reduce"
        assert decision.steps == ()
        return
    after = _play(position, decision)
    assert abs(after) == abs(position) - min(qty, abs(position))
    assert _sign(after) in (0, _sign(position))  # never a flip


@pytest.mark.parametrize(("position", "qty"), list(itertools.product(POSITIONS, [1, 3])))
def test_add_grows_the_open_position_on_its_own_side(position: int, qty: int) -> None:
    for action in ("Buy", "Sell"):  # the signal's side does not matter
        decision = decide(_intent(kind="add", action=action, quantity=qty), position, [])
        if position == 0:
            assert decision.refused == "no-position"
            continue
        assert _play(position, decision) == position + _sign(position) * qty


@pytest.mark.parametrize(
    ("position", "exit_quantity", "exit_percent"),
    list(
        itertools.product(
            POSITIONS,
            [None, 1, 2, 9],
            [None, Decimal(10), Decimal(30), Decimal(50), Decimal(75), Decimal(100)],
        )
    ),
)
def test_exits_shrink_toward_flat_and_never_flip(
    position: int, exit_quantity: int | None, exit_percent: Decimal | None
) -> None:
    intent = _intent(
        kind="exit", action="Sell", exit_quantity=exit_quantity, exit_percent=exit_percent
    )
    decision = decide(intent, position, [])
    if position == 0:
        assert decision.refused == "no-position"
        return
    if exit_percent is not None:
        wanted = int(abs(position) * exit_percent // 100)  # floor, as TradersPost
        if wanted == 0:
            assert decision.refused == "quantity-rounds-to-zero"
            return
    else:
        wanted = abs(position) if exit_quantity is None else exit_quantity
    after = _play(position, decision)
    assert abs(after) == max(0, abs(position) - wanted)
    assert _sign(after) in (0, _sign(position))
    # liquidate when nothing is left, a market reduce otherwise
    expected_kind = "liquidate" if after == 0 else "reduce"
    assert decision.steps[-1].kind == expected_kind


@pytest.mark.parametrize(
    ("working", "cancel_order_type", "expected"),
    [
        ([], None, "nothing-to-cancel"),
        ([WorkingOrder(1, "Limit")], "Stop", "nothing-to-cancel"),
        ([WorkingOrder(1, "Limit"), WorkingOrder(2, "Stop")], None, [1, 2]),
        ([WorkingOrder(1, "Limit"), WorkingOrder(2, "Stop")], "Stop", [2]),
        # a leg whose parent is canceled too goes with its parent
        ([WorkingOrder(1, "Limit"), WorkingOrder(2, "Stop", 1)], None, [1]),
        ([WorkingOrder(1, "Limit"), WorkingOrder(2, "Stop", 1)], "Stop", [2]),
    ],
)
def test_cancel_cancels_the_working_orders_it_names(
    working: list[WorkingOrder], cancel_order_type: str | None, expected: str | list[int]
) -> None:
    intent = _intent(kind="cancel", cancel_order_type=cancel_order_type)
    decision = decide(intent, 0, working)
    if isinstance(expected, str):
        assert (decision.refused, decision.steps) == (expected, ())
    else:
        assert decision.steps == tuple(Step("cancel", order_id=i) for i in expected)


@pytest.mark.parametrize(
    ("position", "cancel", "cancels"),
    [
        (0, None, True),  # an entry from flat cancels first (TradersPost's default)
        (0, True, True),
        (0, False, False),
        (1, None, False),  # an allowed add cancels only when asked
        (1, True, True),
        (-1, None, False),  # a reversal's liquidation cancels them already
        (-1, True, False),
    ],
)
def test_cancels_before_an_entry(position: int, cancel: bool | None, cancels: bool) -> None:
    working = [WorkingOrder(7, "Limit")]
    decision = decide(_intent(cancel=cancel, allow_add=True), position, working)
    assert (Step("cancel", order_id=7) in decision.steps) is cancels
    # the cancels never change where the entry ends: long 2 more, or long 2 after a reversal
    assert _play(position, decision) == (position + 2 if position > 0 else 2)
