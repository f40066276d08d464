"""The typed venue calls of a trading WebSocket: orders (place, OSO, cancel, modify, liquidate)
and the reads around them (orders, positions, commands, contracts, finding a ``clOrdId``).

:class:`SocketCalls` turns each call into one :meth:`SocketCalls.request` on an endpoint and
converts the answer to its wire type; :class:`~phalanx_tradovate.ws.TradovateSocket` supplies
the request. Errors are the REST client's (``phalanx_tradovate.errors``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, TypeVar

import msgspec

from phalanx_tradovate import wire
from phalanx_tradovate.errors import ProtocolError
from phalanx_tradovate.rest import _find_command

__all__ = ["SocketCalls"]

T = TypeVar("T")


class SocketCalls:
    """Typed calls over a transport whose :meth:`request` returns a response's ``d``."""

    async def request(
        self,
        endpoint: str,
        body: msgspec.Struct | dict[str, Any] | list[Any] | str | bytes | None = None,
        query: str = "",
        *,
        timeout_s: float | None = None,
    ) -> Any:
        """Send one request and return the response's ``d`` once its status is checked."""
        raise NotImplementedError

    async def _typed(
        self,
        endpoint: str,
        type_: type[T],
        body: msgspec.Struct | dict[str, Any] | bytes | None = None,
        query: str = "",
    ) -> T:
        data = await self.request(endpoint, body, query)
        try:
            return wire.convert(data, type_)
        except msgspec.ValidationError as exc:
            raise ProtocolError(f"unexpected answer: {exc}", endpoint=endpoint) from exc

    async def place_oso(
        self, order: wire.PlaceOso, *, p_ticket: str | None = None
    ) -> wire.PlaceOsoResult:
        """Place an entry with bracket legs over the socket (errors as the REST client's)."""
        return await self._typed(
            "order/placeoso", wire.PlaceOsoResult, wire.encode_with_ticket(order, p_ticket)
        )

    async def place_order(
        self, order: wire.PlaceOrder, *, p_ticket: str | None = None
    ) -> wire.PlaceOrderResult:
        """Place a single order over the socket."""
        return await self._typed(
            "order/placeorder", wire.PlaceOrderResult, wire.encode_with_ticket(order, p_ticket)
        )

    async def cancel_order(
        self, cancel: wire.CancelOrder, *, p_ticket: str | None = None
    ) -> wire.CommandResult:
        """Cancel an order over the socket (queued, not yet applied)."""
        return await self._typed(
            "order/cancelorder", wire.CommandResult, wire.encode_with_ticket(cancel, p_ticket)
        )

    async def modify_order(
        self, modify: wire.ModifyOrder, *, p_ticket: str | None = None
    ) -> wire.CommandResult:
        """Change a working order over the socket (queued, not yet applied)."""
        return await self._typed(
            "order/modifyorder", wire.CommandResult, wire.encode_with_ticket(modify, p_ticket)
        )

    async def command_ldeps(self, order_ids: Iterable[int]) -> list[wire.Command]:
        """Commands of several orders (``command/ldeps?masterids=a,b``)."""
        ids = ",".join(str(i) for i in order_ids)
        if not ids:
            return []
        return await self._typed("command/ldeps", list[wire.Command], query=f"masterids={ids}")

    async def find_by_cl_ord_id(
        self, account_id: int, cl_ord_id: str, *, chunk: int = 100
    ) -> tuple[wire.Order, wire.Command] | None:
        """Find one account's order by ``clOrdId`` over the socket (see the REST client's)."""
        orders = [o for o in await self.order_deps(account_id) if o.accountId == account_id]
        return await _find_command(orders, cl_ord_id, chunk, self.command_ldeps)

    async def liquidate_position(
        self, req: wire.LiquidatePosition, *, p_ticket: str | None = None
    ) -> wire.PlaceOrderResult:
        """Cancel a contract's orders and close the position over the socket."""
        return await self._typed(
            "order/liquidateposition",
            wire.PlaceOrderResult,
            wire.encode_with_ticket(req, p_ticket),
        )

    async def order_deps(self, account_id: int) -> list[wire.Order]:
        """Orders of one account (``order/deps?masterid=<accountId>``)."""
        return await self._typed("order/deps", list[wire.Order], query=f"masterid={account_id}")

    async def position_deps(self, account_id: int) -> list[wire.Position]:
        """Positions of one account (``position/deps?masterid=<accountId>``)."""
        return await self._typed(
            "position/deps", list[wire.Position], query=f"masterid={account_id}"
        )

    async def command_deps(self, order_id: int) -> list[wire.Command]:
        """Commands (with ``clOrdId``) of one order (``command/deps?masterid=<orderId>``)."""
        return await self._typed("command/deps", list[wire.Command], query=f"masterid={order_id}")

    async def order_item(self, id: int) -> wire.Order:
        """One order by id (its ``accountId``, e.g. to attribute a fill)."""
        return await self._typed("order/item", wire.Order, query=f"id={id}")

    async def contract_item(self, id: int) -> wire.Contract:
        """One contract by id."""
        return await self._typed("contract/item", wire.Contract, query=f"id={id}")

    async def contract_find(self, name: str) -> wire.Contract:
        """One contract by name (``MNQZ5``)."""
        return await self._typed("contract/find", wire.Contract, query=f"name={name}")
