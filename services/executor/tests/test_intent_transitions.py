"""``intents.TRANSITIONS`` against the table its module documents, and the shape of the machine:
every state is reachable, the terminal states are exactly those without a way out."""

from __future__ import annotations

import itertools
import typing

import pytest

from phalanx_common.records import IntentState
from phalanx_executor import intents
from phalanx_executor.intents import TERMINAL, TRANSITIONS

STATES: list[IntentState] = list(typing.get_args(IntentState))


def _documented() -> dict[str | None, set[str]]:
    """From → to as the module docstring's table states it (``released`` is a deletion)."""
    table: dict[str | None, set[str]] = {}
    for line in (intents.__doc__ or "").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 2 or cells[0] in ("from", "") or set(cells[0]) <= {"-"}:
            continue
        source = None if cells[0] == "(none)" else cells[0]
        targets: set[str] = set()
        for part in cells[1].split(","):
            name = part.strip().split(" ")[0]
            if name in STATES:
                targets.add(name)
        table[source] = targets
    return table


@pytest.mark.parametrize(("source", "target"), list(itertools.product([None, *STATES], STATES)))
def test_a_move_is_allowed_exactly_when_the_documented_table_lists_it(
    source: IntentState | None, target: IntentState
) -> None:
    assert (target in TRANSITIONS[source]) is (target in _documented()[source])


def test_the_table_has_a_row_for_every_state_and_no_state_it_does_not_know() -> None:
    assert set(TRANSITIONS) == {None, *STATES}
    assert set().union(*TRANSITIONS.values()) <= set(STATES)


def test_terminal_states_are_exactly_those_without_a_way_out() -> None:
    assert {s for s in STATES if not TRANSITIONS[s]} == set(TERMINAL)


def test_every_state_is_reachable_from_no_record_and_every_path_can_end() -> None:
    seen: set[IntentState | None] = {None}
    frontier: list[IntentState | None] = [None]
    while frontier:
        for nxt in TRANSITIONS[frontier.pop()]:
            if nxt not in seen:
                seen.add(nxt)
                frontier.append(nxt)
    assert seen == {None, *STATES}
    for state in STATES:  # from anywhere a terminal state can still be reached
        reach: set[IntentState] = {state}
        todo = [state]
        while todo:
            for nxt in TRANSITIONS[todo.pop()]:
                if nxt not in reach:
                    reach.add(nxt)
                    todo.append(nxt)
        assert reach & set(TERMINAL), state


@pytest.mark.parametrize("state", sorted(TERMINAL))
def test_nothing_moves_an_intent_back_to_claimed_once_it_ended(state: IntentState) -> None:
    assert "claimed" not in TRANSITIONS[state]
