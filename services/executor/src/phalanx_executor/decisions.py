"""What an intent means for one account right now: TradersPost semantics (docs/signal-fields.md).

:func:`decide` is pure: given the intent, the account's signed position in the contract and its
working orders there, it returns the venue steps to take, or a refusal with a reason.

- entry buy (sell mirrors): flat → place the entry with its bracket; already long → refused
  ``already-in-position`` unless the subscription allows adding; short → reversal: liquidate,
  wait until flat, then place the entry. With side swapping off the opposite signal only
  closes the position (TradersPost: exit only), recorded with the note ``side-swap-disabled``.
- buy with ``sentiment: bearish`` (sell with ``bullish``) is a partial cover: while short,
  a market buy of min(qty, |short|); otherwise refused ``no-position-to-reduce``.
- add: more of the open position, on its side (whatever the signal's side); flat →
  ``no-position``.
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
orders (the bracket legs) in one call, so no take-profit or stop is left behind. A partial exit
(a market reduce) first shrinks the working bracket legs to the position that will be left —
``resize`` steps (``modifyorder`` of the legs' ``orderQty``), newest bracket first, a bracket cut
to nothing is canceled — so a stop can never fire for more than the position and flip it
(ADR-0060). Legs shrink before the reduce, so no moment has legs larger than the position.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import ROUND_FLOOR
from typing import Literal

from phalanx_common.events import OrderIntent, VenueAction

__all__ = ["Decision", "Step", "WorkingOrder", "decide"]

StepKind = Literal["entry", "reduce", "liquidate", "wait_flat", "cancel", "resize"]


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
    quantity: int | None = None  # orderQty of its latest version (None: not known yet)
    suspended: bool = False  # a bracket leg waiting for its entry's fill


@dataclass(frozen=True)
class Decision:
    """Steps to run, or why nothing may be done."""

    steps: tuple[Step, ...] = field(default_factory=tuple)
    refused: str = ""
    text: str = ""
    added: int = 0  # signed contracts the entry adds (for guards)
    note: str = ""  # why the decision differs from what the signal asked (recorded, ADR-0060)

    @property
    def reversal(self) -> bool:
        """Whether this closes an opposite position and then enters."""
        kinds = [s.kind for s in self.steps]
        return "liquidate" in kinds and "entry" in kinds

    def resulting(self, position: int) -> int:
        """The signed position once every step is done (an entry's guards check this)."""
        return self.added if self.reversal else position + self.added

    def exit_half(self, note: str) -> Decision:
        """Only the closing steps of a reversal (its entry refused), with why."""
        return Decision(steps=(Step("liquidate"),), note=note)

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


def _exit(intent: OrderIntent, position: int, working: Sequence[WorkingOrder]) -> Decision:
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
    return Decision(
        steps=(*_shrink_legs(position, qty, working), Step("reduce", action=action, quantity=qty))
    )


def _shrink_legs(
    position: int, reduce_by: int, working: Sequence[WorkingOrder]
) -> tuple[Step, ...]:
    """Resize (or cancel) the working bracket legs so they cover at most what is left.

    Legs are grouped by their entry (``parent_id``); both legs of a bracket share a size. The
    newest brackets shrink first; a bracket cut to nothing is canceled. A leg of unknown size
    counts as the whole position.
    """
    left = abs(position) - reduce_by
    brackets: dict[int, list[WorkingOrder]] = {}
    for order in working:
        if order.parent_id is not None and not order.suspended:
            brackets.setdefault(order.parent_id, []).append(order)
    # a leg whose size is not known yet counts as covering the whole position (resized, and
    # the resize waits for its version), so no leg is ever left larger than what remains
    sizes = {
        parent: max(abs(position) if o.quantity is None else o.quantity for o in legs)
        for parent, legs in brackets.items()
    }
    excess = sum(sizes.values()) - left
    steps: list[Step] = []
    for parent in sorted(brackets, reverse=True):
        if excess <= 0:
            break
        cut = min(sizes[parent], excess)
        excess -= cut
        size = sizes[parent] - cut
        for leg in brackets[parent]:
            if size == 0:
                steps.append(Step("cancel", order_id=leg.id))
            else:
                steps.append(Step("resize", quantity=size, order_id=leg.id))
    return tuple(steps)


def decide(intent: OrderIntent, position: int, working: Sequence[WorkingOrder | int]) -> Decision:
    """The steps for ``intent`` given the account's ``position`` and working orders."""
    orders = [o if isinstance(o, WorkingOrder) else WorkingOrder(o) for o in working]
    if intent.kind == "cancel":
        return _cancel_only(intent, orders)
    if intent.kind == "exit":
        return _exit(intent, position, orders)
    asked = _cancels(intent, orders) if intent.cancel else ()  # cancel: true
    if intent.kind == "add":  # TradersPost's add: more of the position, on its side
        return _add(intent, position, asked)
    return _entry(intent, position, orders, asked)


def _cancel_only(intent: OrderIntent, orders: list[WorkingOrder]) -> Decision:
    cancels = _cancels(intent, orders)
    if not cancels:
        what = f" {intent.cancel_order_type}" if intent.cancel_order_type else ""
        return _refuse("nothing-to-cancel", f"no working{what} orders in {intent.symbol}")
    return Decision(steps=cancels)


def _add(intent: OrderIntent, position: int, asked: tuple[Step, ...]) -> Decision:
    if position == 0:
        return _refuse("no-position", f"no position in {intent.symbol} to add to")
    side: VenueAction = "Buy" if position > 0 else "Sell"
    add = Step("entry", action=side, quantity=intent.quantity)
    return Decision(steps=(*asked, add), added=(1 if position > 0 else -1) * intent.quantity)


def _entry(
    intent: OrderIntent, position: int, orders: list[WorkingOrder], asked: tuple[Step, ...]
) -> Decision:
    sign = 1 if intent.action == "Buy" else -1
    entry = Step("entry", action=intent.action, quantity=intent.quantity)
    wants_short_after_buy = intent.sentiment == "bearish" and sign > 0
    wants_long_after_sell = intent.sentiment == "bullish" and sign < 0
    if wants_short_after_buy or wants_long_after_sell:  # a partial cover/reduce, never a flip
        return _reduce(intent, position, sign, orders, asked)
    if position * sign > 0 and not intent.allow_add:
        return _refuse(
            "already-in-position",
            f"already {'long' if sign > 0 else 'short'} {abs(position)}; add is not allowed",
        )
    if position * sign < 0:
        if not intent.allow_reversal:  # TradersPost: the opposite signal only closes
            return Decision(
                steps=(Step("liquidate"),),
                note="side-swap-disabled: opposite position closed, no new entry",
            )
        return Decision(
            steps=(Step("liquidate"), Step("wait_flat"), entry), added=sign * intent.quantity
        )
    if position == 0 and intent.cancel is not False:  # TradersPost's default for an entry
        asked = _cancels(intent, orders)
    return Decision(steps=(*asked, entry), added=sign * intent.quantity)


def _reduce(
    intent: OrderIntent,
    position: int,
    sign: int,
    orders: list[WorkingOrder],
    asked: tuple[Step, ...],
) -> Decision:
    if position * sign >= 0:
        return _refuse("no-position-to-reduce", "sentiment asks to reduce, but no position")
    qty = min(intent.quantity, abs(position))
    legs = () if asked else _shrink_legs(position, qty, orders)  # canceled anyway if asked
    reduce = Step("reduce", action=intent.action, quantity=qty)
    return Decision(steps=(*asked, *legs, reduce))
