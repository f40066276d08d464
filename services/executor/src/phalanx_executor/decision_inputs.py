"""What :func:`decisions.decide` needs from the venue view: the account's working orders."""

from __future__ import annotations

from phalanx_executor.decisions import WorkingOrder
from phalanx_executor.venue_view import VenueView

__all__ = ["working_orders"]


def working_orders(view: VenueView, account_id: int, contract_id: int) -> list[WorkingOrder]:
    """The account's working (or suspended) orders in a contract, with type, parent and size."""
    found = []
    for order in view.working_orders(account_id, contract_id):
        version = view.version(order.id)
        found.append(
            WorkingOrder(
                order.id,
                view.order_type(order.id),
                order.parentId,
                quantity=None if version is None else version.orderQty,
                suspended=order.ordStatus == "Suspended",
            )
        )
    return found
