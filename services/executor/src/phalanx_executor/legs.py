"""Bracket legs that follow the position: ``modifyorder`` of a working leg's ``orderQty``.

A partial exit shrinks the legs first (ADR-0060): the new version keeps the leg's type, prices
and time in force and changes only its quantity. A leg that finished meanwhile (filled or
canceled: ``TooLate``) has nothing left to resize.
"""

from __future__ import annotations

from phalanx_executor.decisions import Step
from phalanx_executor.venue_view import VenueView
from phalanx_tradovate import TradovateSocket, wire
from phalanx_tradovate import errors as tv_errors

__all__ = ["resize_leg"]


async def resize_leg(
    sock: TradovateSocket, view: VenueView, step: Step, ticket: str | None, wait_s: float
) -> None:
    """Set a working leg's quantity to ``step.quantity`` and wait (bounded) to see it applied.

    Raises:
        tv_errors.OrderRejected: the venue refused the change for another reason than TooLate.
        ValueError: the leg's version (type and prices) is not known to the view.
    """
    assert step.order_id is not None
    leg = step.order_id
    version = view.version(leg)
    if version is None or version.orderType is None:
        raise ValueError(f"bracket leg {leg}: its type and prices are not known yet")
    modify = wire.ModifyOrder(
        orderId=leg,
        orderQty=step.quantity,
        orderType=version.orderType,  # type: ignore[arg-type]
        price=version.price,
        stopPrice=version.stopPrice,
        pegDifference=version.pegDifference,
        timeInForce=version.timeInForce,  # type: ignore[arg-type]
        isAutomated=True,
    )
    try:
        await sock.modify_order(modify, p_ticket=ticket)
    except tv_errors.OrderRejected as exc:
        if exc.failure_reason != "TooLate":
            raise
        return

    def applied() -> bool:
        now = view.version(leg)
        return view.finished(leg) or (now is not None and now.orderQty == step.quantity)

    await view.wait_for(applied, wait_s)
