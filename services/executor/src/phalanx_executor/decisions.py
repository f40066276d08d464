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
- exit with ``exit_percent`` (``quantityType: percent_of_position``): floor(|position| x
  percent / 100) contracts; 100 or more liquidates, 0 is refused ``quantity-rounds-to-zero``.
- cancel: cancel each working order of the contract (only those of ``cancel_order_type`` when
  set); none → ``nothing-to-cancel``.
- cancels before an entry (TradersPost ``cancel``, ADR-0035): an entry from flat first cancels
  the contract's working orders unless ``cancel`` is false; an add (or an allowed same-side
  entry, or a partial cover) cancels only when ``cancel`` is true; ``cancel_order_type``
  restricts them to one order type. A reversal's liquidation already cancels them; a refused
  intent cancels nothing. A suspended bracket leg whose parent is canceled too is not canceled
  separately (the venue cancels it with its parent).

Exits use ``liquidateposition``, which closes the position and cancels that contract's working
orders (the bracket legs) in one call, so no take-profit or stop is left behind.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import ROUND_FLOOR
from typing import Literal

from phalanx_common.events import OrderIntent, VenueAction

__all__ = ["Decision", "Step", "WorkingOrder", "decide"]

StepKind = Literal["entry", "reduce", "liquidate", "wait_flat", "cancel"]


@dataclass(frozen=True)
class Step:
    """One venue operation (or a wait) of a decision."""

    kind: StepKind
    action: VenueAction | None = None
    quantity: int = 0
    order_id: int | None = None


@dataclass(frozen=True)
class WorkingOrder:
    """A working (or suspended) order of the account in the intent's contract."""

    id: int
    order_type: str | None = None  # the venue's orderType (None: not known yet)
    parent_id: int | None = None


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
        if "reduce" in kinds:  # possibly after cancels
            return "reduce"
        return kinds[0] if kinds else ""


def _refuse(reason: str, text: str) -> Decision:
    return Decision(refused=reason, text=text)


def _cancels(intent: OrderIntent, working: Sequence[WorkingOrder]) -> tuple[Step, ...]:
    wanted = [
        o
        for o in working
        if intent.cancel_order_type is None or o.order_type == intent.cancel_order_type
    ]
    ids = {o.id for o in wanted}
    return tuple(Step("cancel", order_id=o.id) for o in wanted if o.parent_id not in ids)


def _exit(intent: OrderIntent, position: int) -> Decision:
    if position == 0:
        return _refuse("no-position", f"no position in {intent.symbol} to exit")
    qty = intent.exit_quantity
    if intent.exit_percent is not None:
        if intent.exit_percent >= 100:
            return Decision(steps=(Step("liquidate"),))
        share = abs(position) * intent.exit_percent / 100
        qty = int(share.to_integral_value(rounding=ROUND_FLOOR))
        if qty <= 0:
            return _refuse(
                "quantity-rounds-to-zero",
                f"{intent.exit_percent}% of {abs(position)} contracts rounds down to 0",
            )
    if qty is None or qty >= abs(position):
        return Decision(steps=(Step("liquidate"),))
    action: VenueAction = "Sell" if position > 0 else "Buy"
    return Decision(steps=(Step("reduce", action=action, quantity=qty),))


def decide(intent: OrderIntent, position: int, working: Sequence[WorkingOrder | int]) -> Decision:
    """The steps for ``intent`` given the account's ``position`` and working orders."""
    orders = [o if isinstance(o, WorkingOrder) else WorkingOrder(o) for o in working]
    if intent.kind == "cancel":
        cancels = _cancels(intent, orders)
        if not cancels:
            what = f" {intent.cancel_order_type}" if intent.cancel_order_type else ""
            return _refuse("nothing-to-cancel", f"no working{what} orders in {intent.symbol}")
        return Decision(steps=cancels)

    if intent.kind == "exit":
        return _exit(intent, position)

    asked = _cancels(intent, orders) if intent.cancel else ()  # cancel: true

    if intent.kind == "add":  # TradersPost's add: more of the position, on its side
        if position == 0:
            return _refuse("no-position", f"no position in {intent.symbol} to add to")
        side: VenueAction = "Buy" if position > 0 else "Sell"
        add = Step("entry", action=side, quantity=intent.quantity)
        return Decision(steps=(*asked, add), added=(1 if position > 0 else -1) * intent.quantity)

    sign = 1 if intent.action == "Buy" else -1
    entry = Step("entry", action=intent.action, quantity=intent.quantity)

    # entry
    wants_short_after_buy = intent.sentiment == "bearish" and sign > 0
    wants_long_after_sell = intent.sentiment == "bullish" and sign < 0
    if wants_short_after_buy or wants_long_after_sell:  # a partial cover/reduce, never a flip
        if position * sign >= 0:
            return _refuse("no-position-to-reduce", "sentiment asks to reduce, but no position")
        qty = min(intent.quantity, abs(position))
        return Decision(steps=(*asked, Step("reduce", action=intent.action, quantity=qty)))
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
    if position == 0 and intent.cancel is not False:  # TradersPost's default for an entry
        asked = _cancels(intent, orders)
    return Decision(steps=(*asked, entry), added=sign * intent.quantity)
