# ruff: noqa: N815
"""Tradovate's entities as the venue reports them (accounts, contracts, orders and their
versions, commands and reports, fills and their fees, positions, cash balances)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from phalanx_tradovate.wire_base import Action, WireStruct

__all__ = [
    "Account",
    "CashBalance",
    "Command",
    "CommandReport",
    "Contract",
    "ExecutionReport",
    "Fill",
    "FillFee",
    "Order",
    "OrderVersion",
    "Position",
]


class Account(WireStruct, frozen=True, kw_only=True):
    """A broker account: ``id`` is the accountId, ``name`` the accountSpec."""

    id: int
    name: str
    userId: int | None = None
    accountType: str | None = None
    active: bool | None = None
    clearingHouseId: int | None = None
    riskCategoryId: int | None = None
    autoLiqProfileId: int | None = None
    marginAccountType: str | None = None
    legalStatus: str | None = None
    archived: bool | None = None
    readonly: bool | None = None


class Contract(WireStruct, frozen=True, kw_only=True):
    """A dated contract (``MNQZ5``)."""

    id: int
    name: str
    contractMaturityId: int | None = None
    status: str | None = None
    providerTickSize: Decimal | None = None


class Order(WireStruct, frozen=True, kw_only=True):
    """An order; price and quantity live on :class:`OrderVersion`."""

    id: int
    accountId: int | None = None
    contractId: int | None = None
    spreadDefinitionId: int | None = None
    timestamp: str | None = None
    action: Action | None = None
    ordStatus: str | None = None
    executionProviderId: int | None = None
    ocoId: int | None = None
    parentId: int | None = None
    linkedId: int | None = None
    admin: bool | None = None


class OrderVersion(WireStruct, frozen=True, kw_only=True):
    """Quantity, type and prices of an order."""

    id: int
    orderId: int | None = None
    orderQty: int | None = None
    orderType: str | None = None
    price: Decimal | None = None
    stopPrice: Decimal | None = None
    maxShow: int | None = None
    pegDifference: Decimal | None = None
    timeInForce: str | None = None
    expireTime: str | None = None
    text: str | None = None


class Command(WireStruct, frozen=True, kw_only=True):
    """A command sent for an order; carries the client's ``clOrdId``."""

    id: int
    orderId: int | None = None
    timestamp: str | None = None
    clOrdId: str | None = None
    commandType: str | None = None
    commandStatus: str | None = None
    senderId: int | None = None
    userSessionId: int | None = None
    activationTime: str | None = None
    customTag50: str | None = None
    isAutomated: bool | None = None


class CommandReport(WireStruct, frozen=True, kw_only=True):
    """The venue's report on a command (``RiskRejected`` etc.)."""

    id: int
    commandId: int | None = None
    timestamp: str | None = None
    commandStatus: str | None = None
    rejectReason: str | None = None
    text: str | None = None
    ordStatus: str | None = None


class ExecutionReport(WireStruct, frozen=True, kw_only=True):
    """An execution report (new, trade, canceled, rejected ...)."""

    id: int
    commandId: int | None = None
    name: str | None = None
    accountId: int | None = None
    contractId: int | None = None
    timestamp: str | None = None
    tradeDate: dict[str, Any] | None = None
    orderId: int | None = None
    execType: str | None = None
    execRefId: str | None = None
    ordStatus: str | None = None
    action: Action | None = None
    cumQty: int | None = None
    avgPx: Decimal | None = None
    lastQty: int | None = None
    lastPx: Decimal | None = None
    rejectReason: str | None = None
    text: str | None = None
    exchangeOrderId: str | None = None


class Fill(WireStruct, frozen=True, kw_only=True):
    """A fill of an order."""

    id: int
    orderId: int | None = None
    contractId: int | None = None
    timestamp: str | None = None
    tradeDate: dict[str, Any] | None = None
    action: Action | None = None
    qty: int | None = None
    price: Decimal | None = None
    active: bool | None = None
    finallyPaired: int | None = None


class FillFee(WireStruct, frozen=True, kw_only=True):
    """Commissions and fees of one fill (``fillFee/deps?masterid=<fill id>``); each amount
    comes with the id of its currency (1: USD)."""

    id: int
    clearingFee: Decimal | None = None
    clearingCurrencyId: int | None = None
    exchangeFee: Decimal | None = None
    exchangeCurrencyId: int | None = None
    nfaFee: Decimal | None = None
    nfaCurrencyId: int | None = None
    brokerageFee: Decimal | None = None
    brokerageCurrencyId: int | None = None
    ipFee: Decimal | None = None
    ipCurrencyId: int | None = None
    commission: Decimal | None = None
    commissionCurrencyId: int | None = None
    orderRoutingFee: Decimal | None = None
    orderRoutingCurrencyId: int | None = None


class Position(WireStruct, frozen=True, kw_only=True):
    """A position of an account in a contract; ``netPos`` is signed."""

    id: int
    accountId: int | None = None
    contractId: int | None = None
    timestamp: str | None = None
    tradeDate: dict[str, Any] | None = None
    netPos: int | None = None
    netPrice: Decimal | None = None
    bought: int | None = None
    boughtValue: Decimal | None = None
    sold: int | None = None
    soldValue: Decimal | None = None
    prevPos: int | None = None
    prevPrice: Decimal | None = None


class CashBalance(WireStruct, frozen=True, kw_only=True):
    """Cash of an account."""

    id: int
    accountId: int | None = None
    timestamp: str | None = None
    tradeDate: dict[str, Any] | None = None
    currencyId: int | None = None
    amount: Decimal | None = None
    realizedPnL: Decimal | None = None
    weekRealizedPnL: Decimal | None = None
