"""Find, at the venue, the order a ``clOrdId`` created for one account (ADR-0006).

Only per-account queries are used (``order/deps?masterid=<accountId>``, then
``command/deps?masterid=<orderId>``), never a cross-account ``*/list``, and every order is
checked to belong to the account asked about. Each request goes through ``call``: a permit
first, and penalties or lockouts the venue answers block the login (venue_calls.py).
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Protocol, TypeVar

from phalanx_tradovate import TradovateSocket, wire

__all__ = ["VenueCall", "find_order_by_cl_ord_id"]

T = TypeVar("T")


class VenueCall(Protocol):
    """Send one request of the login under a permit, honouring penalties (``VenueCalls``)."""

    def __call__(self, send: Callable[[str | None], Awaitable[T]]) -> Awaitable[T]: ...


async def find_order_by_cl_ord_id(
    sock: TradovateSocket,
    account_id: int,
    cl_ord_id: str,
    call: VenueCall,
    contract_id: int | None = None,
) -> int | None:
    """The id of the account's order whose creating command carries ``cl_ord_id``, or None.

    None is proof of absence only as far as the venue's answers go: callers wait out a grace
    period after the last send before trusting it.
    """

    async def orders_of(_ticket: str | None) -> list[wire.Order]:
        return await sock.order_deps(account_id)

    orders = await call(orders_of)
    candidates = [
        o
        for o in orders
        if o.accountId == account_id
        and o.parentId is None
        and (contract_id is None or o.contractId == contract_id)
    ]
    for order in sorted(candidates, key=lambda o: o.id, reverse=True):
        commands = await call(functools.partial(_commands_of, sock, order.id))
        if any(c.clOrdId == cl_ord_id and c.orderId == order.id for c in commands):
            return order.id
    return None


async def _commands_of(
    sock: TradovateSocket, order_id: int, _ticket: str | None
) -> list[wire.Command]:
    return await sock.command_deps(order_id)
