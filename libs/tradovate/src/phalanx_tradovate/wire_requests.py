# ruff: noqa: N815
"""Tradovate's request bodies and their answers: order commands (place, OSO, cancel, modify,
liquidate) and ``user/syncrequest`` with its snapshot."""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Final

import msgspec
from msgspec.structs import force_setattr

from phalanx_tradovate.wire_base import Action, OrderType, TimeInForce, WireStruct
from phalanx_tradovate.wire_entities import (
    Account,
    CashBalance,
    Command,
    CommandReport,
    Contract,
    ExecutionReport,
    Fill,
    Order,
    OrderVersion,
    Position,
)

__all__ = [
    "DEFAULT_ENTITY_TYPES",
    "CancelOrder",
    "CommandResult",
    "LiquidatePosition",
    "ModifyOrder",
    "PlaceOrder",
    "PlaceOrderResult",
    "PlaceOso",
    "PlaceOsoResult",
    "RestrainedOrderVersion",
    "SyncRequest",
    "SyncSnapshot",
]


# -- commands --------------------------------------------------------------------------------


class RestrainedOrderVersion(WireStruct, frozen=True, kw_only=True):
    """A bracket leg of ``placeoso`` (absolute prices; no quantity or symbol)."""

    action: Action
    orderType: OrderType
    price: Decimal | None = None
    stopPrice: Decimal | None = None
    clOrdId: str | None = None
    maxShow: int | None = None
    pegDifference: Decimal | None = None
    timeInForce: TimeInForce | None = None
    expireTime: str | None = None
    text: str | None = None


class _Automated(WireStruct, frozen=True, kw_only=True):
    """Mixin: ``isAutomated`` defaults to ``True`` and is always encoded (CME Rule 536-B)."""

    isAutomated: bool | None = None

    def __post_init__(self) -> None:
        if self.isAutomated is None:
            force_setattr(self, "isAutomated", True)


class PlaceOrder(_Automated, frozen=True, kw_only=True):
    """Body of ``order/placeorder``. Send both ``accountId`` and ``accountSpec``."""

    accountSpec: str
    accountId: int
    action: Action
    symbol: str
    orderQty: int
    orderType: OrderType
    price: Decimal | None = None
    stopPrice: Decimal | None = None
    maxShow: int | None = None
    pegDifference: Decimal | None = None
    timeInForce: TimeInForce | None = None
    expireTime: str | None = None
    text: str | None = None
    activationTime: str | None = None
    customTag50: str | None = None
    clOrdId: str | None = None


class PlaceOso(PlaceOrder, frozen=True, kw_only=True):
    """Body of ``order/placeoso``: an entry plus one or two bracket legs (OCO when two)."""

    bracket1: RestrainedOrderVersion
    bracket2: RestrainedOrderVersion | None = None


class PlaceOrderResult(WireStruct, frozen=True, kw_only=True):
    """Answer of ``placeorder`` and ``liquidateposition``."""

    orderId: int | None = None
    failureReason: str | None = None
    failureText: str | None = None


class PlaceOsoResult(WireStruct, frozen=True, kw_only=True):
    """Answer of ``placeoso``: entry id and the bracket leg ids."""

    orderId: int | None = None
    oso1Id: int | None = None
    oso2Id: int | None = None
    failureReason: str | None = None
    failureText: str | None = None


class CancelOrder(_Automated, frozen=True, kw_only=True):
    """Body of ``order/cancelorder``."""

    orderId: int
    clOrdId: str | None = None
    activationTime: str | None = None
    customTag50: str | None = None


class ModifyOrder(_Automated, frozen=True, kw_only=True):
    """Body of ``order/modifyorder``: the new quantity, type and prices of a working order.

    Keep the order's type and time in force; the answer only means the command was queued.
    """

    orderId: int
    orderQty: int
    orderType: OrderType
    price: Decimal | None = None
    stopPrice: Decimal | None = None
    maxShow: int | None = None
    pegDifference: Decimal | None = None
    timeInForce: TimeInForce | None = None
    expireTime: str | None = None
    text: str | None = None
    activationTime: str | None = None
    customTag50: str | None = None
    clOrdId: str | None = None


class CommandResult(WireStruct, frozen=True, kw_only=True):
    """Answer of ``cancelorder``/``modifyorder``: the command was queued, not yet applied."""

    commandId: int | None = None
    failureReason: str | None = None
    failureText: str | None = None


class LiquidatePosition(_Automated, frozen=True, kw_only=True):
    """Body of ``order/liquidateposition``: cancel the contract's orders and close the position.

    ``admin`` is required by the venue and always encoded (``false`` unless set).
    """

    accountId: int
    contractId: int
    admin: bool | None = None
    customTag50: str | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.admin is None:
            force_setattr(self, "admin", False)


# -- sync ------------------------------------------------------------------------------------

DEFAULT_ENTITY_TYPES: Final[tuple[str, ...]] = (
    "account",
    "position",
    "order",
    "orderVersion",
    "command",
    "commandReport",
    "executionReport",
    "fill",
    "cashBalance",
    "orderStrategy",
)
"""Entity types requested by ``user/syncrequest`` (newer servers default to none)."""


class SyncRequest(WireStruct, frozen=True, kw_only=True):
    """Body of ``user/syncrequest``; ``entityTypes`` is always sent explicitly."""

    users: list[int] | None = None
    accounts: list[int] | None = None
    splitResponses: bool | None = None
    entityTypes: list[str] | None = None

    def __post_init__(self) -> None:
        # Defaults are filled in here, not as field defaults, so omit_defaults never drops them:
        # the venue needs splitResponses and (on newer servers) an explicit entityTypes list.
        if self.splitResponses is None:
            force_setattr(self, "splitResponses", True)
        if self.entityTypes is None:
            force_setattr(self, "entityTypes", list(DEFAULT_ENTITY_TYPES))


class SyncSnapshot(WireStruct, frozen=True, kw_only=True):
    """The initial snapshot answered to ``user/syncrequest`` (the arrays Phalanx uses)."""

    users: list[dict[str, Any]] = msgspec.field(default_factory=list)
    accounts: list[Account] = msgspec.field(default_factory=list)
    positions: list[Position] = msgspec.field(default_factory=list)
    orders: list[Order] = msgspec.field(default_factory=list)
    orderVersions: list[OrderVersion] = msgspec.field(default_factory=list)
    commands: list[Command] = msgspec.field(default_factory=list)
    commandReports: list[CommandReport] = msgspec.field(default_factory=list)
    executionReports: list[ExecutionReport] = msgspec.field(default_factory=list)
    fills: list[Fill] = msgspec.field(default_factory=list)
    cashBalances: list[CashBalance] = msgspec.field(default_factory=list)
    contracts: list[Contract] = msgspec.field(default_factory=list)
