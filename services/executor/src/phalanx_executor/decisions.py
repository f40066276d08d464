"""What an intent means for one account right now: the TradersPost semantics (field-survey §1.3).

:func:`decide` is pure: given the intent, the account's signed position in the contract and its
working orders there, it returns the venue steps to take, or a refusal with a reason.

- entry buy (sell mirrors): flat → place the entry with its bracket; already long → refused
  ``already-in-position`` unless the subscription allows adding; short → reversal: liquidate,
  wait until flat, then place the entry (refused ``side-swap-disabled`` when not allowed).
- buy with ``sentiment: bearish`` (sell with ``bullish``) is a partial cover: while short,
  a market buy of min(qty, |short|); otherwise refused ``no-position-to-reduce``.
- add: same side → place the entry; flat → ``no-position``; opposite → ``add-against-position``.
- exit, or buy/sell with ``sentiment: flat``: open → liquidate the whole position, or a market
  reduce of ``exit_quantity`` when that is smaller; flat → ``no-position``.
- cancel: cancel each working order of the contract; none → ``nothing-to-cancel``.

Exits use ``liquidateposition``, which closes the position and cancels that contract's working
orders (the bracket legs) in one call, so no take-profit or stop is left behind.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from phalanx_common.events import OrderIntent, VenueAction

__all__ = ["Decision", "Step", "decide"]

StepKind = Literal["entry", "reduce", "liquidate", "wait_flat", "cancel"]


@dataclass(frozen=True)
class Step:
    """One venue operation (or a wait) of a decision."""

    kind: StepKind
    action: VenueAction | None = None
    quantity: int = 0
    order_id: int | None = None


@dataclass(frozen=True)
class Decision:
    """Steps to run, or why nothing may be done."""

    steps: tuple[Step, ...] = field(default_factory=tuple)
    refused: str = ""
    text: str = ""
    added: int = 0  # signed contracts the entry adds (for guards)

    @property
    def operation(self) -> str:
        """Name of the main venue operation, for the outcome event."""
        kinds = [s.kind for s in self.steps]
        if "entry" in kinds:
            return "reversal" if "liquidate" in kinds else "entry"
        return kinds[0] if kinds else ""


def _refuse(reason: str, text: str) -> Decision:
    return Decision(refused=reason, text=text)


def decide(intent: OrderIntent, position: int, working_order_ids: list[int]) -> Decision:
    """The steps for ``intent`` given the account's ``position`` and working orders."""
    if intent.kind == "cancel":
        if not working_order_ids:
            return _refuse("nothing-to-cancel", f"no working orders in {intent.symbol}")
        return Decision(steps=tuple(Step("cancel", order_id=o) for o in working_order_ids))

    if intent.kind == "exit":
        if position == 0:
            return _refuse("no-position", f"no position in {intent.symbol} to exit")
        qty = intent.exit_quantity
        if qty is None or qty >= abs(position):
            return Decision(steps=(Step("liquidate"),))
        action: VenueAction = "Sell" if position > 0 else "Buy"
        return Decision(steps=(Step("reduce", action=action, quantity=qty),))

    sign = 1 if intent.action == "Buy" else -1
    entry = Step("entry", action=intent.action, quantity=intent.quantity)

    if intent.kind == "add":
        if position == 0:
            return _refuse("no-position", f"no position in {intent.symbol} to add to")
        if position * sign < 0:
            return _refuse("add-against-position", "add must be on the side of the position")
        return Decision(steps=(entry,), added=sign * intent.quantity)

    # entry
    wants_short_after_buy = intent.sentiment == "bearish" and sign > 0
    wants_long_after_sell = intent.sentiment == "bullish" and sign < 0
    if wants_short_after_buy or wants_long_after_sell:  # a partial cover/reduce, never a flip
        if position * sign >= 0:
            return _refuse("no-position-to-reduce", "sentiment asks to reduce, but no position")
        qty = min(intent.quantity, abs(position))
        return Decision(steps=(Step("reduce", action=intent.action, quantity=qty),))
    if position * sign > 0 and not intent.allow_add:
        return _refuse(
            "already-in-position",
            f"already {'long' if sign > 0 else 'short'} {abs(position)}; add is not allowed",
        )
    if position * sign < 0:
        if not intent.allow_reversal:
            return _refuse("side-swap-disabled", "opposite position and side swapping is off")
        return Decision(
            steps=(Step("liquidate"), Step("wait_flat"), entry), added=sign * intent.quantity
        )
    return Decision(steps=(entry,), added=sign * intent.quantity)
