"""Find, at the venue, the order a ``clOrdId`` created for one account (ADR-0006).

Only per-account queries are used (``order/deps?masterid=<accountId>``, then
``command/deps?masterid=<orderId>``), never a cross-account ``*/list``, and every order is
checked to belong to the account asked about. Each request takes a permit.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from phalanx_tradovate import TradovateSocket

__all__ = ["find_order_by_cl_ord_id"]


async def find_order_by_cl_ord_id(
    sock: TradovateSocket,
    account_id: int,
    cl_ord_id: str,
    permit: Callable[[], Awaitable[None]],
    contract_id: int | None = None,
) -> int | None:
    """The id of the account's order whose creating command carries ``cl_ord_id``, or None.

    None is proof of absence only as far as the venue's answers go: callers wait out a grace
    period after the last send before trusting it.
    """
    await permit()
    orders = await sock.order_deps(account_id)
    candidates = [
        o
        for o in orders
        if o.accountId == account_id
        and o.parentId is None
        and (contract_id is None or o.contractId == contract_id)
    ]
    for order in sorted(candidates, key=lambda o: o.id, reverse=True):
        await permit()
        commands = await sock.command_deps(order.id)
        if any(c.clOrdId == cl_ord_id and c.orderId == order.id for c in commands):
            return order.id
    return None
