"""Tradovate entities exactly as they travel on the wire (camelCase, absent fields omitted).

Field names and enums follow the official OpenAPI spec and the maintainer's entity docs
(docs/tradovate-protocol.md §4.8). Optional fields default to ``None`` and are left out of the
JSON, as the venue does. Entities are mutable: the simulator updates them in place and
publishes the new state as a ``props`` ``Updated`` event.
"""

# ruff: noqa: N815

from __future__ import annotations

import msgspec

__all__ = [
    "Account",
    "CashBalance",
    "Command",
    "CommandReport",
    "Contract",
    "ContractMaturity",
    "Entity",
    "ExecutionReport",
    "Fill",
    "Order",
    "OrderVersion",
    "Position",
    "Product",
    "TradeDate",
    "User",
]


class TradeDate(msgspec.Struct):
    """A trading session date as Tradovate sends it: ``{"year", "month", "day"}``."""

    year: int
    month: int
    day: int


class Entity(msgspec.Struct, kw_only=True, omit_defaults=True):
    """Base of every entity: an ``id`` unique across all entity types in this simulator.

    Only fields that may be absent on the wire have a default (``None``), so that
    ``omit_defaults`` drops exactly the absent ones.
    """

    id: int


class User(Entity, kw_only=True, omit_defaults=True):
    """A Tradovate login."""

    name: str
    timestamp: str
    email: str
    status: str
    professional: bool
    twoFactorAuth: bool


class Account(Entity, kw_only=True, omit_defaults=True):
    """A trading account; ``id`` is the ``accountId`` and ``name`` the ``accountSpec``."""

    name: str
    userId: int
    timestamp: str
    accountType: str
    active: bool
    clearingHouseId: int
    riskCategoryId: int
    autoLiqProfileId: int
    marginAccountType: str
    legalStatus: str
    archived: bool
    readonly: bool


class Product(Entity, kw_only=True, omit_defaults=True):
    """A futures product (``MNQ``); tick size and point value drive prices and P&L."""

    name: str
    currencyId: int
    productType: str
    description: str
    exchangeId: int
    contractGroupId: int
    status: str
    months: str
    valuePerPoint: float
    priceFormatType: str
    priceFormat: int
    tickSize: float


class ContractMaturity(Entity, kw_only=True, omit_defaults=True):
    """The expiry of one dated contract."""

    productId: int
    expirationMonth: int
    expirationDate: str
    isFront: bool


class Contract(Entity, kw_only=True, omit_defaults=True):
    """A dated contract such as ``MNQZ6``."""

    name: str
    contractMaturityId: int
    status: str
    providerTickSize: float | None = None


class Order(Entity, kw_only=True, omit_defaults=True):
    """An order; its price and quantity live on :class:`OrderVersion`."""

    accountId: int
    contractId: int
    timestamp: str
    action: str
    ordStatus: str
    admin: bool
    executionProviderId: int | None = None
    ocoId: int | None = None
    parentId: int | None = None
    linkedId: int | None = None


class OrderVersion(Entity, kw_only=True, omit_defaults=True):
    """Quantity, type and prices of an order."""

    orderId: int
    orderQty: int
    orderType: str
    price: float | None = None
    stopPrice: float | None = None
    maxShow: int | None = None
    pegDifference: float | None = None
    timeInForce: str | None = None
    expireTime: str | None = None
    text: str | None = None


class Command(Entity, kw_only=True, omit_defaults=True):
    """One trading action on an order; carries the client's ``clOrdId`` (never deduplicated)."""

    orderId: int
    timestamp: str
    commandType: str
    commandStatus: str
    clOrdId: str | None = None
    senderId: int | None = None
    userSessionId: int | None = None
    activationTime: str | None = None
    customTag50: str | None = None
    isAutomated: bool | None = None


class CommandReport(Entity, kw_only=True, omit_defaults=True):
    """A state change of a :class:`Command`."""

    commandId: int
    timestamp: str
    commandStatus: str
    rejectReason: str | None = None
    text: str | None = None
    ordStatus: str | None = None


class ExecutionReport(Entity, kw_only=True, omit_defaults=True):
    """One execution event of an order (New, Trade, Canceled, Rejected, ...)."""

    commandId: int
    name: str
    accountId: int
    contractId: int
    timestamp: str
    orderId: int
    execType: str
    action: str
    tradeDate: TradeDate | None = None
    execRefId: str | None = None
    ordStatus: str | None = None
    cumQty: int | None = None
    avgPx: float | None = None
    lastQty: int | None = None
    lastPx: float | None = None
    rejectReason: str | None = None
    text: str | None = None
    exchangeOrderId: str | None = None


class Fill(Entity, kw_only=True, omit_defaults=True):
    """A (full) execution of an order at one price."""

    orderId: int
    contractId: int
    timestamp: str
    tradeDate: TradeDate
    action: str
    qty: int
    price: float
    active: bool
    finallyPaired: int


class Position(Entity, kw_only=True, omit_defaults=True):
    """Net position of an account in one contract (``netPos`` is signed)."""

    accountId: int
    contractId: int
    timestamp: str
    tradeDate: TradeDate
    netPos: int
    bought: int
    boughtValue: float
    sold: int
    soldValue: float
    prevPos: int
    netPrice: float | None = None
    prevPrice: float | None = None


class CashBalance(Entity, kw_only=True, omit_defaults=True):
    """Cash and realized P&L of an account (USD)."""

    accountId: int
    timestamp: str
    tradeDate: TradeDate
    currencyId: int
    amount: float
    realizedPnL: float
    weekRealizedPnL: float
